"""The verifier matrix (FM-11, FM-12): every scheme, one mutation per case, a frozen clock.

Modelled on the Standard Webhooks library tests. Each scheme signs a valid request; each test
changes exactly one thing and expects `SignatureError` (or `SecretNotConfiguredError` when no
secret is configured). The baseline test proves the unmutated request passes, so every rejection
is caused by its mutation.

Pipedrive signs nothing (Basic credentials only), so the body and timestamp mutations do not apply
to it; HubSpot v1/v2 carry no timestamp.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from timeline_bridge import ingest, sources
from timeline_bridge.errors import SecretNotConfiguredError, SignatureError
from timeline_bridge.observability import metrics
from timeline_bridge.sources import generic, hubspot, pipedrive, slack
from timeline_bridge.sources.base import Source
from timeline_bridge.sources.generic import GenericConfig, GenericSource
from timeline_bridge.sources.hubspot import HubSpotSource
from timeline_bridge.sources.pipedrive import PipedriveSource
from timeline_bridge.sources.slack import SlackSource

NOW = 1763900000.0  # 2025-11-23T12:13:20Z
HOST = "hooks.example.com"
PATH = "/hubspot"
URL = f"https://{HOST}{PATH}"
BODY = b'[{"eventId":1,"subscriptionId":2,"portalId":3,"occurredAt":1763899315724,"subscriptionType":"deal.creation","objectId":4}]'
OTHER_BODY = b'[{"eventId":9,"subscriptionId":2,"portalId":3,"occurredAt":1763899315724,"subscriptionType":"deal.creation","objectId":4}]'

Signer = Callable[[bytes, str, float], dict[str, str]]


@dataclass(frozen=True)
class Scheme:
    id: str
    source: Source
    secret: str
    other_secret: str
    sign: Signer
    signature_headers: tuple[str, ...]
    timestamped: bool = True
    signs_body: bool = True

    def __str__(self) -> str:
        return self.id


def _hubspot_v3(body: bytes, secret: str, now: float) -> dict[str, str]:
    millis = str(int(now * 1000))
    return {
        "X-HubSpot-Signature-v3": hubspot.v3_signature(secret, "POST", URL, body, millis),
        "X-HubSpot-Request-Timestamp": millis,
    }


def _hubspot_v2(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {
        "X-HubSpot-Signature": hubspot.v2_signature(secret, "POST", URL, body),
        "X-HubSpot-Signature-Version": "v2",
    }


def _hubspot_v1(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {"X-HubSpot-Signature": hubspot.v1_signature(secret, body), "X-HubSpot-Signature-Version": "v1"}


def _slack(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {
        "X-Slack-Signature": slack.signature(secret, int(now), body),
        "X-Slack-Request-Timestamp": str(int(now)),
    }


def _pipedrive(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {"Authorization": pipedrive.authorization(secret)}


def _standard(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {
        "webhook-id": "msg_2cN4rB8xK1pQ7vW3zY6tF0hJ",
        "webhook-timestamp": str(int(now)),
        "webhook-signature": generic.standard_signature(
            secret, "msg_2cN4rB8xK1pQ7vW3zY6tF0hJ", int(now), body
        ),
    }


HMAC_CONFIG = GenericConfig(name="crm", scheme="hmac", signature_header="X-Crm-Signature", prefix="sha256=")


def _hmac(body: bytes, secret: str, now: float) -> dict[str, str]:
    return {"X-Crm-Signature": generic.hmac_signature(secret, body, prefix="sha256=")}


SCHEMES = [
    Scheme(
        "hubspot-v3",
        HubSpotSource(),
        "hs-client-secret-1",
        "hs-client-secret-2",
        _hubspot_v3,
        ("X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"),
    ),
    Scheme(
        "hubspot-v2",
        HubSpotSource(versions=("v2",)),
        "hs-client-secret-1",
        "hs-client-secret-2",
        _hubspot_v2,
        ("X-HubSpot-Signature", "X-HubSpot-Signature-Version"),
        timestamped=False,
    ),
    Scheme(
        "hubspot-v1",
        HubSpotSource(versions=("v1",)),
        "hs-client-secret-1",
        "hs-client-secret-2",
        _hubspot_v1,
        ("X-HubSpot-Signature", "X-HubSpot-Signature-Version"),
        timestamped=False,
    ),
    Scheme(
        "slack",
        SlackSource(),
        "8f742231b10e8888abcd99yyyzzz85a5",
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        _slack,
        ("X-Slack-Signature", "X-Slack-Request-Timestamp"),
    ),
    Scheme(
        "pipedrive",
        PipedriveSource(),
        "hook:Zk3pL9qW2xV7nB4m",
        "hook:Qm8rT2yU6iO0pA1s",
        _pipedrive,
        ("Authorization",),
        timestamped=False,
        signs_body=False,
    ),
    Scheme(
        "generic-standard",
        GenericSource(GenericConfig(name="billing")),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        _standard,
        ("webhook-id", "webhook-timestamp", "webhook-signature"),
    ),
    Scheme(
        "generic-hmac",
        GenericSource(HMAC_CONFIG),
        "crm-secret-one",
        "crm-secret-two",
        _hmac,
        ("X-Crm-Signature",),
        timestamped=False,
    ),
]

BODY_SIGNED = [s for s in SCHEMES if s.signs_body]
TIMESTAMPED = [s for s in SCHEMES if s.timestamped]
HEADER_CASES = [pytest.param(s, h, id=f"{s.id}-{h}") for s in SCHEMES for h in s.signature_headers]


def clock(at: float = NOW) -> Callable[[], float]:
    return lambda: at


def request(make_request, scheme: Scheme, headers: dict[str, str], body: bytes = BODY, **where):
    options = {"host": HOST, "path": PATH, "encode": True} | where
    return make_request(body, headers, **options)


def signed(
    make_request, scheme: Scheme, *, secret: str | None = None, at: float = NOW, body: bytes = BODY, **where
):
    return request(make_request, scheme, scheme.sign(body, secret or scheme.secret, at), body, **where)


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_accepted_when_signed_with_the_configured_secret(make_request, scheme):
    scheme.source.verify(signed(make_request, scheme), [scheme.secret], now=clock())


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_accepted_when_header_names_are_upper_case(make_request, scheme):
    headers = {k.upper(): v for k, v in scheme.sign(BODY, scheme.secret, NOW).items()}
    scheme.source.verify(request(make_request, scheme, headers), [scheme.secret], now=clock())


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_rejected_when_signed_with_another_secret(make_request, scheme):
    with pytest.raises(SignatureError):
        scheme.source.verify(
            signed(make_request, scheme, secret=scheme.other_secret), [scheme.secret], now=clock()
        )


@pytest.mark.parametrize("scheme", BODY_SIGNED, ids=str)
def test_rejected_when_body_altered_by_one_byte(make_request, scheme):
    headers = scheme.sign(BODY, scheme.secret, NOW)
    altered = BODY[:10] + bytes([BODY[10] ^ 0x01]) + BODY[11:]
    with pytest.raises(SignatureError):
        scheme.source.verify(request(make_request, scheme, headers, altered), [scheme.secret], now=clock())


@pytest.mark.parametrize("scheme", BODY_SIGNED, ids=str)
def test_rejected_when_signature_is_for_another_body(make_request, scheme):
    headers = scheme.sign(OTHER_BODY, scheme.secret, NOW)
    with pytest.raises(SignatureError):
        scheme.source.verify(request(make_request, scheme, headers, BODY), [scheme.secret], now=clock())


@pytest.mark.parametrize(("scheme", "header"), HEADER_CASES)
def test_rejected_when_header_missing(make_request, scheme, header):
    headers = scheme.sign(BODY, scheme.secret, NOW)
    del headers[header]
    with pytest.raises(SignatureError):
        scheme.source.verify(request(make_request, scheme, headers), [scheme.secret], now=clock())


@pytest.mark.parametrize(("scheme", "header"), HEADER_CASES)
def test_rejected_when_header_empty(make_request, scheme, header):
    headers = scheme.sign(BODY, scheme.secret, NOW) | {header: ""}
    with pytest.raises(SignatureError):
        scheme.source.verify(request(make_request, scheme, headers), [scheme.secret], now=clock())


@pytest.mark.parametrize("skew", [-301, 301], ids=["past-301s", "future-301s"])
@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_rejected_when_timestamp_outside_tolerance(make_request, scheme, skew):
    with pytest.raises(SignatureError) as caught:
        scheme.source.verify(signed(make_request, scheme, at=NOW + skew), [scheme.secret], now=clock())
    assert caught.value.reason in ("timestamp_expired", "timestamp_in_future")


@pytest.mark.parametrize("skew", [-300, 300], ids=["past-300s", "future-300s"])
@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_accepted_when_timestamp_at_tolerance_edge(make_request, scheme, skew):
    scheme.source.verify(signed(make_request, scheme, at=NOW + skew), [scheme.secret], now=clock())


@pytest.mark.parametrize("which", ["old", "new"])
@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_accepted_during_rotation_when_signed_with_either_secret(make_request, scheme, which):
    secret = scheme.secret if which == "old" else scheme.other_secret
    scheme.source.verify(
        signed(make_request, scheme, secret=secret), [scheme.secret, scheme.other_secret], now=clock()
    )


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_rejected_during_rotation_when_signed_with_neither_secret(make_request, scheme):
    third = {"pipedrive": "hook:third"}.get(scheme.id, "whsec_dGhpcmQtc2VjcmV0LXZhbHVlLTEyMzQ=")
    with pytest.raises(SignatureError):
        scheme.source.verify(
            signed(make_request, scheme, secret=third), [scheme.secret, scheme.other_secret], now=clock()
        )


def test_standard_webhooks_accepted_when_header_carries_old_and_new_signatures(make_request):
    scheme = next(s for s in SCHEMES if s.id == "generic-standard")
    old = scheme.sign(BODY, scheme.secret, NOW)
    new = scheme.sign(BODY, scheme.other_secret, NOW)
    both = old | {"webhook-signature": f"{old['webhook-signature']} {new['webhook-signature']}"}
    for configured in ([scheme.secret], [scheme.other_secret]):
        scheme.source.verify(request(make_request, scheme, both), configured, now=clock())


@pytest.mark.parametrize("configured", [[], [""], ["   "]], ids=["none", "empty", "blank"])
@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_fails_closed_when_secret_empty(make_request, scheme, configured):
    # Signed with the empty secret itself: an HMAC with an empty key is computable by anyone.
    empty = ":" if scheme.id == "pipedrive" else ""
    try:
        headers = scheme.sign(BODY, empty, NOW)
    except SecretNotConfiguredError:  # a whsec_ secret cannot even be empty
        headers = scheme.sign(BODY, scheme.secret, NOW)
    with pytest.raises(SecretNotConfiguredError):
        scheme.source.verify(request(make_request, scheme, headers), configured, now=clock())


@pytest.mark.parametrize(
    "where",
    [
        pytest.param({"proto": "http"}, id="http-instead-of-https"),
        pytest.param({"path": PATH + "/"}, id="trailing-slash-added"),
        pytest.param({"host": "hooks.example.com.evil.test"}, id="other-host"),
        pytest.param({"query": "x=1"}, id="query-added"),
        pytest.param({"path": PATH.upper()}, id="path-case"),
    ],
)
def test_hubspot_v3_rejected_when_url_differs_from_the_signed_one(make_request, where):
    scheme = SCHEMES[0]
    with pytest.raises(SignatureError):
        scheme.source.verify(signed(make_request, scheme, **where), [scheme.secret], now=clock())


def test_hubspot_v3_rejected_when_signed_url_had_trailing_slash(make_request):
    millis = str(int(NOW * 1000))
    headers = {
        "X-HubSpot-Signature-v3": hubspot.v3_signature("hs-client-secret-1", "POST", URL + "/", BODY, millis),
        "X-HubSpot-Request-Timestamp": millis,
    }
    with pytest.raises(SignatureError):
        SCHEMES[0].source.verify(
            request(make_request, SCHEMES[0], headers), ["hs-client-secret-1"], now=clock()
        )


def test_hubspot_v3_rejected_when_method_differs(make_request):
    scheme = SCHEMES[0]
    with pytest.raises(SignatureError):
        scheme.source.verify(signed(make_request, scheme, method="PUT"), [scheme.secret], now=clock())


# --- more single mutations --------------------------------------------------------------------


def _flip_one_character(value: str) -> str:
    """The value with one character changed, keeping it in the same alphabet (hex stays hex,
    base64 stays base64), so only the comparison can reject it."""
    index = len(value) // 2
    current = value[index]
    replacement = "b" if current == "a" else "a"
    return value[:index] + replacement + value[index + 1 :]


@pytest.mark.parametrize("scheme", SCHEMES, ids=str)
def test_rejected_when_signature_altered_by_one_character(make_request, scheme):
    headers = scheme.sign(BODY, scheme.secret, NOW)
    name = scheme.signature_headers[0]
    headers[name] = _flip_one_character(headers[name])
    with pytest.raises(SignatureError):
        scheme.source.verify(request(make_request, scheme, headers), [scheme.secret], now=clock())


TIMESTAMP_HEADERS = {
    "hubspot-v3": "X-HubSpot-Request-Timestamp",
    "slack": "X-Slack-Request-Timestamp",
    "generic-standard": "webhook-timestamp",
}


@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_rejected_when_a_stale_request_gets_a_fresh_timestamp(make_request, scheme):
    # The replay attack: an old signed request with its timestamp header rewritten to now.
    headers = scheme.sign(BODY, scheme.secret, NOW - 3600)
    fresh = scheme.sign(BODY, scheme.secret, NOW)
    name = TIMESTAMP_HEADERS[scheme.id]
    headers[name] = fresh[name]
    with pytest.raises(SignatureError) as caught:
        scheme.source.verify(request(make_request, scheme, headers), [scheme.secret], now=clock())
    assert caught.value.reason == "signature_invalid"


@pytest.mark.parametrize(
    "value",
    [
        "-1763900000",
        "1763900000.0",
        "+1763900000",
        "".join(chr(0xFF10 + int(d)) for d in "1763900000"),
        "0x6923",
        "1" * 17,
    ],
    ids=["negative", "decimal", "plus-sign", "full-width-digits", "hex", "too-long"],
)
@pytest.mark.parametrize("scheme", TIMESTAMPED, ids=str)
def test_rejected_when_timestamp_is_not_plain_digits(make_request, scheme, value):
    headers = scheme.sign(BODY, scheme.secret, NOW) | {TIMESTAMP_HEADERS[scheme.id]: value}
    with pytest.raises(SignatureError) as caught:
        scheme.source.verify(request(make_request, scheme, headers), [scheme.secret], now=clock())
    assert caught.value.reason == "timestamp_invalid"


def test_standard_webhooks_rejected_when_webhook_id_changed_after_signing(make_request):
    # The id is signed: a replay under a new id (to slip past dedupe) must fail.
    scheme = next(s for s in SCHEMES if s.id == "generic-standard")
    headers = scheme.sign(BODY, scheme.secret, NOW) | {"webhook-id": "msg_2cN4rB8xK1pQ7vW3zY6tF0hK"}
    with pytest.raises(SignatureError):
        scheme.source.verify(request(make_request, scheme, headers), [scheme.secret], now=clock())


@pytest.mark.parametrize(
    "where",
    [
        pytest.param({"proto": "http"}, id="http-instead-of-https"),
        pytest.param({"path": PATH + "/"}, id="trailing-slash-added"),
        pytest.param({"query": "x=1"}, id="query-added"),
    ],
)
def test_hubspot_v2_rejected_when_url_differs_from_the_signed_one(make_request, where):
    scheme = next(s for s in SCHEMES if s.id == "hubspot-v2")
    with pytest.raises(SignatureError):
        scheme.source.verify(signed(make_request, scheme, **where), [scheme.secret], now=clock())


def test_rotation_ignores_blank_entries_when_the_list_has_a_real_secret(make_request):
    scheme = SCHEMES[0]
    scheme.source.verify(signed(make_request, scheme), ["", "  ", scheme.secret], now=clock())
    with pytest.raises(SignatureError):
        scheme.source.verify(
            signed(make_request, scheme, secret=scheme.other_secret), ["", scheme.secret], now=clock()
        )


# --- rejected before parsing: the whole ingest path, for every scheme ----------------------------


class _NeverParsed:
    """Wraps a source: verification is the real one, parsing must never be reached."""

    def __init__(self, inner: Source, secret: str) -> None:
        self.inner = inner
        self.secret = secret
        self.name = inner.name
        self.scope = inner.scope
        self.endpoint_name = inner.endpoint_name

    def secrets(self, secrets) -> list[str]:
        return [self.secret]

    def verify(self, request, secrets, *, now):
        self.inner.verify(request, secrets, now=now)

    def parse(self, request):
        raise AssertionError("parsed before verification passed")


class _Untouchable:
    def __getattr__(self, name):
        raise AssertionError(f"{name} reached before verification passed")


def _mutations(scheme: Scheme) -> list[tuple[str, dict[str, str]]]:
    good = scheme.sign(BODY, scheme.secret, NOW)
    cases = [
        ("wrong-secret", scheme.sign(BODY, scheme.other_secret, NOW)),
        ("header-missing", {k: v for k, v in good.items() if k != scheme.signature_headers[0]}),
    ]
    if scheme.signs_body:
        cases.append(("signature-for-another-body", scheme.sign(OTHER_BODY, scheme.secret, NOW)))
    if scheme.timestamped:
        cases.append(("old-timestamp", scheme.sign(BODY, scheme.secret, NOW - 301)))
    return cases


BEFORE_PARSING = [
    pytest.param(scheme, name, headers, id=f"{scheme.id}-{name}")
    for scheme in SCHEMES
    for name, headers in _mutations(scheme)
]


@pytest.mark.parametrize(("scheme", "mutation", "headers"), BEFORE_PARSING)
def test_refused_with_401_before_parsing_when_verification_fails(monkeypatch, scheme, mutation, headers):
    # An unparseable body: had it been parsed, the answer would be 400, not 401.
    event = {
        "version": "2.0",
        "rawPath": PATH,
        "rawQueryString": "",
        "headers": {"host": HOST, "x-forwarded-proto": "https", **{k.lower(): v for k, v in headers.items()}},
        "requestContext": {"http": {"method": "POST", "path": PATH}},
        "body": base64.b64encode(BODY[:-1]).decode(),
        "isBase64Encoded": True,
    }
    monkeypatch.setattr(
        sources, "for_request", lambda name, req, settings: _NeverParsed(scheme.source, scheme.secret)
    )

    answer = ingest.handle(
        event, None, source=scheme.source.name, now=clock(), store=_Untouchable(), queue=_Untouchable()
    )

    assert answer["statusCode"] == 401
    metrics.clear_metrics()
