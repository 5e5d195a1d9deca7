"""A sender's HMAC signature written as data (`Scheme`), and the one verifier and signer reading it.

Most webhook senders sign alike: an HMAC over the raw body, sometimes with a timestamp or a
message id in front, sent in a header. What differs is a field of `Scheme`:

- `algorithm`: `sha256`, or `sha1` (Intercom);
- `key` and `key_prefix`: how a secret becomes the HMAC key: its UTF-8 text (Stripe keeps its
  `whsec_`), hex (Close), or base64 once `key_prefix` is taken off (Standard Webhooks' `whsec_`);
- `content`: the signed bytes, a template over the raw body: `{body}`, `{ts}` (the timestamp as
  sent), `{id}` (the message id: the first `header:` of `event_id`), `{url}` (the URL called) and
  literal separators;
- where the signatures are: `header` (with `{n}` in it, numbered headers: Docusign sends one per
  key), after an optional `prefix` (`sha256=`), either the whole value or, with `items` set, a
  list of `name<pair>value` items separated by `items` (`,`, `;`, ` `) whose `signature_key`
  items are signatures (several allowed);
- `encoding`: hex (any case) or base64 (padding optional);
- `timestamp`: in a header, an item of the signature list, or a body field; seconds,
  milliseconds or ISO 8601; refused outside its tolerance.

A request passes when any of its signatures matches any active secret (rotation), compared as
decoded bytes in constant time. Timestamps in headers are checked before the signature, a body's
after (the body is parsed only once it is known to be the sender's).

The same data says what the request's source events are (`parse`): `batch` (the body path of an
events array, one event per item), `event_id` (alternatives, the first present wins: `header:<Name>`
or a dotted body path, `+` joining parts; else sha256 of the body), `event_type` (parts joined
with `.`), `occurred_at` (alternatives), the `unstable` fields a redelivery changes, and the
`handshake` types answered 200, never enqueued.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from timeline_bridge.errors import MalformedBodyError, SecretNotConfiguredError, SignatureError
from timeline_bridge.http import WebhookRequest
from timeline_bridge.sources.base import (
    TOLERANCE_SECONDS,
    Clock,
    ParsedRequest,
    SourceEvent,
    check_timestamp,
    dig,
    equal,
    iso_from_epoch,
    load_json,
    require_secrets,
    scalar,
    without,
)

HEADER = "header:"
_ALGORITHMS: dict[str, Callable[..., Any]] = {"sha256": hashlib.sha256, "sha1": hashlib.sha1}
_PLACEHOLDER = re.compile(r"\{(ts|id|body|url)\}")
_MAX_TIMESTAMP_DIGITS = 16


@dataclass(frozen=True, slots=True)
class Timestamp:
    """Where a sender puts the time it signed at, and how far from now it may be."""

    where: str  # "header", "signature" (an item of the signature list) or "body" (a dotted path)
    name: str
    format: str = "s"  # "s", "ms" or "iso"
    tolerance: float = TOLERANCE_SECONDS


@dataclass(frozen=True, slots=True)
class Scheme:
    """How one sender signs, and where its events' identity, type and time are (module doc)."""

    header: str
    algorithm: str = "sha256"
    key: str = "utf-8"  # "utf-8", "hex" or "base64"
    key_prefix: str = ""
    content: str = "{body}"
    encoding: str = "hex"  # "hex" or "base64"
    prefix: str = ""
    items: str = ""  # separator of a signature list; "" when the header holds one signature
    pair: str = "="
    signature_key: str = ""
    timestamp: Timestamp | None = None
    event_id: tuple[str, ...] = ()
    event_type: tuple[str, ...] = ("type",)
    occurred_at: tuple[str, ...] = ()
    # The first `occurred_at` is a time the sender always sends: out of range is a 400.
    occurred_required: bool = False
    batch: str = ""
    # Fields a redelivery changes (attempt counters): left out of the "same id, same body" check.
    unstable: tuple[str, ...] = ()
    handshake: tuple[str, ...] = ()
    # How long the sender redelivers one event, in seconds (None: unpublished); the dedupe window
    # must outlast it: ingest's 7 days, or `dedupe_seconds` when it is longer.
    retry_horizon: float | None = None
    dedupe_seconds: int | None = None

    @property
    def id_header(self) -> str | None:
        """The header carrying the message id (what `{id}` signs), if the identity has one."""
        first = self.event_id[0] if self.event_id else ""
        return first[len(HEADER) :] if first.startswith(HEADER) and "+" not in first else None


# --- verify -----------------------------------------------------------------------------------


def key_of(scheme: Scheme, secret: str) -> bytes:
    """The HMAC key a secret stands for; SecretNotConfiguredError when it cannot be one."""
    if scheme.key == "utf-8":
        return secret.encode("utf-8")
    text = secret.strip().removeprefix(scheme.key_prefix) if scheme.key_prefix else secret.strip()
    decoded = _hex(text) if scheme.key == "hex" else _b64(text)
    if decoded is None:
        raise SecretNotConfiguredError(f"a secret is not {scheme.key}")
    if not decoded:
        # An empty HMAC key: anyone could sign. Fail closed.
        raise SecretNotConfiguredError("a secret is empty")
    return decoded


def verify(
    scheme: Scheme, request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time
) -> None:
    """Raise SignatureError unless one signature of `request` matches one of `secrets` (and its
    timestamp is within the tolerance); SecretNotConfiguredError when no secret is usable."""
    keys = _keys(scheme, require_secrets(secrets, "the endpoint's secret"))
    given, listed_stamp = _signatures(scheme, request)
    stamp = timestamp_text(scheme, request, listed_stamp)
    if stamp is not None and scheme.timestamp is not None:
        check_timestamp(_seconds(scheme.timestamp, stamp), now=now, tolerance=scheme.timestamp.tolerance)
    signed = signed_content(
        scheme, request.body, stamp=stamp, msg_id=_message_id(scheme, request), url=request.url
    )
    digest = _ALGORITHMS[scheme.algorithm]
    if not any(equal(hmac.new(key, signed, digest).digest(), g) for key in keys for g in given):
        raise SignatureError(f"{scheme.header} does not match")
    if scheme.timestamp is not None and scheme.timestamp.where == "body":
        # Checked once the body is known to be the sender's (parsing it before is parsing unverified input).
        stamp = _body_timestamp(scheme.timestamp, request.body)
        check_timestamp(_seconds(scheme.timestamp, stamp), now=now, tolerance=scheme.timestamp.tolerance)


def _keys(scheme: Scheme, secrets: Sequence[str]) -> list[bytes]:
    """The keys of the usable secrets; SecretNotConfiguredError (naming why) when none is."""
    keys: list[bytes] = []
    problem: SecretNotConfiguredError | None = None
    for secret in secrets:
        try:
            keys.append(key_of(scheme, secret))
        except SecretNotConfiguredError as exc:
            problem = exc  # a broken entry of a rotation list: the others still verify
    if not keys and problem is not None:
        raise problem
    return keys


def _signatures(scheme: Scheme, request: WebhookRequest) -> tuple[list[bytes], str | None]:
    """The decoded signatures the request carries, and the timestamp item of a signature list."""
    values = [v.strip() for v in _signature_headers(scheme, request) if v and v.strip()]
    if not values:
        raise SignatureError(f"missing {scheme.header} header", reason="signature_missing")
    given: list[bytes] = []
    stamp: str | None = None
    in_list = scheme.timestamp is not None and scheme.timestamp.where == "signature"
    for value in values:
        if scheme.prefix:
            if not value.lower().startswith(scheme.prefix.lower()):
                continue
            value = value[len(scheme.prefix) :]
        if not scheme.items:
            given.append(_decode(scheme.encoding, value))
            continue
        for item in value.split(scheme.items):
            name, separator, text = item.strip().partition(scheme.pair)
            if not separator:
                continue
            if name == scheme.signature_key:
                given.append(_decode(scheme.encoding, text.strip()))
            elif in_list and scheme.timestamp is not None and name == scheme.timestamp.name:
                stamp = text.strip()
    usable = [g for g in given if g]
    if not usable:
        raise SignatureError(f"no {scheme.signature_key or scheme.encoding} signature in {scheme.header}")
    if in_list and stamp is None:
        raise SignatureError(f"no timestamp in {scheme.header}", reason="signature_missing")
    return usable, stamp


def _signature_headers(scheme: Scheme, request: WebhookRequest) -> list[str]:
    if "{n}" not in scheme.header:
        return [request.header(scheme.header) or ""]
    before, _, after = scheme.header.lower().partition("{n}")
    numbered = re.compile(re.escape(before) + r"[0-9]{1,3}" + re.escape(after))
    return [value for name, value in sorted(request.headers.items()) if numbered.fullmatch(name)]


def timestamp_text(scheme: Scheme, request: WebhookRequest, listed: str | None = None) -> str | None:
    """The signed timestamp as sent, for a header or signature-list timestamp; None otherwise."""
    stamp = scheme.timestamp
    if stamp is None or stamp.where == "body":
        return None
    if stamp.where == "signature":
        return listed
    value = (request.header(stamp.name) or "").strip()
    if not value:
        raise SignatureError(f"missing {stamp.name} header", reason="signature_missing")
    return value


def _body_timestamp(stamp: Timestamp, body: bytes) -> str:
    value = dig(load_json(body, "webhook body"), *stamp.name.split("."))
    text = scalar(value) if not isinstance(value, float) else None
    if not text:
        raise SignatureError(f"no {stamp.name} in the body", reason="signature_missing")
    return text


def _seconds(stamp: Timestamp, text: str) -> float:
    """The epoch seconds a timestamp as sent stands for; SignatureError when it reads as none."""
    if stamp.format == "iso":
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise SignatureError(
                f"{stamp.name} is not an ISO 8601 time", reason="timestamp_invalid"
            ) from None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if not (text.isascii() and text.isdigit()) or len(text) > _MAX_TIMESTAMP_DIGITS:
        raise SignatureError(f"{stamp.name} is not an integer", reason="timestamp_invalid")
    return int(text) / (1000 if stamp.format == "ms" else 1)


def _message_id(scheme: Scheme, request: WebhookRequest) -> str | None:
    if "{id}" not in scheme.content:
        return None
    header = scheme.id_header
    value = (request.header(header) or "") if header else ""  # signed as sent
    if not value:
        raise SignatureError(f"missing {header} header", reason="signature_missing")
    return value


def signed_content(
    scheme: Scheme, body: bytes, *, stamp: str | None = None, msg_id: str | None = None, url: str = ""
) -> bytes:
    """The bytes the sender signs: `scheme.content` with its placeholders filled in."""
    values = {"body": body, "ts": (stamp or "").encode(), "id": (msg_id or "").encode(), "url": url.encode()}
    parts = _PLACEHOLDER.split(scheme.content)
    # split() alternates literal text and placeholder names.
    return b"".join(values[p] if i % 2 else p.encode("utf-8") for i, p in enumerate(parts))


def _hex(text: str) -> bytes | None:
    if not re.fullmatch(r"(?:[0-9A-Fa-f]{2})*", text):
        return None
    return bytes.fromhex(text)


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def _decode(encoding: str, text: str) -> bytes:
    """A signature's bytes; empty when it is not in the encoding (it then matches nothing)."""
    return (_hex(text) if encoding == "hex" else _b64(text)) or b""


# --- sign -------------------------------------------------------------------------------------


def format_timestamp(stamp: Timestamp, now: float) -> str:
    if stamp.format == "ms":
        return str(int(now * 1000))
    if stamp.format == "iso":
        return datetime.fromtimestamp(int(now), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(int(now))


def signature(
    scheme: Scheme,
    secret: str,
    body: bytes,
    *,
    stamp: str | None = None,
    msg_id: str | None = None,
    url: str = "",
) -> str:
    """The encoded signature (no prefix, no list) of `body` with `secret`."""
    content = signed_content(scheme, body, stamp=stamp, msg_id=msg_id, url=url)
    digest = hmac.new(key_of(scheme, secret), content, _ALGORITHMS[scheme.algorithm]).digest()
    return digest.hex() if scheme.encoding == "hex" else base64.b64encode(digest).decode()


def sign(
    scheme: Scheme, secret: str, body: bytes, *, now: float, msg_id: str | None = None, url: str = ""
) -> dict[str, str]:
    """The headers the sender adds when it posts `body` at `now`: the signature, its timestamp
    header, and the message id header when `msg_id` is given (a body timestamp is `restamp`'s)."""
    stamp = scheme.timestamp
    text = format_timestamp(stamp, now) if stamp is not None and stamp.where != "body" else None
    value = signature(scheme, secret, body, stamp=text, msg_id=msg_id, url=url)
    if scheme.items:
        entries = [f"{scheme.signature_key}{scheme.pair}{value}"]
        if stamp is not None and stamp.where == "signature":
            entries.insert(0, f"{stamp.name}{scheme.pair}{text}")
        value = scheme.items.join(entries)
    headers = {scheme.header.replace("{n}", "1"): scheme.prefix + value}
    if stamp is not None and stamp.where == "header" and text is not None:
        headers[stamp.name] = text
    if msg_id and scheme.id_header:
        headers[scheme.id_header] = msg_id
    return headers


def restamp(scheme: Scheme, body: bytes, now: float) -> bytes:
    """`body` with a body-field timestamp set to `now` (Linear's `webhookTimestamp`), its other
    bytes untouched; `body` itself for any other scheme, or when the field is not there."""
    stamp = scheme.timestamp
    if stamp is None or stamp.where != "body":
        return body
    field = re.escape(stamp.name.rsplit(".", 1)[-1])
    pattern = re.compile(rb'("' + field.encode() + rb'"\s*:\s*)("[^"]*"|[0-9.]+)')
    fresh = format_timestamp(stamp, now).encode()
    return pattern.sub(
        lambda m: m.group(1) + (fresh if stamp.format != "iso" else b'"' + fresh + b'"'), body, count=1
    )


# --- parse ------------------------------------------------------------------------------------


def parse(scheme: Scheme, request: WebhookRequest) -> ParsedRequest:
    """The request's source events: its one JSON object, or each item of its `batch` array."""
    body = load_json(request.body, "webhook body")
    if not isinstance(body, dict):
        raise MalformedBodyError("webhook body must be a JSON object")
    if scheme.batch:
        items = dig(body, *scheme.batch.split("."))
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise MalformedBodyError(f"webhook body {scheme.batch} must be a list of objects")
    else:
        items = [body]
    events = []
    for position, item in enumerate(items):
        kind = _joined(scheme.event_type, request, item, ".")
        if kind is not None and kind in scheme.handshake:
            return ParsedRequest(reply={"handshake": kind})
        event_id = _first(scheme.event_id, request, item) or hashlib.sha256(request.body).hexdigest()
        events.append(
            SourceEvent(
                event_type=kind or "unknown",
                event_id=f"{event_id}#{position}" if scheme.batch else event_id,
                occurred_at=_occurred(scheme, request, item),
                event=item,
                fingerprint=without(item, *scheme.unstable),
                known=kind is not None,
            )
        )
    return ParsedRequest(events=events)


def _value(path: str, request: WebhookRequest, item: Any) -> str | None:
    if path.startswith(HEADER):
        return (request.header(path[len(HEADER) :]) or "").strip() or None
    return scalar(dig(item, *path.split("."))) or None


def _joined(parts: Sequence[str], request: WebhookRequest, item: Any, separator: str) -> str | None:
    values = [_value(p, request, item) for p in parts]
    return separator.join(v for v in values if v) if values and all(values) else None


def _first(alternatives: Sequence[str], request: WebhookRequest, item: Any) -> str | None:
    for alternative in alternatives:
        found = _joined(alternative.split("+"), request, item, ":")
        if found:
            return found
    return None


def _occurred(scheme: Scheme, request: WebhookRequest, item: Any) -> str | None:
    for position, path in enumerate(scheme.occurred_at):
        raw = request.header(path[len(HEADER) :]) if path.startswith(HEADER) else dig(item, *path.split("."))
        field = path if position == 0 and scheme.occurred_required else None
        found = iso_from_epoch(raw, field=f"webhook body {field}" if field else None)
        if found:
            return found
    return None
