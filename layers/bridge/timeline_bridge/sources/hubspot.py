"""HubSpot webhooks: signature v3 (v2 and v1 as opt-in fallbacks), batches of events.

Signature v3 (the default, and the only one accepted unless `HUBSPOT_SIGNATURE_VERSIONS` says
otherwise): base64(HMAC-SHA256(client secret, method + URI + body + timestamp)), with the
timestamp in epoch milliseconds from `X-HubSpot-Request-Timestamp`.
- Window: HubSpot documents "older than 5 minutes" only. We also refuse timestamps more than
  5 minutes in the future: HubSpot's clocks are NTP-synced, so a far-future stamp is a forgery or a
  replay prepared in advance, and a symmetric window is what every other source here uses.
- URI: the URL HubSpot called, rebuilt on the Function URL's own domain (`requestContext.domainName`,
  never the client's `X-Forwarded-Host`), or `HUBSPOT_WEBHOOK_URL` behind a custom domain or
  CloudFront, with HubSpot's documented decode table applied. HubSpot's own SDKs hash the URL
  verbatim, so both forms are accepted; they differ only in the escapes of that table.
- Version choice: the highest enabled version whose header is present is the one checked, with
  no fallback when it fails. Otherwise a stale v3 request could pass as v1, which has no timestamp.

v2 = hex(SHA-256(secret + method + URI + body)), v1 = hex(SHA-256(secret + body)): no timestamp,
so replayable (dedupe still absorbs replays for 7 days). Off by default.

Body: a JSON array of events (HubSpot sends up to 100). Each element is one source event. The type
is `subscriptionType` (legacy apps) or `eventType`; new-platform `object.*` events name their
object with `objectTypeId` and are reported as `<object>.<action>` for the standard objects.
Identity: (portalId, subscriptionId, eventId, objectId, occurredAt), since `eventId` alone is not
guaranteed unique.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from typing import Any

from timeline_bridge.config import Settings
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
    equal,
    fixed_secret,
    iso_from_epoch,
    load_json,
    parse_int_header,
    require_secrets,
    scalar,
    without,
)

NAME = "hubspot"
SECRET_NAME = "HUBSPOT_CLIENT_SECRET"  # noqa: S105 - the variable name, not a value

SIGNATURE_V3 = "X-HubSpot-Signature-v3"
TIMESTAMP = "X-HubSpot-Request-Timestamp"
SIGNATURE = "X-HubSpot-Signature"
SIGNATURE_VERSION = "X-HubSpot-Signature-Version"

# HubSpot sends fewer than 100 events per request; anything far above that is not HubSpot.
MAX_EVENTS = 1000

# https://developers.hubspot.com/docs/api/webhooks/validating-requests (v3, step 2).
URI_DECODE = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")

# Actions of the events we take in; any other type is acknowledged with a log line and dropped.
KNOWN_ACTIONS = frozenset(
    {
        "creation",
        "deletion",
        "propertyChange",
        "associationChange",
        "merge",
        "restore",
        "privacyDeletion",
        "newMessage",
    }
)

# New developer platform: `object.<action>` events name the object type by id.
STANDARD_OBJECT_TYPES = {
    "0-1": "contact",
    "0-2": "company",
    "0-3": "deal",
    "0-5": "ticket",
    "0-7": "product",
    "0-8": "line_item",
}

# Delivery-attempt counter: differs between retries of the same event.
VOLATILE_FIELDS = ("attemptNumber",)


def decode_uri(uri: str) -> str:
    """Apply HubSpot's decode table; every other escape (e.g. %20, %26) is kept as is."""
    return _ESCAPE.sub(lambda m: URI_DECODE.get(m.group(0).upper(), m.group(0)), uri)


def v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str | int) -> str:
    """base64(HMAC-SHA256(secret, method + uri + body + timestamp))."""
    source = method.upper().encode() + uri.encode("utf-8") + body + str(timestamp).encode()
    return base64.b64encode(hmac.new(secret.encode("utf-8"), source, hashlib.sha256).digest()).decode()


def v2_signature(secret: str, method: str, uri: str, body: bytes) -> str:
    """hex(SHA-256(secret + method + uri + body)): a plain hash, not an HMAC."""
    return hashlib.sha256(
        secret.encode("utf-8") + method.upper().encode() + uri.encode("utf-8") + body
    ).hexdigest()


def v1_signature(secret: str, body: bytes) -> str:
    """hex(SHA-256(secret + body))."""
    return hashlib.sha256(secret.encode("utf-8") + body).hexdigest()


def request_uri(request: WebhookRequest, webhook_url: str | None = None) -> str:
    """The URL HubSpot called: `webhook_url` when configured (the request's query string is
    appended when it has none), else the URL rebuilt from the request."""
    if not webhook_url:
        return request.url
    if "?" not in webhook_url and request.raw_query:
        return f"{webhook_url}?{request.raw_query}"
    return webhook_url


def verify(
    request: WebhookRequest,
    secrets: Sequence[str],
    *,
    now: Clock = time.time,
    versions: Sequence[str] = ("v3",),
    url: str | None = None,
) -> None:
    """Raise SignatureError unless one of `secrets` signed the request (see the module doc)."""
    keys = require_secrets(secrets, SECRET_NAME)
    enabled = {v.lower() for v in versions}
    uri = request_uri(request, url)
    v3 = request.header(SIGNATURE_V3)
    if "v3" in enabled and v3 is not None:
        _verify_v3(request, keys, v3, uri, now)
        return
    legacy = request.header(SIGNATURE)
    version = (request.header(SIGNATURE_VERSION) or "").strip().lower()
    if legacy is not None and version in ("v1", "v2") and version in enabled:
        for secret in keys:
            if version == "v2":
                candidates = {
                    v2_signature(secret, request.method, u, request.body) for u in (uri, decode_uri(uri))
                }
            else:
                candidates = {v1_signature(secret, request.body)}
            if any(equal(c, legacy.strip().lower()) for c in candidates):
                return
        raise SignatureError(f"X-HubSpot-Signature ({version}) does not match")
    raise SignatureError(
        f"missing signature header (accepted versions: {', '.join(sorted(enabled)) or 'none'})",
        reason="signature_missing",
    )


def _verify_v3(request: WebhookRequest, keys: list[str], given: str, uri: str, now: Clock) -> None:
    millis = parse_int_header(request.header(TIMESTAMP), TIMESTAMP)
    check_timestamp(millis / 1000, now=now)
    timestamp = (request.header(TIMESTAMP) or "").strip()
    uris = dict.fromkeys((decode_uri(uri), uri))  # documented form first, then the SDKs' form
    given = given.strip()
    for secret in keys:
        for candidate in uris:
            if equal(v3_signature(secret, request.method, candidate, request.body, timestamp), given):
                return
    raise SignatureError("X-HubSpot-Signature-v3 does not match")


def event_type(event: dict[str, Any]) -> str:
    """`subscriptionType` or `eventType`; `object.<action>` named by `objectTypeId` when standard."""
    kind = event.get("subscriptionType") or event.get("eventType")
    if not isinstance(kind, str) or not kind:
        return ""
    if kind.startswith("object."):
        obj = STANDARD_OBJECT_TYPES.get(str(event.get("objectTypeId") or ""))
        if obj:
            return f"{obj}.{kind.removeprefix('object.')}"
    return kind


def identity(event: dict[str, Any]) -> str | None:
    """(portalId, subscriptionId, eventId, objectId, occurredAt); None without an eventId."""
    if scalar(event.get("eventId")) is None:
        return None
    parts = (event.get(k) for k in ("portalId", "subscriptionId", "eventId", "objectId", "occurredAt"))
    return ":".join(scalar(p) or "" for p in parts)


def to_source_event(event: Any, index: int = 0) -> SourceEvent:
    """One array element (at `index` of the batch) as a source event."""
    if not isinstance(event, dict):
        raise MalformedBodyError("each HubSpot event must be a JSON object")
    kind = event_type(event)
    action = kind.rpartition(".")[2]
    return SourceEvent(
        event_type=kind or "unknown",
        event_id=identity(event),
        # HubSpot sends occurredAt with every event (it is part of the identity): required.
        occurred_at=iso_from_epoch(event.get("occurredAt"), field=f"HubSpot event [{index}].occurredAt"),
        event=event,
        fingerprint=without(event, *VOLATILE_FIELDS),
        known=bool(kind) and "." in kind and action in KNOWN_ACTIONS,
    )


def parse(request: WebhookRequest) -> ParsedRequest:
    """A JSON array of events: one source event per element."""
    data = load_json(request.body, "HubSpot body")
    if not isinstance(data, list):
        raise MalformedBodyError("HubSpot body must be a JSON array of events")
    if len(data) > MAX_EVENTS:
        raise MalformedBodyError(f"HubSpot body has {len(data)} events (at most {MAX_EVENTS})")
    return ParsedRequest(events=[to_source_event(e, i) for i, e in enumerate(data)])


class HubSpotSource(Source):
    name = NAME
    secret_name = SECRET_NAME
    scope = NAME

    def __init__(self, *, versions: Sequence[str] = ("v3",), webhook_url: str | None = None) -> None:
        self.versions = tuple(versions)
        self.webhook_url = webhook_url

    def verify(self, request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
        verify(request, secrets, now=now, versions=self.versions, url=self.webhook_url)

    def parse(self, request: WebhookRequest) -> ParsedRequest:
        return parse(request)


def configured(request: WebhookRequest, settings: Settings) -> HubSpotSource:
    """The source with the function's accepted signature versions and public URL."""
    return HubSpotSource(
        versions=settings.hubspot_signature_versions, webhook_url=settings.hubspot_webhook_url
    )


def sign(request: SigningRequest) -> dict[str, str]:
    """v3 over method + URL + body + timestamp (ms), plus the legacy v1 (or v2) pair HubSpot still
    sends. The URL is required: taken from the Function URL event when none is given."""
    url = request.url
    if url is None and request.event is not None:
        url = WebhookRequest.from_function_url_event(dict(request.event), max_body_bytes=1 << 62).url
    if not url:
        raise ValueError("HubSpot signatures cover the URL: pass url")
    headers: dict[str, str] = {}
    if "v3" in request.versions:
        millis = str(int(request.now * 1000))
        headers[SIGNATURE_V3] = v3_signature(request.secret, request.method, url, request.body, millis)
        headers[TIMESTAMP] = millis
    if "v2" in request.versions:
        headers[SIGNATURE] = v2_signature(request.secret, request.method, url, request.body)
        headers[SIGNATURE_VERSION] = "v2"
    elif "v1" in request.versions:
        headers[SIGNATURE] = v1_signature(request.secret, request.body)
        headers[SIGNATURE_VERSION] = "v1"
    return headers


SPEC = SourceSpec(
    name=NAME,
    source=configured,
    identity="(portalId, subscriptionId, eventId, objectId, occurredAt) of each event",
    secret_names=fixed_secret(SECRET_NAME),
    sign=sign,
    example="events/hubspot/deal-stage-change.json",
    signature_versions=("v3", "v1"),
    public_url_variable="HUBSPOT_WEBHOOK_URL",
)
