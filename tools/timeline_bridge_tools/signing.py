"""Sign a request exactly as each sender does: for `bridge send`, the tests and local runs.

Each source's recipe is its spec's `sign` (in its source module); this module only turns a body
(or a Function URL event file) into what the recipe signs and dispatches by source name.

    headers = sign_request("slack", body_bytes, secret)
    event = sign_event("hubspot", json.load(open("events/hubspot/deal-stage-change.json")), secret)

`secret` is the value the bridge is configured with: HubSpot's client secret, Slack's signing
secret, Pipedrive's "user:password", a generic endpoint's `whsec_...` (or plain HMAC) secret.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from typing import Any

from timeline_bridge.config import Settings
from timeline_bridge.http import WebhookRequest
from timeline_bridge.sources import SigningRequest, source_spec


def is_function_url_event(value: Any) -> bool:
    """True for a Lambda Function URL event (payload 2.0), as stored in `events/`."""
    return isinstance(value, dict) and "requestContext" in value and "body" in value


def body_bytes(value: Any) -> bytes:
    """The raw bytes a sender posts: a Function URL event's body (base64-decoded when flagged),
    bytes as they are, text as UTF-8, any other JSON value serialised compactly."""
    if is_function_url_event(value):
        raw = value.get("body") or ""
        return base64.b64decode(raw) if value.get("isBase64Encoded") else raw.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def event_url(event: dict[str, Any]) -> str:
    """The URL a sender would have called to produce this Function URL event."""
    request = WebhookRequest.from_function_url_event(event, max_body_bytes=1 << 62)
    return request.url


def sign_request(
    source: str,
    body: Any,
    secret: str,
    *,
    url: str | None = None,
    now: float | None = None,
    method: str = "POST",
    name: str | None = None,
    webhook_id: str | None = None,
    versions: tuple[str, ...] | None = None,
    hubspot_versions: tuple[str, ...] | None = None,
    settings: Settings | None = None,
) -> dict[str, str]:
    """The headers `source` adds when it posts `body` (see `body_bytes`) to `url` at time `now`:
    its spec's `sign` recipe. `name` is the endpoint of a source served on `/<source>/<name>`,
    `webhook_id` the sender's message id, `versions` the signature versions to send (the spec's
    default otherwise; `hubspot_versions` is the older spelling of it), `settings` those of the
    bridge posted to (default: this process's environment), for recipes they configure."""
    spec = source_spec(source)
    chosen = versions or hubspot_versions or spec.signature_versions
    return spec.sign(
        SigningRequest(
            body=body_bytes(body),
            secret=secret,
            now=time.time() if now is None else now,
            method=method,
            url=url,
            event=body if is_function_url_event(body) else None,
            name=name,
            message_id=webhook_id,
            versions=tuple(chosen),
            settings=Settings.from_environ() if settings is None else settings,
        )
    )


def fresh_body(
    source: str,
    body: bytes,
    *,
    now: float | None = None,
    name: str | None = None,
    settings: Settings | None = None,
) -> bytes:
    """The bytes `source` posts for `body` at time `now`: `body` itself, or, for a sender that puts
    the time it signs at in the body (Linear's `webhookTimestamp`), `body` carrying `now`."""
    spec = source_spec(source)
    if spec.restamp is None:
        return body
    return spec.restamp(
        SigningRequest(
            body=body,
            secret="",
            now=time.time() if now is None else now,
            name=name,
            settings=Settings.from_environ() if settings is None else settings,
        )
    )


def sign_event(source: str, event: dict[str, Any], secret: str, **options: Any) -> dict[str, Any]:
    """A copy of Function URL `event` carrying the sender's signature headers (names lowercased,
    as Function URLs deliver them), and its body as `fresh_body` makes it. Options as for
    `sign_request`; for a source with named
    endpoints the name defaults to the one in the event's `rawPath`, and the message id to the
    event's own (its spec's `message_id_header`)."""
    signed = copy.deepcopy(event)
    merged = {str(k).lower(): v for k, v in (signed.get("headers") or {}).items()}
    spec = source_spec(source)
    if spec.endpoints is not None:
        options.setdefault("name", spec.endpoints.from_path(event.get("rawPath") or "/"))
    if spec.message_id_header:
        # The event's own id (a retry keeps it), when the file carries one.
        options.setdefault("webhook_id", merged.get(spec.message_id_header.lower()))
    options.setdefault("now", time.time())
    body = body_bytes(event)
    fresh = fresh_body(
        source, body, now=options["now"], name=options.get("name"), settings=options.get("settings")
    )
    if fresh != body:
        encoded = bool(signed.get("isBase64Encoded"))
        signed["body"] = base64.b64encode(fresh).decode() if encoded else fresh.decode("utf-8")
    headers = sign_request(source, signed, secret, **options)
    merged.update({k.lower(): v for k, v in headers.items()})
    signed["headers"] = merged
    return signed
