"""The fuzz harnesses: one function per kind of untrusted input, each taking libFuzzer's bytes.

Each harness turns the bytes into a structured input (FuzzedDataProvider), runs the code under test
and lets only the project's own refusals through: `IngestError` for requests, `MappingError` for
mappings. Anything else escaping is a finding, and so is a broken property (an oracle):

- verifiers: a request signed exactly as the sender signs it, unmutated and within the window,
  must verify (so the fuzzer also hunts false rejections, not only crashes);
- parsers: every event parsed must travel: its envelope serialises to UTF-8 JSON;
- ingest: every request gets an HTTP answer (never an exception), also when a sender's own time
  field holds a time no datetime can (huge, negative, 1e400, past the year 9999);
- mapping evaluator: arbitrary events and enrichment results rendered through every shipped
  mapping give a job whose body is strict JSON, or a MappingError;
- target answers: any status, headers and body from a provider classify into an outcome.

Inputs are built around the shipped samples (events/, mappings/*.cases.yaml), so the fuzzer starts
from realistic shapes and mutates them.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import atheris
from timeline_bridge import config
from timeline_bridge.errors import DeliveryFailure, IngestError, MappingError, TimestampOutOfRangeError
from timeline_bridge.http import WebhookRequest
from timeline_bridge.models import DeliveryJob, Envelope
from timeline_bridge.sources import generic, hubspot, pipedrive, slack
from timeline_bridge.sources.base import ParsedRequest, iso_from_epoch
from timeline_bridge.targets import http as target_http
from timeline_bridge.targets.base import Delivered

ROOT = Path(__file__).resolve().parents[2]
NOW = 1763900000.0
HOST = "hooks.example.com"


# Times out of every range (datetime's, the epoch's), for the senders' own time fields. `RAW_1E400`
# becomes the JSON number `1e400` (Python reads it as infinity; json.dumps could only write the
# non-JSON `Infinity`).
RAW_1E400 = "<raw 1e400>"
OUT_OF_RANGE_TIMES: tuple[Any, ...] = (
    10**400,
    -(10**400),
    10**18,  # microseconds: the year 33658
    1.7976931348623157e308,
    -1e300,
    -1,
    "1" + "0" * 400,
    "1e400",
    "-inf",
    "9999-12-31T23:59:59-01:00",
    "0001-01-01T00:00:00+01:00",
    RAW_1E400,
)


@dataclass(frozen=True)
class Harness:
    name: str
    run: Callable[[bytes], None]
    doc: str = ""
    seeds: Callable[[], list[bytes]] = field(default=lambda: [])


HARNESSES: dict[str, Harness] = {}


def harness(seeds: Callable[[], list[bytes]] | None = None) -> Callable[[Callable[[bytes], None]], Any]:
    def register(fn: Callable[[bytes], None]) -> Callable[[bytes], None]:
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        HARNESSES[fn.__name__] = Harness(fn.__name__, fn, doc, seeds or (lambda: []))
        return fn

    return register


class FuzzFinding(AssertionError):
    """A property that must hold did not (e.g. a correctly signed request was refused)."""


# --- structured inputs ----------------------------------------------------------------------------


@cache
def samples() -> dict[str, list[Any]]:
    """The shipped sample bodies per source, parsed (events/<source>/*.json)."""
    found: dict[str, list[Any]] = {}
    for path in sorted((ROOT / "events").glob("*/*.json")):
        event = json.loads(path.read_text())
        raw = event.get("body") or ""
        text = base64.b64decode(raw).decode() if event.get("isBase64Encoded") else raw
        if text.startswith("payload="):
            from urllib.parse import parse_qs

            text = parse_qs(text)["payload"][0]
        try:
            found.setdefault(path.parent.name, []).append(json.loads(text))
        except ValueError:
            continue
    return found


def _keys(value: Any, into: set[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            into.add(key)
            _keys(item, into)
    elif isinstance(value, list):
        for item in value:
            _keys(item, into)


@cache
def vocabulary() -> tuple[str, ...]:
    """Keys and words the code looks for: from the samples, plus the providers' error fields."""
    words: set[str] = set()
    for bodies in samples().values():
        for body in bodies:
            _keys(body, words)
    words |= {
        "type", "event", "meta", "payload", "data", "id", "version", "v", "action", "entity", "object",
        "timestamp", "timestamp_micro", "eventId", "subscriptionType", "eventType", "objectTypeId",
        "trigger_id", "actions", "action_ts", "container", "message_ts", "event_id", "event_time",
        "challenge", "url_verification", "event_callback", "block_actions", "error", "errors", "code",
        "message", "details", "category", "correlationId", "context", "results", "policyName",
        "retry_after", "detail", "title", "request_id", "status", "pointer", "links", "2.0", "1",
        "deal", "change", "dealstage", "closedwon", "0-3", "object.propertyChange", "deal.propertyChange",
    }  # fmt: skip
    return tuple(sorted(words))


class Gen:
    """Typed values out of libFuzzer's bytes."""

    def __init__(self, data: bytes) -> None:
        self.fdp = atheris.FuzzedDataProvider(data)

    def int(self, low: int, high: int) -> int:
        return self.fdp.ConsumeIntInRange(low, high)

    def bool(self) -> bool:
        return self.fdp.ConsumeBool()

    def pick(self, options: list[Any] | tuple[Any, ...]) -> Any:
        return options[self.int(0, len(options) - 1)]

    def bytes(self, limit: int) -> bytes:
        return self.fdp.ConsumeBytes(self.int(0, limit))

    def text(self, limit: int = 24) -> str:
        """Header-like text: any code point but surrogates (Lambda hands us decoded HTTP)."""
        return self.fdp.ConsumeUnicodeNoSurrogates(self.int(0, limit))

    def word(self) -> str:
        return self.pick(vocabulary()) if self.bool() else self.text(16)

    def secret(self) -> str:
        return self.pick(["s3cr3t-value", "  ", "", "whsec_" + base64.b64encode(self.bytes(32)).decode()]) if self.bool() else self.text(40)  # fmt: skip

    def value(self, depth: int = 0, *, surrogates: bool = False) -> Any:
        kind = self.int(0, 10 if depth < 4 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return self.bool()
        if kind == 2:
            return self.int(-5, 1_000_000)
        if kind == 3:
            return self.fdp.ConsumeInt(self.int(1, 12))
        if kind == 4:
            return self.fdp.ConsumeFloat()
        if kind == 5:
            if surrogates and self.bool():
                return self.fdp.ConsumeUnicode(self.int(0, 12))
            return self.word()
        if kind == 6:
            if self.bool():
                return self.pick(OUT_OF_RANGE_TIMES)
            return self.pick(["1763899315724", "1763900000.123456", "2026-01-01T00:00:00Z", "-1", "1e400", "NaN", ""])  # fmt: skip
        if kind in (7, 8):
            return {self.word(): self.value(depth + 1, surrogates=surrogates) for _ in range(self.int(0, 5))}
        return [self.value(depth + 1, surrogates=surrogates) for _ in range(self.int(0, 4))]

    def mutate(self, document: Any, rounds: int = 4, *, surrogates: bool = False) -> Any:
        """`document` (copied) with up to `rounds` values replaced, keys removed or added."""
        document = copy.deepcopy(document)
        for _ in range(self.int(0, rounds)):
            places = list(_places(document))
            if not places:
                return self.value(surrogates=surrogates)
            container, key = self.pick(places)
            action = self.int(0, 3)
            if action == 0 and isinstance(container, dict):
                del container[key]
            elif action == 1 and isinstance(container, dict):
                container[self.word()] = self.value(surrogates=surrogates)
            else:
                container[key] = self.value(surrogates=surrogates)
        return document


def _places(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield value, key
            yield from _places(item)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield value, index
            yield from _places(item)


def _dumps(g: Gen, value: Any) -> bytes:
    text = json.dumps(value, ensure_ascii=g.bool()).replace(json.dumps(RAW_1E400), "1e400")
    return text.encode("utf-8", "surrogatepass")


def with_time(g: Gen, source: str, document: Any) -> Any:
    """`document` with the sender's own time field (one it always sends, or an informative one)
    set to a time out of range, or now and then to any generated value."""
    value = g.pick(OUT_OF_RANGE_TIMES) if g.int(0, 3) else g.value()
    if source == "hubspot":
        for event in document if isinstance(document, list) else [document]:
            if isinstance(event, dict):
                event["occurredAt"] = value
    elif source == "pipedrive" and isinstance(document, dict):
        meta = document.setdefault("meta", {})
        if isinstance(meta, dict):
            meta[g.pick(["timestamp", "timestamp_micro"])] = value
    elif source == "slack" and isinstance(document, dict):
        actions = document.get("actions")
        if isinstance(actions, list) and actions and isinstance(actions[0], dict):
            actions[0]["action_ts"] = value
        else:  # an Events API callback (the samples hold none)
            document = {"type": "event_callback", "event_id": "Ev1", "event": {"type": "app_mention"}}
            document["event_time"] = value
    elif source == "generic" and isinstance(document, dict):
        document["timestamp"] = value
    return document


def body_for(g: Gen, source: str) -> bytes:
    """A body for `source`: raw bytes, a generated JSON value, or a mutated sample."""
    mode = g.int(0, 3)
    if mode == 0:
        return g.bytes(4096)
    if mode == 1:
        return _dumps(g, g.value(surrogates=True))
    bodies = samples().get(source) or [{}]
    mutated = g.mutate(g.pick(bodies), surrogates=True)
    if source == "hubspot" and g.bool():
        mutated = [mutated, *(g.mutate(g.pick(bodies)) for _ in range(g.int(0, 3)))]
    if g.int(0, 2) == 0:
        mutated = with_time(g, source, mutated)
    raw = _dumps(g, mutated)
    if source == "slack" and mode == 3:
        return b"payload=" + quote_plus(raw.decode("utf-8", "surrogatepass"), errors="surrogatepass").encode()
    return raw


def _request(
    body: bytes, headers: dict[str, str], *, method: str = "POST", path: str = "/", query: str = ""
) -> WebhookRequest:
    return WebhookRequest(
        method=method.upper(),
        raw_path=path,
        raw_query=query,
        headers={"host": HOST, "x-forwarded-proto": "https", **{k.lower(): v for k, v in headers.items()}},
        body=body,
    )


def _accepts(verify: Callable[[], None]) -> None:
    try:
        verify()
    except IngestError as exc:
        raise FuzzFinding(f"a correctly signed request was refused: {exc.reason}: {exc}") from exc


def _refused_or_accepted(verify: Callable[[], None]) -> None:
    with contextlib.suppress(IngestError):
        verify()


def _mutate_headers(g: Gen, headers: dict[str, str], names: list[str]) -> bool:
    """Maybe change one signed header; True when the request is no longer the one signed."""
    mutation = g.int(0, 5)
    if mutation == 0:
        return False
    name = g.pick(names)
    if mutation == 1:
        headers[name] = g.text(120)
    elif mutation == 2:
        headers.pop(name, None)
    elif mutation == 3:
        headers[name] = headers.get(name, "") + g.pick([" ", "=", "0", "\t", ",v1,AAAA"])
    else:
        headers[g.pick([*names, g.text(20) or "x"])] = g.text(80)
    return True


# --- verifiers ------------------------------------------------------------------------------------


@harness()
def verify_hubspot(data: bytes) -> None:
    """HubSpot v3/v2/v1 over fuzzed bodies, URLs, timestamps and headers."""
    g = Gen(data)
    secrets = [g.secret() for _ in range(g.int(0, 2))]
    versions = tuple(v for v in ("v3", "v2", "v1") if g.bool())
    body = g.bytes(2048)
    method = g.pick(["POST", "POST", "PUT", g.text(6)])
    path = g.pick(["/", "/hubspot", "/a%3Ab%20c%2F", g.text(40)])
    query = g.pick(["", "x=1&y=%3A", g.text(20)])
    webhook_url = g.pick([None, None, "https://hooks.example.com/hubspot", g.text(40)])
    signer = g.pick(["v3", "v2", "v1"])
    secret = secrets[0] if secrets else g.secret()
    millis = int(NOW * 1000) + g.int(-400_000, 400_000)
    request = _request(body, {}, method=method, path=path, query=query)
    uri = hubspot.request_uri(request, webhook_url)
    if signer == "v3":
        headers = {
            hubspot.SIGNATURE_V3: hubspot.v3_signature(secret, request.method, uri, body, millis),
            hubspot.TIMESTAMP: str(millis),
        }
    elif signer == "v2":
        headers = {
            hubspot.SIGNATURE: hubspot.v2_signature(secret, request.method, uri, body),
            hubspot.SIGNATURE_VERSION: "v2",
        }
    else:
        headers = {hubspot.SIGNATURE: hubspot.v1_signature(secret, body), hubspot.SIGNATURE_VERSION: "v1"}
    mutated = _mutate_headers(g, headers, list(headers))
    request.headers.update({k.lower(): v for k, v in headers.items()})
    source = hubspot.HubSpotSource(versions=versions, webhook_url=webhook_url)
    check = lambda: source.verify(request, secrets, now=lambda: NOW)  # noqa: E731
    in_window = signer != "v3" or abs(NOW - millis / 1000) <= 300
    if not mutated and secrets and secret.strip() and signer in versions and in_window:
        _accepts(check)
    else:
        _refused_or_accepted(check)


@harness()
def verify_slack(data: bytes) -> None:
    """Slack v0 over fuzzed bodies, timestamps and headers."""
    g = Gen(data)
    secrets = [g.secret() for _ in range(g.int(0, 2))]
    secret = secrets[0] if secrets else g.secret()
    body = g.bytes(2048)
    seconds = int(NOW) + g.int(-400, 400)
    headers = {slack.SIGNATURE: slack.signature(secret, seconds, body), slack.TIMESTAMP: str(seconds)}
    mutated = _mutate_headers(g, headers, list(headers))
    request = _request(body, headers)
    check = lambda: slack.verify(request, secrets, now=lambda: NOW)  # noqa: E731
    if not mutated and secrets and secret.strip() and abs(NOW - seconds) <= 300:
        _accepts(check)
    else:
        _refused_or_accepted(check)


@harness()
def verify_pipedrive(data: bytes) -> None:
    """Pipedrive Basic credentials over fuzzed Authorization headers."""
    g = Gen(data)
    secrets = [g.secret() for _ in range(g.int(0, 2))]
    secret = secrets[0] if secrets else g.secret()
    headers = {"Authorization": pipedrive.authorization(secret)}
    mutated = _mutate_headers(g, headers, ["Authorization"])
    request = _request(g.bytes(256), headers)
    check = lambda: pipedrive.verify(request, secrets, now=lambda: NOW)  # noqa: E731
    if not mutated and secrets and secret.strip():
        _accepts(check)
    else:
        _refused_or_accepted(check)


@harness()
def verify_generic_standard(data: bytes) -> None:
    """Standard Webhooks over fuzzed secrets, ids, timestamps and signature lists."""
    g = Gen(data)
    secrets = [g.secret() for _ in range(g.int(0, 2))]
    secret = secrets[0] if secrets else g.secret()
    msg_id = g.pick(["msg_2cN4rB8xK1pQ7vW3zY6tF0hJ", g.text(40)])
    seconds = int(NOW) + g.int(-400, 400)
    body = g.bytes(2048)
    try:
        signature = generic.standard_signature(secret, msg_id, seconds, body)
        usable = bool(secret.strip())
    except IngestError:  # not a valid secret: sign with anything, the verifier must refuse it
        signature, usable = "v1," + base64.b64encode(g.bytes(32)).decode(), False
    if g.bool():  # rotation: other entries around the real one
        signature = " ".join([g.pick(["v1,AAAA", "v2,xyz", "v1,", ",", g.text(30)]), signature, g.text(20)])
    headers = {generic.WEBHOOK_ID: msg_id, generic.WEBHOOK_TIMESTAMP: str(seconds), generic.WEBHOOK_SIGNATURE: signature}  # fmt: skip
    mutated = _mutate_headers(g, headers, list(headers))
    request = _request(body, headers)
    check = lambda: generic.verify_standard(request, secrets, now=lambda: NOW)  # noqa: E731
    if not mutated and usable and secrets and msg_id and abs(NOW - seconds) <= 300:
        _accepts(check)
    else:
        _refused_or_accepted(check)


@harness()
def verify_generic_hmac(data: bytes) -> None:
    """Plain HMAC endpoints over fuzzed header names, encodings and prefixes."""
    g = Gen(data)
    secrets = [g.secret() for _ in range(g.int(0, 2))]
    secret = secrets[0] if secrets else g.secret()
    header = g.pick(["X-Signature", "X-Hub-Signature-256", "Attio-Signature", "x-" + "".join(c for c in g.text(12) if c.isascii() and (c.isalnum() or c == "-"))])  # fmt: skip
    settings = generic.GenericConfig(
        name="fuzz",
        scheme="hmac",
        signature_header=header,
        encoding=g.pick(["hex", "base64"]),
        prefix=g.pick(["", "sha256=", "SHA256=", g.text(8)]),
    )
    body = g.bytes(2048)
    headers = {
        header: generic.hmac_signature(secret, body, encoding=settings.encoding, prefix=settings.prefix)
    }
    mutated = _mutate_headers(g, headers, [header])
    request = _request(body, headers)
    check = lambda: generic.verify_hmac(request, secrets, settings, now=lambda: NOW)  # noqa: E731
    # A prefix with leading blanks cannot survive the header's own trimming: a configuration no
    # sender uses; the verifier may refuse it.
    plain_prefix = settings.prefix == settings.prefix.lstrip()
    if (
        not mutated
        and secrets
        and secret.strip()
        and plain_prefix
        and header.lower() not in ("host", "x-forwarded-proto")
    ):
        _accepts(check)
    else:
        _refused_or_accepted(check)


@harness()
def verify_generic_presets(data: bytes) -> None:
    """Every sender preset over fuzzed secrets, bodies, timestamps and signature headers."""
    from timeline_bridge.sources import hmac_scheme
    from timeline_bridge.sources.generic_presets import PRESETS

    g = Gen(data)
    scheme = PRESETS[g.pick(sorted(PRESETS))]
    secrets = [
        g.pick(["ab" * 32, g.secret()]) if scheme.key == "hex" else g.secret() for _ in range(g.int(0, 2))
    ]
    secret = secrets[0] if secrets else g.secret()
    tolerance = int(scheme.timestamp.tolerance) if scheme.timestamp else 0
    at = NOW + g.int(-tolerance - 5, tolerance + 5)
    body = g.bytes(2048)
    if scheme.timestamp and scheme.timestamp.where == "body":
        body = json.dumps({"type": "Issue", "webhookTimestamp": int(at * 1000), "x": g.text(30)}).encode()
    try:
        headers = hmac_scheme.sign(scheme, secret, body, now=at)
        usable = True
    except IngestError:  # not a key this scheme can use: the verifier must refuse it
        headers, usable = {scheme.header.replace("{n}", "1"): g.text(80)}, False
    mutated = _mutate_headers(g, headers, list(headers))
    request = _request(body, headers)
    check = lambda: hmac_scheme.verify(scheme, request, secrets, now=lambda: NOW)  # noqa: E731
    fresh = scheme.timestamp is None or abs(NOW - at) <= tolerance
    if not mutated and usable and secrets and secret.strip() and fresh:
        _accepts(check)
    else:
        _refused_or_accepted(check)


# --- body parsers ---------------------------------------------------------------------------------


def _check_events(parsed: ParsedRequest, source: str) -> None:
    for event in parsed.events:
        if not isinstance(event.event_type, str) or not (
            event.event_id is None or isinstance(event.event_id, str)
        ):
            raise FuzzFinding(f"bad identity types: {type(event.event_type)}, {type(event.event_id)}")
        envelope = Envelope(source, event.event_type, event.event_id or "", event.occurred_at, "2026-01-01T00:00:00.000Z", event.event)  # fmt: skip
        envelope.to_json().encode("utf-8")  # what ingest measures and SQS carries
        json.dumps(event.fingerprint, sort_keys=True, default=str)  # what dedupe hashes


def _parse(source: str, parse: Callable[[WebhookRequest], ParsedRequest], data: bytes) -> None:
    g = Gen(data)
    content_type = g.pick(["application/json", "application/x-www-form-urlencoded", "", "text/plain; charset=utf-8", g.text(20)])  # fmt: skip
    body = body_for(g, source)
    headers = {"content-type": content_type} if content_type else {}
    if source == "generic" and g.bool():
        headers[generic.WEBHOOK_ID] = g.text(30)
        headers[generic.WEBHOOK_TIMESTAMP] = g.pick(["1763900000", g.text(12)])
    try:
        parsed = parse(_request(body, headers))
    except IngestError:
        return
    _check_events(parsed, source)


@harness()
def parse_hubspot(data: bytes) -> None:
    """HubSpot event arrays."""
    _parse("hubspot", hubspot.parse, data)


@harness()
def parse_slack(data: bytes) -> None:
    """Slack interactivity forms and Events API bodies."""
    _parse("slack", slack.parse, data)


@harness()
def parse_pipedrive(data: bytes) -> None:
    """Pipedrive v1 and v2 bodies."""
    _parse("pipedrive", pipedrive.parse, data)


@harness()
def parse_generic(data: bytes) -> None:
    """Generic JSON bodies, Standard Webhooks and hmac endpoints, any type field path."""
    g = Gen(data)
    settings = generic.GenericConfig(
        scheme=g.pick(["standard", "hmac"]),
        id_header=g.pick([None, "X-Event-Id"]),
        type_field=g.pick(["type", "data.object.type", "event.type", g.text(12) or "type"]),
    )
    _parse("generic", lambda request: generic.parse(request, settings), data[1:] if data else data)


@harness()
def parse_generic_presets(data: bytes) -> None:
    """Generic bodies as each sender preset reads them (batches, joined ids, handshakes)."""
    from timeline_bridge.sources.generic_presets import PRESETS

    preset = sorted(PRESETS)[data[0] % len(PRESETS)] if data else "stripe"
    source = generic.GenericSource(generic.GenericConfig(name=preset, preset=preset))
    _parse("generic", source.parse, data[1:])


@harness()
def request_parts(data: bytes) -> None:
    """Function URL events, endpoint paths, timestamps, secret values, base URLs, throttle headers."""
    g = Gen(data)
    raw: Any = g.pick([None, "", g.text(200), base64.b64encode(g.bytes(300)).decode(), g.text(8) + "=="])
    event: dict[str, Any] = {
        "rawPath": g.pick(["/", "/generic/billing", "/generic/", "/generic/a/b", g.text(40)]),
        "rawQueryString": g.text(20),
        "headers": {g.text(12): g.text(30) for _ in range(g.int(0, 4))},
        "requestContext": {"http": {"method": g.pick(["POST", g.text(6)]), "path": g.text(20)}},
        "body": raw,
        "isBase64Encoded": g.bool(),
    }
    try:
        request = WebhookRequest.from_function_url_event(event, max_body_bytes=g.int(0, 512))
        _ = request.url, request.header("x-forwarded-proto"), request.header("HOST")
    except IngestError:
        pass
    with contextlib.suppress(IngestError):
        generic.endpoint_name(event["rawPath"])
    iso_from_epoch(g.value())  # an informative time: None when unreadable or out of range
    with contextlib.suppress(TimestampOutOfRangeError):  # a required one may be refused, no more
        iso_from_epoch(g.value(), field="fuzz.time")
    for value in config.parse_secret_value(
        g.pick([g.text(60), g.bytes(60).decode("utf-8", "replace"), None])
    ):
        if not isinstance(value, str) or not value.strip():
            raise FuzzFinding(f"parse_secret_value returned {value!r}")
    with contextlib.suppress(target_http.InsecureTargetError):
        target_http.check_base_url(g.text(40), allow_http=g.bool())
    header = g.pick([g.text(40), "Wed, 21 Oct 2015 07:28:00 GMT", "1e400", "-5", "nan", "Mon, 01 Jan 99999 00:00:00 GMT"])  # fmt: skip
    for parse in (
        target_http.parse_retry_after,
        target_http.parse_ratelimit_reset,
        target_http.parse_interval_ms,
    ):
        delay = parse(header)
        if delay is not None and not (delay >= 0 and delay == delay and delay != float("inf")):
            raise FuzzFinding(f"{parse.__name__}({header!r}) = {delay!r}")


# --- the whole ingest path ------------------------------------------------------------------------

INGEST_SECRETS = {
    "HUBSPOT_CLIENT_SECRET": "hs-client-secret-1",
    "SLACK_SIGNING_SECRET": "8f742231b10e8888abcd99yyyzzz85a5",
    "PIPEDRIVE_BASIC_AUTH": "hook:Zk3pL9qW2xV7nB4m",
    "GENERIC_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
SECRET_OF = {
    "hubspot": "HUBSPOT_CLIENT_SECRET",
    "slack": "SLACK_SIGNING_SECRET",
    "pipedrive": "PIPEDRIVE_BASIC_AUTH",
    "generic": "GENERIC_WEBHOOK_SECRET",
}
ANSWERS = {200, 400, 401, 404, 413, 503}


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@cache
def _ingest_setup() -> Any:
    """Environment and quiet logs for in-process ingest runs; returns the ingest module."""
    for name, value in INGEST_SECRETS.items():
        os.environ[name] = value
        os.environ.pop(f"{name}_SECRET_ID", None)
    for name in ("HUBSPOT_SIGNATURE_VERSIONS", "HUBSPOT_WEBHOOK_URL", "MAX_BODY_BYTES"):
        os.environ.pop(name, None)
    os.environ["HUBSPOT_SIGNATURE_VERSIONS"] = "v3,v2,v1"
    from timeline_bridge import ingest
    from timeline_bridge.observability import logger

    handler = getattr(logger, "logger_handler", None)
    if hasattr(handler, "setStream"):
        handler.setStream(_Sink())
    return ingest


class _Store:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], Any] = {}

    def claim(self, scope: str, event: Any, *, remaining_ms: int = 0) -> Any:
        from timeline_bridge.claims import ClaimState

        if event.event_id is None:
            return ClaimState.NO_KEY
        fingerprint = json.dumps(event.fingerprint, sort_keys=True, default=str)
        key = (scope, event.event_id)
        if key in self.records:
            return ClaimState.DUPLICATE if self.records[key] == fingerprint else ClaimState.MISMATCH
        self.records[key] = fingerprint
        return ClaimState.NEW

    def complete(self, scope: str, event: Any) -> None:
        pass

    def release(self, scope: str, event: Any) -> None:
        self.records.pop((scope, str(event.event_id)), None)


class _Queue:
    def send(self, envelopes: list[Envelope]) -> list[int]:
        for envelope in envelopes:
            envelope.to_json().encode("utf-8")
        return []


@harness()
def ingest_pipeline(data: bytes) -> None:
    """Whole requests through ingest.handle (in-memory dedupe and queue): always an HTTP answer."""
    ingest = _ingest_setup()
    from timeline_bridge.observability import metrics
    from timeline_bridge_tools.signing import sign_request

    g = Gen(data)
    source = g.pick(["hubspot", "slack", "pipedrive", "generic"])
    body = body_for(g, source)
    path = "/generic/" + g.pick(["billing", "default", g.text(10)]) if source == "generic" else "/"
    headers = {"host": HOST, "x-forwarded-proto": "https", "content-type": g.pick(["application/json", "application/x-www-form-urlencoded", g.text(10)])}  # fmt: skip
    if g.bool():
        url = f"https://{HOST}{path}"
        try:
            signed = sign_request(
                source, body, INGEST_SECRETS[SECRET_OF[source]], url=url, now=NOW, name="billing"
            )
        except IngestError:
            signed = {}
        headers |= {k.lower(): v for k, v in signed.items()}
    for _ in range(g.int(0, 2)):
        headers[g.pick(["webhook-id", "x-slack-signature", "authorization", g.text(10)])] = g.text(40)
    encode = g.bool()
    event = {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "POST", "path": path}},
        "body": base64.b64encode(body).decode() if encode else body.decode("utf-8", "surrogateescape"),
        "isBase64Encoded": encode,
    }
    try:
        answer = ingest.handle(event, None, source=source, now=lambda: NOW, store=_Store(), queue=_Queue())
    finally:
        metrics.clear_metrics()
    if answer.get("statusCode") not in ANSWERS or not isinstance(answer.get("body"), str):
        raise FuzzFinding(f"unexpected answer {answer!r}")


# --- the mapping evaluator ------------------------------------------------------------------------


@cache
def _mapping_cases() -> tuple[Any, list[tuple[Any, Envelope, dict[str, Any]]]]:
    """The shipped mappings and, per case of their cases files, (mapping, envelope, enrichment)."""
    from timeline_bridge.mapping.loader import load_mappings
    from timeline_bridge_tools.mapping.cases import case_envelope, cases_path, load_cases

    mappings = load_mappings(ROOT / "mappings")
    seeds = []
    for mapping in mappings:
        path = cases_path(Path(mapping.file) if Path(mapping.file).is_absolute() else ROOT / mapping.file)
        if not path.is_file():
            path = cases_path(ROOT / "mappings" / Path(mapping.file).name)
        for case in load_cases(path):
            try:
                seeds.append((mapping, case_envelope(case, mapping, ROOT), case.enrichment))
            except Exception:  # noqa: S112 - a case that cannot build an envelope is no seed
                continue
    return mappings, seeds


def _strict_json(value: Any) -> None:
    json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")


@harness()
def mapping_render(data: bytes) -> None:
    """Shipped mappings over mutated sample events and enrichment results: a job or a MappingError."""
    mappings, seeds = _mapping_cases()
    g = Gen(data)
    mapping, envelope, enrichment = g.pick(seeds)
    event = g.mutate(envelope.event, rounds=6)
    fetched = g.mutate(enrichment, rounds=6) if enrichment else {}
    if not isinstance(fetched, dict):
        fetched = {}
    mutated = Envelope(
        source=envelope.source,
        event_type=g.pick([envelope.event_type, g.word()]),
        event_id=g.pick([envelope.event_id, g.text(30)]),
        occurred_at=g.pick([envelope.occurred_at, None, g.word()]),
        received_at=envelope.received_at,
        event=event,
        name=envelope.name,
    )
    # As the route runs them: every mapping of the source, `when` first, then the body.
    for outcome in mappings.render_jobs(mutated, lambda m, e: fetched):
        outcome_job = outcome if isinstance(outcome, DeliveryJob) else outcome.dead_letter(mutated)
        outcome_job.to_json().encode("utf-8")
        if isinstance(outcome, DeliveryJob):
            _strict_json(outcome.body)
    # And each body whether or not `when` holds: more of the evaluator per input.
    try:
        body = mapping.render_body(mapping.context(mutated, fetched))
    except MappingError:
        return
    _strict_json(body)


@harness()
def mapping_loader(data: bytes) -> None:
    """Mapping files: any text is a list of MappingErrors or a mapping, never an exception."""
    from timeline_bridge.mapping.loader import check_text

    g = Gen(data)
    files = sorted(p for p in (ROOT / "mappings").glob("*.yaml") if not p.name.endswith(".cases.yaml"))
    if g.bool():
        text = g.text(2048)
    else:
        lines = g.pick(files).read_text().splitlines()
        for _ in range(g.int(1, 4)):
            position = g.int(0, len(lines))
            replacement = g.pick(
                [g.text(60), "  " + g.word() + ": " + g.text(30), "body: " + g.text(20), "&a [*a, *a]"]
            )
            if g.bool() and position < len(lines):
                lines[position] = replacement
            else:
                lines.insert(position, replacement)
        text = "\n".join(lines)
    mapping, errors = check_text(text, "fuzz.yaml")
    if (mapping is None) == (not errors):
        raise FuzzFinding("check_text returned neither a mapping nor errors, or both")


# --- the providers' answers -----------------------------------------------------------------------


@cache
def _hubspot_client() -> Any:
    from timeline_bridge.targets import hubspot as hubspot_target

    settings = config.Settings.from_environ({})  # nothing set: only the answers vary
    return hubspot_target.HubspotClient(settings, config.Secrets(settings, lambda: None), token=lambda: "t")


def _job(target: str, body: dict[str, Any]) -> DeliveryJob:
    return DeliveryJob(
        key="tb-" + "0" * 40,
        target=target,
        mapping="fuzz",
        mapping_file="mappings/fuzz.yaml",
        source="hubspot",
        event_id="evt-1",
        event_type="deal.propertyChange",
        occurred_at=None,
        body=body,
    )


@harness()
def target_answers(data: bytes) -> None:
    """Any status, headers and body from a provider classify into an outcome, and dead-letter."""
    import requests
    from timeline_bridge.delivery import dead_letter_record
    from timeline_bridge.targets import applied, matter, stora
    from timeline_bridge.targets import hubspot as hubspot_target

    g = Gen(data)
    response = requests.Response()
    response.status_code = g.pick(
        [200, 201, 207, 301, 400, 401, 404, 409, 422, 429, 500, 503, 504, g.int(100, 599)]
    )
    for _ in range(g.int(0, 4)):
        name = g.pick(["Retry-After", "RateLimit-Reset", "X-HubSpot-RateLimit-Interval-Milliseconds", "Matter-Request-Id", "X-Request-Id", "Content-Type"])  # fmt: skip
        response.headers[name] = g.pick([g.text(30), str(g.int(-10, 2_000_000_000)), "Wed, 21 Oct 2015 07:28:00 GMT", "1e400"])  # fmt: skip
    response._content = g.bytes(512) if g.int(0, 3) == 0 else _dumps(g, g.value())
    body = {"contact": {"email": "x@example.test"}} if g.bool() else {"metric": {"metric_name": "m"}}
    ids = [g.pick(["tb-a", "tb-b", g.word()]) for _ in range(g.int(1, 3))]
    outcomes: list[Any] = [
        stora.classify(response, _job("stora", {})),
        matter.classify(response),
        applied.classify(response, _job("applied", body)),
        hubspot_target.classify_error(response, now=NOW),
        *_hubspot_client()._partial(
            hubspot_target.APIS[g.pick(sorted(hubspot_target.APIS))],
            response,
            [
                hubspot_target._Item(i, g.pick([event_id, f"key-{i}"]), {"id": event_id})
                for i, event_id in enumerate(ids)
            ],
        ),
    ]
    for outcome in outcomes:
        if not isinstance(outcome, Delivered | DeliveryFailure):
            raise FuzzFinding(f"not an outcome: {outcome!r}")
        if isinstance(outcome, DeliveryFailure):
            job = _job("stora", {})
            job.dead_letter = dead_letter_record(job, "permanent_failure", outcome, NOW)
            job.to_json().encode("utf-8")
            str(outcome)
