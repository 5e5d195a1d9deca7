"""What every source module provides, and the helpers they share.

A source is one module: `verify` (signature or credentials over the raw bytes), `parse` (split the
body into source events) and each event's identity (the dedupe key), declared together with its
secrets and its signing recipe in the module's `SPEC` (a `SourceSpec`).

Verifier contract, the same for every source:
- works on `WebhookRequest.body` (raw bytes) and reads headers case-insensitively;
- compares with `hmac.compare_digest`;
- takes the clock as `now: Callable[[], float]` (epoch seconds), so tests freeze it;
- raises `SignatureError` (401) and never returns a bool;
- raises `SecretNotConfiguredError` (503) when no secret is configured: fail closed;
- accepts every active secret (rotation: `Secrets.values` returns a list).
"""

from __future__ import annotations

import hmac
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from timeline_bridge.config import Secrets, Settings
from timeline_bridge.errors import (
    MalformedBodyError,
    SecretNotConfiguredError,
    SignatureError,
    TimestampOutOfRangeError,
)
from timeline_bridge.http import WebhookRequest
from timeline_bridge.models import Envelope

Clock = Callable[[], float]

# Replay tolerance shared by every timestamped scheme (HubSpot v3, Slack, Standard Webhooks).
TOLERANCE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class SourceEvent:
    """One event as the source sent it, with what ingest needs to dedupe and enqueue it."""

    event_type: str
    event_id: str | None  # the source's identity; None when the sender left it out
    occurred_at: str | None  # ISO 8601, when the source says
    event: Any  # the raw event, untouched
    # What "same id, different body" is checked on: the event without its delivery-attempt
    # counters (HubSpot attemptNumber, Pipedrive attempt/retry), which change on every retry.
    fingerprint: Any = None
    known: bool = True  # False: acknowledged with a log line, never enqueued

    def envelope(self, source: str, name: str | None, received_at: str) -> Envelope:
        """What ingest puts on the events queue for this event (and `bridge map` renders)."""
        return Envelope(
            source=source,
            event_type=self.event_type,
            event_id=self.event_id or "",
            occurred_at=self.occurred_at,
            received_at=received_at,
            event=self.event,
            name=name,
        )


@dataclass(slots=True)
class ParsedRequest:
    """The source events of one request, or an answer the source gives by itself."""

    events: list[SourceEvent] = field(default_factory=list)
    reply: dict[str, Any] | None = None  # e.g. Slack url_verification: answered, nothing enqueued
    interactive: bool = False  # Slack interactivity: the sender never retries
    # What to answer when its events could not be recorded, for a sender that never retries.
    unrecorded_reply: dict[str, Any] | None = None
    # The answer once its events are recorded (duplicates too), for a sender that reads one of its
    # own (Salesforce's SOAP acknowledgement); None: the JSON counts.
    recorded_response: dict[str, Any] | None = None


class Source(ABC):
    """One sender. Subclasses hold its settings; `verify` and `parse` are pure."""

    name: ClassVar[str]
    secret_name: ClassVar[str]
    # Dedupe scope: identities of different sources (or generic names) never collide.
    scope: str = ""
    # What the envelope carries as `name` (generic sources only).
    endpoint_name: str | None = None
    # How long ingest remembers an event's identity, for a sender that redelivers for longer
    # than ingest's window; None: that window.
    dedupe_seconds: int | None = None

    def secrets(self, secrets: Secrets) -> list[str]:
        """Every active secret, read from the function's `secrets`; raises
        SecretNotConfiguredError when there is none."""
        return require_secrets(secrets.values(self.secret_name), self.secret_name)

    @abstractmethod
    def verify(self, request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
        """Raise SignatureError unless the request was signed with one of `secrets`."""

    @abstractmethod
    def parse(self, request: WebhookRequest) -> ParsedRequest:
        """Split a verified body into source events; MalformedBodyError when it cannot."""


@dataclass(frozen=True, slots=True)
class SigningRequest:
    """What a sender signs for one post (`bridge send`, the tests, local runs)."""

    body: bytes  # the raw bytes posted
    secret: str  # the value the bridge is configured with
    now: float  # epoch seconds
    method: str = "POST"
    url: str | None = None  # the URL called, for senders that sign it
    event: Mapping[str, Any] | None = None  # the Function URL event the body came from, if any
    name: str | None = None  # endpoint name, for sources served on `/<source>/<name>`
    message_id: str | None = None  # the sender's message id, for senders that send one
    versions: tuple[str, ...] = ()  # signature versions to send, for senders with several
    # The settings of the bridge posted to, for recipes they configure (a generic endpoint's
    # scheme); None: each recipe's defaults.
    settings: Settings | None = None


@dataclass(frozen=True, slots=True)
class EndpointNames:
    """A source served on `/<source>/<name>`, one endpoint per name: how names are read and spelled."""

    default: str
    from_path: Callable[[str], str]  # the name in a raw path; NotFoundError when it names none
    canonical: Callable[[str], str | None]  # the one spelling of a name; None when it spells none
    name_rule: str
    spelling_rule: str

    def problem(self, name: str) -> tuple[str, str | None] | None:
        """None when `name` is an endpoint's own spelling; else (the rule it breaks, its spelling)."""
        canonical = self.canonical(name)
        if canonical is None:
            return self.name_rule, None
        if canonical != name:
            return self.spelling_rule, canonical
        return None


class PendingAnswer(Protocol):
    def answer(self) -> Any:
        """The other receiver's answer to relay (an object with `response()`), or None."""


class Forwarder(Protocol):
    """Passes a verified request on to another receiver, beside ingest (`sources.slack_forward`)."""

    def start(self, request: WebhookRequest) -> PendingAnswer: ...


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """Everything the bridge and its tooling know about one sender, declared in its module.

    `source(request, settings)` is the `Source` for one request, configured from the function's
    `settings`: its `verify` and `parse` (built there, so a module loads only when its source is
    asked for)."""

    name: str
    source: Callable[[WebhookRequest, Settings], Source]
    identity: str  # what the dedupe key of one event is made of
    secret_names: Callable[[str | None], list[str]]  # variables holding the secret, most specific first
    sign: Callable[[SigningRequest], dict[str, str]]  # the headers the sender adds
    # (url, secret) → the URL the sender calls, for a sender whose credential rides in the URL
    # (Salesforce's `?token=`); None: the URL as given.
    signed_url: Callable[[str, str], str] | None = None
    endpoints: EndpointNames | None = None
    message_id_header: str | None = None  # carries the sender's message id (kept by a re-send)
    sample_path: str | None = None  # where a raw sample body is posted in a dry run (default /<name>)
    example: str | None = None  # a project-relative sample event for the console and `bridge dev`
    signature_versions: tuple[str, ...] = ()  # the versions a signer sends unless told otherwise
    # The content type a raw sample body is sent with, when it depends on the body (JSON otherwise).
    content_type: Callable[[bytes], str] | None = None
    # The setting naming the public URL the sender signs, when the bridge checks that one instead.
    public_url_variable: str | None = None
    # Who verified requests are passed on to, from the function's settings (None: nobody).
    forwarder: Callable[[Settings], Forwarder | None] | None = None
    # Where a reply to the person behind an event goes (a mapping's `reply:`), read from the
    # source event; None: this source's events have no one to reply to.
    reply_url: Callable[[Any], str | None] | None = None
    # A sample body as a local run sends it: (body, the local sandbox URLs by name) → body. Slack
    # points a click's response_url at its sandbox, so replies stay local.
    local_sample: Callable[[bytes, Mapping[str, str]], bytes] | None = None
    # Settings a local run (`bridge dev`) gives the source's function when neither the environment
    # nor `.env` sets them: Salesforce accepts the org its sample comes from.
    local_settings: Mapping[str, str] = field(default_factory=dict)
    # Variables a local run passes from the shell or `.env` to the source's function although the
    # template does not declare them (a deployer sets them on the function): the generic
    # endpoints' GENERIC_<NAME>_* settings. None: only what the template declares.
    local_variable_prefix: str | None = None
    # (settings, endpoint name) → the headers of a sample that its sender sets and the bridge
    # reads (an event type, a delivery id), kept by a re-send; None: none beyond the defaults.
    sender_headers: Callable[[Settings, str | None], tuple[str, ...]] | None = None
    # The body as the sender posts it at `request.now`, for a sender that puts the time it signed
    # at in the body (Linear's `webhookTimestamp`); None: the body as it is.
    restamp: Callable[[SigningRequest], bytes] | None = None

    def dry_run_path(self) -> str:
        return self.sample_path or f"/{self.name}"

    def sample_content_type(self, body: bytes) -> str:
        return self.content_type(body) if self.content_type else "application/json"


def fixed_secret(name: str) -> Callable[[str | None], list[str]]:
    """`secret_names` of a source with one secret variable."""
    return lambda _endpoint: [name]


def require_secrets(secrets: Sequence[str] | None, name: str) -> list[str]:
    """The usable secrets, or SecretNotConfiguredError: an empty secret never verifies anything."""
    usable = [s for s in (secrets or ()) if isinstance(s, str) and s.strip()]
    if not usable:
        raise SecretNotConfiguredError(f"{name} is not configured")
    return usable


def equal(expected: str | bytes, given: str | bytes) -> bool:
    """Constant-time comparison of two signatures (text is compared as UTF-8 bytes)."""
    a = expected.encode("utf-8", "replace") if isinstance(expected, str) else expected
    b = given.encode("utf-8", "replace") if isinstance(given, str) else given
    return hmac.compare_digest(a, b)


def check_timestamp(seconds: float, *, now: Clock, tolerance: float = TOLERANCE_SECONDS) -> None:
    """Reject a signed timestamp more than `tolerance` seconds in the past or the future."""
    skew = now() - seconds
    if skew > tolerance:
        raise SignatureError("timestamp is too old", reason="timestamp_expired")
    if -skew > tolerance:
        raise SignatureError("timestamp is in the future", reason="timestamp_in_future")


def parse_int_header(value: str | None, name: str, *, max_digits: int = 16) -> int:
    """An integer header (a timestamp); SignatureError when missing or not plain ASCII digits."""
    if value is None or value == "":
        raise SignatureError(f"missing {name} header", reason="signature_missing")
    text = value.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > max_digits:
        raise SignatureError(f"{name} is not an integer", reason="timestamp_invalid")
    return int(text)


# `\\uD800`-`\\uDFFF` escapes: JSON text can name a lone surrogate, which no UTF-8 can carry.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def load_json(body: bytes, what: str) -> Any:
    """Decode a JSON body; MalformedBodyError on bad UTF-8 or bad JSON.

    Strict JSON only: NaN and Infinity (which Python's parser accepts) and lone surrogates
    (escapes no UTF-8 encoder can write back) are refused here, so every accepted event can be
    serialised onto the queue and into a target's request body."""
    try:
        text = body.decode("utf-8")
        data = json.loads(text, parse_constant=_refuse_constant)
        if _SURROGATE_ESCAPE.search(text):
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        return data
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise MalformedBodyError(f"{what} is not valid JSON") from exc


# Epoch numbers from 10^14 are microseconds; the last one a datetime holds ends the year 9999.
_MICROS_LIMIT = 253_402_300_800 * 10**6


class _OutOfRangeError(ValueError):
    """The value reads as a time, but one no datetime holds (in UTC)."""


def iso_from_epoch(value: Any, *, field: str | None = None) -> str | None:
    """ISO 8601 (UTC, milliseconds) from epoch seconds, milliseconds or microseconds, a numeric
    string, Slack's "1548426417.840180" form, or an ISO 8601 string (returned normalised).

    None when the value is missing or unreadable: occurred_at is informative. A value that reads
    as a time out of range (a negative or infinite epoch number, one past the year 9999, an ISO
    time whose offset moves it out of the years 1 to 9999) is None as well, unless `field` names
    it: a time the sender documents as always present. That raises TimestampOutOfRangeError (400)
    naming the field, so the sender learns why instead of getting a 5xx it would retry forever."""
    try:
        return _read_time(value)
    except _OutOfRangeError:
        if field is None:
            return None
        raise TimestampOutOfRangeError(
            f"{field} is out of range: not a time in the years 1 to 9999 (epoch numbers start at 1970)",
            field=field,
        ) from None


def _read_time(value: Any) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    number: int | float
    if isinstance(value, int | float):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            return _read_iso(text)
    else:
        return None
    if number != number:  # NaN: no time at all
        return None
    # Compared before any float conversion: an integer of 400 digits has no float.
    if not 0 <= number < _MICROS_LIMIT:
        raise _OutOfRangeError
    seconds = float(number)
    if seconds >= 1e14:  # microseconds (Pipedrive v1 timestamp_micro)
        seconds /= 1e6
    elif seconds >= 1e11:  # milliseconds (HubSpot occurredAt)
        seconds /= 1e3
    try:
        return _iso(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError) as exc:  # rounding at the very edge of year 9999
        raise _OutOfRangeError from exc


def _read_iso(text: str) -> str | None:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return _iso(parsed)
    except OverflowError as exc:  # the offset moves it before year 1 or past 9999 in UTC
        raise _OutOfRangeError from exc


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dig(data: Any, *path: str | int) -> Any:
    """`data[p0][p1]...`, or None as soon as a step is missing or of the wrong kind."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(data, list) or not -len(data) <= step < len(data):
                return None
            data = data[step]
        else:
            if not isinstance(data, dict):
                return None
            data = data.get(step)
    return data


def scalar(value: Any) -> str | None:
    """An identity part as text: strings and numbers only (None for objects, lists, booleans)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return repr(value)
    return None


def without(event: Any, *keys: str, meta_keys: Sequence[str] = ()) -> Any:
    """A shallow copy of `event` without `keys` (and without `meta_keys` inside `event["meta"]`)."""
    if not isinstance(event, dict):
        return event
    copy = {k: v for k, v in event.items() if k not in keys}
    meta = copy.get("meta")
    if meta_keys and isinstance(meta, dict):
        copy["meta"] = {k: v for k, v in meta.items() if k not in meta_keys}
    return copy
