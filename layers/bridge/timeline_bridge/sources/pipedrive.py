"""Pipedrive webhooks: HTTP Basic auth (Pipedrive signs nothing), v1 and v2 bodies.

Credentials: `PIPEDRIVE_BASIC_AUTH` holds "user:password" (a JSON list of several during a
rotation: Pipedrive rotates by recreating the webhook, so old and new overlap for a while). The
`Authorization: Basic ...` value is decoded and compared with each in constant time. There is no
timestamp, so no replay window: dedupe on the event identity is the replay protection.

Bodies (shape detected per request, since v1 and v2 webhooks can run side by side):
- v2 (`meta.version == "2.0"`): type `<meta.action>.<meta.entity>` (e.g. `change.deal`),
  identity `meta.id`, `meta.timestamp` as an ISO string or epoch seconds.
- v1 (top-level `v == 1`): type the body's `event` (e.g. `updated.deal`), identity
  (meta.webhook_id, meta.object, meta.id, meta.timestamp_micro), `meta.timestamp` in seconds.
Other shapes are acknowledged and dropped (a future version must not be retried into a ban).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Sequence
from typing import Any

from timeline_bridge.errors import MalformedBodyError, SignatureError
from timeline_bridge.http import WebhookRequest
from timeline_bridge.sources.base import (
    Clock,
    ParsedRequest,
    SigningRequest,
    Source,
    SourceEvent,
    SourceSpec,
    dig,
    equal,
    fixed_secret,
    iso_from_epoch,
    load_json,
    require_secrets,
    scalar,
    without,
)

NAME = "pipedrive"
SECRET_NAME = "PIPEDRIVE_BASIC_AUTH"  # noqa: S105 - the variable name, not a value

V2_ACTIONS = frozenset({"create", "change", "delete"})
V1_ACTIONS = frozenset({"added", "updated", "deleted", "merged"})


def authorization(credentials: str) -> str:
    """The `Authorization` header value for "user:password"."""
    return "Basic " + base64.b64encode(credentials.encode("utf-8")).decode()


def verify(request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
    """Raise SignatureError unless the Basic credentials equal one of `secrets` ("user:password").
    `now` is unused (no timestamp to check) and kept for the common verifier signature."""
    keys = require_secrets(secrets, SECRET_NAME)
    header = (request.header("authorization") or "").strip()
    scheme, _, token = header.partition(" ")
    if not header or scheme.lower() != "basic" or not token.strip():
        raise SignatureError("missing Basic credentials", reason="signature_missing")
    try:
        given = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("Basic credentials are not valid base64") from exc
    # Compare against every configured value so timing says nothing about which one matched.
    matched = False
    for secret in keys:
        matched |= equal(secret.encode("utf-8"), given)
    if not matched:
        raise SignatureError("Basic credentials do not match")


def parse(request: WebhookRequest) -> ParsedRequest:
    """One v1 or v2 webhook body: one source event."""
    body = load_json(request.body, "Pipedrive body")
    if not isinstance(body, dict):
        raise MalformedBodyError("Pipedrive body must be a JSON object")
    meta = body.get("meta")
    if not isinstance(meta, dict):
        raise MalformedBodyError("Pipedrive body has no meta object")
    if str(meta.get("version")) == "2.0":
        return ParsedRequest(events=[_v2(body, meta)])
    if body.get("v") == 1 or str(body.get("v")) == "1":
        return ParsedRequest(events=[_v1(body, meta)])
    return ParsedRequest(
        events=[SourceEvent(event_type="unknown", event_id=None, occurred_at=None, event=body, known=False)]
    )


def _v2(body: dict[str, Any], meta: dict[str, Any]) -> SourceEvent:
    action, entity = scalar(meta.get("action")) or "", scalar(meta.get("entity")) or ""
    return SourceEvent(
        event_type=f"{action}.{entity}" if action and entity else "unknown",
        event_id=scalar(meta.get("id")),
        occurred_at=iso_from_epoch(meta.get("timestamp"), field="Pipedrive meta.timestamp"),
        event=body,
        fingerprint=without(body, meta_keys=("attempt",)),
        known=action in V2_ACTIONS and bool(entity),
    )


def _v1(body: dict[str, Any], meta: dict[str, Any]) -> SourceEvent:
    action, obj = scalar(meta.get("action")) or "", scalar(meta.get("object")) or ""
    kind = scalar(body.get("event")) or (f"{action}.{obj}" if action and obj else "unknown")
    parts = [scalar(dig(meta, k)) for k in ("webhook_id", "object", "id", "timestamp_micro")]
    return SourceEvent(
        event_type=kind,
        event_id=":".join(p or "" for p in parts) if parts[2] is not None else None,
        occurred_at=_v1_time(meta),
        event=body,
        fingerprint=without(body, "retry"),
        known=kind.partition(".")[0] in V1_ACTIONS and bool(kind.partition(".")[2]),
    )


def _v1_time(meta: dict[str, Any]) -> str | None:
    """`meta.timestamp_micro`, else `meta.timestamp`: whichever is read is named when out of range."""
    if meta.get("timestamp_micro"):
        return iso_from_epoch(meta["timestamp_micro"], field="Pipedrive meta.timestamp_micro")
    return iso_from_epoch(meta.get("timestamp"), field="Pipedrive meta.timestamp")


class PipedriveSource(Source):
    name = NAME
    secret_name = SECRET_NAME
    scope = NAME

    def verify(self, request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
        verify(request, secrets, now=now)

    def parse(self, request: WebhookRequest) -> ParsedRequest:
        return parse(request)


def sign(request: SigningRequest) -> dict[str, str]:
    """`Authorization: Basic ...` from the "user:password" secret."""
    return {"Authorization": authorization(request.secret)}


SPEC = SourceSpec(
    name=NAME,
    source=lambda _request, _settings: PipedriveSource(),
    identity="meta.id (v2); (meta.webhook_id, meta.object, meta.id, meta.timestamp_micro) (v1)",
    secret_names=fixed_secret(SECRET_NAME),
    sign=sign,
)
