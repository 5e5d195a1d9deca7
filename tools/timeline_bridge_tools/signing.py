"""Sign a request exactly as each sender does: for `bridge send`, the tests and local runs.

The signatures themselves live in the source modules (one home per scheme); this module only
turns a body (or a Function URL event file) into the headers a real sender adds.

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
import uuid
from typing import Any

from timeline_bridge.http import WebhookRequest
from timeline_bridge.sources import generic, hubspot, pipedrive, slack


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
    name: str = generic.DEFAULT_ENDPOINT,
    webhook_id: str | None = None,
    hubspot_versions: tuple[str, ...] = ("v3", "v1"),
) -> dict[str, str]:
    """The headers `source` adds when it posts `body` (see `body_bytes`) to `url` at time `now`.

    - hubspot: `X-HubSpot-Signature-v3` + `X-HubSpot-Request-Timestamp` (ms) over method + URL +
      body + timestamp, plus the legacy v1 (or v2) pair HubSpot still sends; `url` is required
      (taken from the event when `body` is a Function URL event).
    - slack: `X-Slack-Signature` (v0) + `X-Slack-Request-Timestamp`.
    - pipedrive: `Authorization: Basic ...` from "user:password".
    - generic: per the endpoint's settings (`GENERIC_<NAME>_SCHEME`): Standard Webhooks headers
      (`webhook-id` defaults to a fresh `msg_...`), or the configured HMAC header.
    """
    raw = body_bytes(body)
    moment = time.time() if now is None else now
    if source == "hubspot":
        if url is None and is_function_url_event(body):
            url = event_url(body)
        if not url:
            raise ValueError("HubSpot signatures cover the URL: pass url")
        headers: dict[str, str] = {}
        if "v3" in hubspot_versions:
            millis = str(int(moment * 1000))
            headers[hubspot.SIGNATURE_V3] = hubspot.v3_signature(secret, method, url, raw, millis)
            headers[hubspot.TIMESTAMP] = millis
        if "v2" in hubspot_versions:
            headers[hubspot.SIGNATURE] = hubspot.v2_signature(secret, method, url, raw)
            headers[hubspot.SIGNATURE_VERSION] = "v2"
        elif "v1" in hubspot_versions:
            headers[hubspot.SIGNATURE] = hubspot.v1_signature(secret, raw)
            headers[hubspot.SIGNATURE_VERSION] = "v1"
        return headers
    if source == "slack":
        timestamp = str(int(moment))
        return {slack.SIGNATURE: slack.signature(secret, timestamp, raw), slack.TIMESTAMP: timestamp}
    if source == "pipedrive":
        return {"Authorization": pipedrive.authorization(secret)}
    if source == "generic":
        settings = generic.GenericConfig.from_env(name)
        if settings.scheme == "hmac":
            signed = {
                settings.signature_header: generic.hmac_signature(
                    secret, raw, encoding=settings.encoding, prefix=settings.prefix
                )
            }
            if settings.id_header:
                signed[settings.id_header] = webhook_id or f"msg_{uuid.uuid4().hex}"
            return signed
        msg_id = webhook_id or f"msg_{uuid.uuid4().hex}"
        timestamp = str(int(moment))
        return {
            generic.WEBHOOK_ID: msg_id,
            generic.WEBHOOK_TIMESTAMP: timestamp,
            generic.WEBHOOK_SIGNATURE: generic.standard_signature(secret, msg_id, timestamp, raw),
        }
    raise ValueError(f"unknown source {source!r}")


def sign_event(source: str, event: dict[str, Any], secret: str, **options: Any) -> dict[str, Any]:
    """A copy of Function URL `event` carrying the sender's signature headers (names lowercased,
    as Function URLs deliver them). Options as for `sign_request`; for generic events the
    endpoint name defaults to the one in the event's `rawPath`, and `webhook-id` to the event's."""
    signed = copy.deepcopy(event)
    merged = {str(k).lower(): v for k, v in (signed.get("headers") or {}).items()}
    if source == "generic":
        options.setdefault("name", generic.endpoint_name(event.get("rawPath") or "/"))
        # The event's own id (a retry keeps it), when the file carries one.
        options.setdefault("webhook_id", merged.get(generic.WEBHOOK_ID))
    headers = sign_request(source, event, secret, **options)
    merged.update({k.lower(): v for k, v in headers.items()})
    signed["headers"] = merged
    return signed
