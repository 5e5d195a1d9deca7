"""Slack: interactivity (button clicks) and the Events API, signed with `v0`.

Signature: "v0=" + hex(HMAC-SHA256(signing secret, "v0:" + timestamp + ":" + raw body)), headers
`X-Slack-Signature` and `X-Slack-Request-Timestamp` (epoch seconds). Window: 300 s both ways, as
Slack's SDK does. For interactivity the raw body is the whole `payload=%7B...` form string as
received: it is verified before any form decoding.

Bodies:
- Interactivity (`application/x-www-form-urlencoded`): `payload=` holds JSON. `block_actions` (and
  the other kinds carrying a `trigger_id`) become one source event each; identity `trigger_id`,
  else (container.message_ts, actions[].action_ts). Slack never retries these.
- Events API (JSON): `url_verification` is answered with its challenge (the request is still
  verified, so a forged one gets 401); `event_callback` becomes one source event with identity
  `event_id` and the inner event's type as its type. Slack's retries (`X-Slack-Retry-Num`) carry
  the same `event_id`, so dedupe absorbs them.
- Anything else (slash commands, `ssl_check`, `app_rate_limited`, ...) is acknowledged and dropped.

With `SLACK_FORWARD_URL` set, every verified request but `url_verification` is also passed on to
the team's own Slack app, and its answer relayed (`sources.slack_forward`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

from timeline_bridge.config import SLACK_HOOKS_BASE_URL
from timeline_bridge.errors import MalformedBodyError, SignatureError
from timeline_bridge.http import WebhookRequest
from timeline_bridge.sources.base import (
    Clock,
    ParsedRequest,
    SigningRequest,
    Source,
    SourceEvent,
    SourceSpec,
    check_timestamp,
    dig,
    equal,
    fixed_secret,
    iso_from_epoch,
    load_json,
    parse_int_header,
    require_secrets,
    scalar,
)
from timeline_bridge.sources.slack_forward import forwarder_for

NAME = "slack"
SECRET_NAME = "SLACK_SIGNING_SECRET"  # noqa: S105 - the variable name, not a value

SIGNATURE = "X-Slack-Signature"
TIMESTAMP = "X-Slack-Request-Timestamp"

# Interactivity payloads we take in: each has a trigger_id, unique per user interaction.
INTERACTIVE_TYPES = frozenset({"block_actions", "shortcut", "message_action", "view_submission"})

FORM = "application/x-www-form-urlencoded"

# A click that could not be recorded is never retried by Slack: the user is asked to click again.
RETRY_TEXT = "could not record your click, please try again"
UNRECORDED_REPLY = {"response_type": "ephemeral", "replace_original": False, "text": RETRY_TEXT}


def signature(secret: str, timestamp: str | int, body: bytes) -> str:
    """The `v0` signature: "v0=" + hex(HMAC-SHA256(secret, "v0:" + timestamp + ":" + body))."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def verify(request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
    """Raise SignatureError unless one of `secrets` signed the request within 300 s of `now`."""
    keys = require_secrets(secrets, SECRET_NAME)
    given = request.header(SIGNATURE)
    if not given:
        raise SignatureError(f"missing {SIGNATURE} header", reason="signature_missing")
    seconds = parse_int_header(request.header(TIMESTAMP), TIMESTAMP)
    check_timestamp(seconds, now=now)
    timestamp = (request.header(TIMESTAMP) or "").strip()
    given = given.strip()
    for secret in keys:
        if equal(signature(secret, timestamp, request.body), given):
            return
    raise SignatureError(f"{SIGNATURE} does not match")


def _is_form(request: WebhookRequest) -> bool:
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type:
        return content_type == FORM
    return not request.body.lstrip().startswith((b"{", b"["))


def parse(request: WebhookRequest) -> ParsedRequest:
    """Interactivity form or Events API JSON (see the module doc)."""
    if _is_form(request):
        return _parse_form(request.body)
    body = load_json(request.body, "Slack body")
    if not isinstance(body, dict):
        raise MalformedBodyError("Slack body must be a JSON object")
    kind = body.get("type")
    if kind == "url_verification":
        challenge = body.get("challenge")
        if not isinstance(challenge, str) or not challenge:
            raise MalformedBodyError("url_verification without a challenge")
        return ParsedRequest(reply={"challenge": challenge})
    if kind == "event_callback":
        inner = body.get("event")
        inner_type = dig(inner, "type")
        return ParsedRequest(
            events=[
                SourceEvent(
                    event_type=inner_type if isinstance(inner_type, str) and inner_type else "event_callback",
                    event_id=scalar(body.get("event_id")),
                    # Every event_callback carries event_time: required.
                    occurred_at=iso_from_epoch(body.get("event_time"), field="Slack event_time"),
                    event=body,
                    fingerprint=body,
                )
            ]
        )
    return ParsedRequest(events=[_unknown(kind if isinstance(kind, str) and kind else "unknown", body)])


def _parse_form(raw: bytes) -> ParsedRequest:
    try:
        form = parse_qs(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedBodyError("Slack form body is not valid") from exc
    if "payload" not in form:
        # Slash commands and ssl_check: signed and well formed, but not events we map.
        kind = "slash_command" if "command" in form else "ssl_check" if "ssl_check" in form else "form"
        return ParsedRequest(events=[_unknown(kind, None)])
    payload = load_json(form["payload"][0].encode("utf-8"), "Slack payload")
    if not isinstance(payload, dict):
        raise MalformedBodyError("Slack payload must be a JSON object")
    payload_type = payload.get("type")
    if not isinstance(payload_type, str):  # a JSON object or list here is no type (and unhashable)
        payload_type = None
    if payload_type not in INTERACTIVE_TYPES:
        return ParsedRequest(
            events=[_unknown(payload_type or "unknown", payload)],
            interactive=True,
            unrecorded_reply=UNRECORDED_REPLY,
        )
    return ParsedRequest(
        events=[
            SourceEvent(
                event_type=str(payload_type),
                event_id=interaction_identity(payload),
                # Not every interactivity payload has actions[].action_ts: informative, null when bad.
                occurred_at=iso_from_epoch(dig(payload, "actions", 0, "action_ts")),
                event=payload,
                fingerprint=payload,
            )
        ],
        interactive=True,
        unrecorded_reply=UNRECORDED_REPLY,
    )


def interaction_identity(payload: dict[str, Any]) -> str | None:
    """`trigger_id`, else (container.message_ts, every actions[].action_ts)."""
    trigger = scalar(payload.get("trigger_id"))
    if trigger:
        return trigger
    message_ts = scalar(dig(payload, "container", "message_ts"))
    actions = payload.get("actions")
    if not isinstance(actions, list):
        actions = []
    action_ts = [scalar(dig(a, "action_ts")) for a in actions]
    if not message_ts or not action_ts or not all(action_ts):
        return None
    return ":".join([message_ts, *(t for t in action_ts if t)])


def local_sample(body: bytes, sandboxes: Mapping[str, str]) -> bytes:
    """A click sample whose Slack `response_url` points at the local Slack sandbox (same path)."""
    base = sandboxes.get(NAME)
    if not base or not body.startswith(b"payload="):
        return body
    form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    try:
        payload = json.loads(form["payload"][0])
    except (KeyError, ValueError):
        return body
    url = payload.get("response_url") if isinstance(payload, dict) else None
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or f"{parts.scheme}://{parts.netloc}" != SLACK_HOOKS_BASE_URL:
        return body  # only Slack's own hooks URLs: any other stays as it is (and gets no reply)
    payload["response_url"] = base.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")
    return ("payload=" + quote_plus(json.dumps(payload, separators=(",", ":")))).encode()


def _unknown(kind: str, event: Any) -> SourceEvent:
    return SourceEvent(event_type=kind, event_id=None, occurred_at=None, event=event, known=False)


class SlackSource(Source):
    name = NAME
    secret_name = SECRET_NAME
    scope = NAME

    def verify(self, request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
        verify(request, secrets, now=now)

    def parse(self, request: WebhookRequest) -> ParsedRequest:
        return parse(request)


def sign(request: SigningRequest) -> dict[str, str]:
    """`X-Slack-Signature` (v0) and `X-Slack-Request-Timestamp` (seconds)."""
    timestamp = str(int(request.now))
    return {SIGNATURE: signature(request.secret, timestamp, request.body), TIMESTAMP: timestamp}


SPEC = SourceSpec(
    name=NAME,
    source=lambda _request, _settings: SlackSource(),
    identity="event_id (Events API); trigger_id, else (container.message_ts, actions[].action_ts)",
    secret_names=fixed_secret(SECRET_NAME),
    sign=sign,
    content_type=lambda body: "application/json" if body.lstrip().startswith(b"{") else FORM,
    forwarder=forwarder_for,
    # Interactivity payloads carry it (block_actions from a message); Events API ones do not.
    reply_url=lambda event: scalar(dig(event, "response_url")),
    local_sample=local_sample,
)
