"""Generic presets: each sender's published (or worked) vector on a frozen clock, then one mutation
per test for every preset, then what each preset reads as event id, type and time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from timeline_bridge import errors, ingest
from timeline_bridge.config import Settings
from timeline_bridge.errors import MalformedBodyError, SecretNotConfiguredError, SignatureError
from timeline_bridge.sources import generic, hmac_scheme
from timeline_bridge.sources.generic import GenericConfig, GenericSource
from timeline_bridge.sources.generic_presets import PRESETS
from timeline_bridge_tools.signing import sign_request

NOW = 1763900000.0  # 2025-11-23T12:13:20Z


def source(preset: str, **settings: object) -> GenericSource:
    return GenericSource(GenericConfig(name=preset, preset=preset, **settings))  # type: ignore[arg-type]


def at(seconds: float) -> Callable[[], float]:
    return lambda: seconds


# --- published vectors (senders' docs and SDK tests), and worked ones where none is published ---------

VECTORS = [
    # docs.github.com "Validating webhook deliveries"
    pytest.param(
        "github",
        "It's a Secret to Everybody",
        b"Hello, World!",
        {"X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"},
        NOW,
        id="github-docs",
    ),
    # octokit/webhooks-methods.js test/verify.test.ts: JSON.stringify({foo: "bar"}, null, 2) + "\n"
    pytest.param(
        "github",
        "mysecret",
        b'{\n  "foo": "bar"\n}\n',
        {"X-Hub-Signature-256": "sha256=e3eccac34c43c7dc1cbb905488b1b81347fcc700a7b025697a9d07862256023f"},
        NOW,
        id="github-octokit",
    ),
    # Shopify/shopify-app-js validate.test.ts
    pytest.param(
        "shopify",
        "test_secret_key",
        b'{"foo": "bar"}',
        {"X-Shopify-Hmac-Sha256": "B23tXN681gZ0qIWNRrgtzBE9XSDo5yaUu6wfmhu3a7g="},
        NOW,
        id="shopify-sdk",
    ),
    # PaddleHQ/paddle-node-sdk webhooks-validator.node.test.ts
    pytest.param(
        "paddle",
        "VALID_SECRET",
        b'{"data": ["1", "2"]}',
        {
            "Paddle-Signature": "ts=1698796800;h1=a300428748dce5c70e4da19bffd60769591ea969c99dea3105d0ec9612cf43f9"
        },
        1698796800.0,
        id="paddle-sdk-list",
    ),
    pytest.param(
        "paddle",
        "VALID_SECRET",
        b'{"data": "value"}',
        {
            "Paddle-Signature": "ts=1698796800;h1=28981e941fae76e53db32f3d2a83cb69db41476595e84e1970a1b5d98f62b261"
        },
        1698796800.0,
        id="paddle-sdk-object",
    ),
    # stripe-python tests/test_webhook.py DUMMY_WEBHOOK_PAYLOAD, signed at t=1700000000 (the SDK
    # builds its headers at run time, so this value was computed from its scheme).
    pytest.param(
        "stripe",
        "whsec_test_secret",
        b'{\n  "id": "evt_test_webhook",\n  "object": "event",\n'
        b'  "data": { "object": { "id": "rdr_123", "object": "terminal.reader" } }\n}',
        {
            "Stripe-Signature": "t=1700000000,v1=3bfab77baf5f7b6991a46c9b53b6547d7afc56148b10468fcad9f35c1992ffbd"
        },
        1700000000.0,
        id="stripe-computed",
    ),
    # Zendesk's current "Verifying webhook authenticity" page: base64 HMAC of TIMESTAMP + BODY,
    # with the secret used as text. An older page wrote (BODY)(TIMESTAMP) and published
    # tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw= for this input, which only matches body first
    # (see test_zendesk_older_docs_order_*). This is the current order's value; its ends
    # (Rry/4TtI...ZIk=) are the ones quoted for that order.
    pytest.param(
        "zendesk",
        "HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA=",
        b'{"say": "hello"}',
        {
            "X-Zendesk-Webhook-Signature": "Rry/4TtIdFyawtXXp8QdI6tlAUUQ/5kL1OTp5qo/ZIk=",
            "X-Zendesk-Webhook-Signature-Timestamp": "2021-07-25T10:00:00Z",
        },
        1627207200.0,  # 2021-07-25T10:00:00Z
        id="zendesk-current-docs",
    ),
    # Close: no official vector; worked from the scheme (timestamp + body, key = the hex decoded).
    pytest.param(
        "close",
        "ab" * 32,
        b'{"event":{"id":"ev_test"}}',
        {
            "close-sig-hash": "6208cf253688f35293cdece2446d29872c0a9fd9db0ab807d0835df6afa653e1",
            "close-sig-timestamp": "1700000000",
        },
        1700000000.0,
        id="close-worked",
    ),
    # Calendly: no official vector; worked from the scheme ("{t}." + body).
    pytest.param(
        "calendly",
        "test_signing_key",
        b'{"event":"invitee.created"}',
        {
            "Calendly-Webhook-Signature": "t=1700000000,v1=1b9e4f95afd27ea6010287b077052208ff553025daf21dc6a0cfaa806f300085"
        },
        1700000000.0,
        id="calendly-worked",
    ),
    # No published vector for the five below: each value was computed with Python's hmac module
    # from the sender's documented scheme.
    pytest.param(
        "intercom",
        "intercom_client_secret",
        b'{"type":"notification_event","topic":"ping","id":"notif_1"}',
        {"X-Hub-Signature": "sha1=2a8c5ee11b931bd84d25e5d782e7e5b0dcc7cdae"},
        NOW,
        id="intercom-worked",
    ),
    pytest.param(
        "typeform",
        "typeform_secret",
        b'{"event_id":"01HX","event_type":"form_response"}',
        {"Typeform-Signature": "sha256=lGDFgwp/A2w6vXtwR8PgdT8aUFuiVpIjqR8s5D3u8E0="},
        NOW,
        id="typeform-worked",
    ),
    pytest.param(
        "attio",
        "attio_secret",
        b'{"webhook_id":"wh_1","events":[{"event_type":"record.created"}]}',
        {"Attio-Signature": "a1dfe0aac4615a566d737b1a70af1dcd1808ffbe01faf83794ee5b8d2ac7ad00"},
        NOW,
        id="attio-worked",
    ),
    pytest.param(
        "linear",
        "lin_wh_secret",
        b'{"action":"create","type":"Issue","webhookTimestamp":1700000000000}',
        {"Linear-Signature": "91e919dc0fd99df1cae12efef1ca08b082cfa523f101b572ec14ed98863fdf35"},
        1700000000.0,
        id="linear-worked",
    ),
    pytest.param(
        "docusign",
        "docusign_hmac_key",
        b'{"event":"envelope-completed"}\r\n',  # the whole body, line endings included
        {"X-DocuSign-Signature-1": "M7ge1eiIrD14InUEavaDB4PAcW7dV6DyLAXkxrxxwIE="},
        NOW,
        id="docusign-worked",
    ),
]


@pytest.mark.parametrize(("preset", "secret", "body", "headers", "now"), VECTORS)
def test_vector_accepted_on_a_frozen_clock(make_request, preset, secret, body, headers, now):
    source(preset).verify(make_request(body, headers), [secret], now=at(now))


@pytest.mark.parametrize(("preset", "secret", "body", "headers", "now"), VECTORS)
def test_signer_reproduces_the_vector(preset, secret, body, headers, now):
    name = PRESETS[preset].header.replace("{n}", "1")
    signed = hmac_scheme.sign(PRESETS[preset], secret, body, now=now)
    assert signed[name] == headers[name]


def test_every_preset_has_a_vector():
    assert {p.values[0] for p in VECTORS} == set(PRESETS)


ZENDESK_SECRET = "HRkRd4BeOAoUkfZr-mhauJT64rvBASlJRoIyPsd3zeA="
ZENDESK_OLDER = {
    "X-Zendesk-Webhook-Signature": "tRDSF7URY8BLCDlaBcQ7FHu051Zk+aAB0NKMP53teMw=",
    "X-Zendesk-Webhook-Signature-Timestamp": "2021-07-25T10:00:00Z",
}


def test_zendesk_older_docs_order_refused_by_the_preset(make_request):
    # The preset follows the current docs; until a live delivery settles the order, the older
    # page's vector (body first) is refused by it...
    with pytest.raises(SignatureError):
        source("zendesk").verify(
            make_request(b'{"say": "hello"}', ZENDESK_OLDER), [ZENDESK_SECRET], now=at(1627207200)
        )


def test_zendesk_older_docs_order_accepted_when_signed_content_set(make_request):
    # ... and accepted once the endpoint is told that order (GENERIC_<NAME>_SIGNED_CONTENT).
    zendesk = source("zendesk", signed_content="{body}{ts}")
    zendesk.verify(make_request(b'{"say": "hello"}', ZENDESK_OLDER), [ZENDESK_SECRET], now=at(1627207200))


# --- one mutation per test, every preset ----------------------------------------------------------

SECRETS = {
    "stripe": ("whsec_9Hk2pLm4QrSt6UvWx8Yz", "whsec_1Ab3Cd5Ef7Gh9Ij0Kl2Mn"),
    "close": ("ab" * 32, "cd" * 32),
}
BODIES = {
    "attio": b'{"webhook_id":"wh_1","events":[{"event_type":"record.updated","id":{"record_id":"r1"}}]}',
    "linear": b'{"action":"update","type":"Issue","data":{"id":"i1"},"webhookTimestamp":%d}',
}
DEFAULT_BODY = b'{"id":"evt_1","type":"invoice.paid","data":{"object":{"id":"in_1"}}}'


def secrets_of(preset: str) -> tuple[str, str]:
    return SECRETS.get(preset, (f"{preset}-secret-one", f"{preset}-secret-two"))


def body_of(preset: str, at_seconds: float = NOW) -> bytes:
    body = BODIES.get(preset, DEFAULT_BODY)
    return body % int(at_seconds * 1000) if b"%d" in body else body


def signed_headers(
    preset: str, *, secret: str | None = None, at_seconds: float = NOW, body: bytes | None = None
) -> dict[str, str]:
    scheme = PRESETS[preset]
    content = body if body is not None else body_of(preset, at_seconds)
    return hmac_scheme.sign(scheme, secret or secrets_of(preset)[0], content, now=at_seconds)


def check(
    make_request, preset: str, headers: dict[str, str], body: bytes | None = None, *, secrets=None
) -> None:
    request = make_request(body if body is not None else body_of(preset), headers)
    source(preset).verify(request, list(secrets or secrets_of(preset)[:1]), now=at(NOW))


def refused(make_request, preset: str, headers: dict[str, str], body: bytes | None = None) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        check(make_request, preset, headers, body)
    assert caught.value.status == 401
    return caught.value


def signature_header(preset: str) -> str:
    return PRESETS[preset].header.replace("{n}", "1")


ALL = sorted(PRESETS)
TIMESTAMPED = sorted(p for p, s in PRESETS.items() if s.timestamp is not None)
HEADER_STAMPED = sorted(p for p in TIMESTAMPED if PRESETS[p].timestamp.where != "body")  # type: ignore[union-attr]
PREFIXED = sorted(p for p, s in PRESETS.items() if s.prefix)


@pytest.mark.parametrize("preset", ALL)
def test_accepted_when_signed_now_with_the_configured_secret(make_request, preset):
    check(make_request, preset, signed_headers(preset))


@pytest.mark.parametrize("preset", ALL)
def test_accepted_when_header_names_are_upper_case(make_request, preset):
    check(make_request, preset, {k.upper(): v for k, v in signed_headers(preset).items()})


@pytest.mark.parametrize("preset", ALL)
def test_rejected_when_signed_with_another_secret(make_request, preset):
    refused(make_request, preset, signed_headers(preset, secret=secrets_of(preset)[1]))


@pytest.mark.parametrize("preset", ALL)
def test_rejected_when_body_altered_by_one_byte(make_request, preset):
    body = body_of(preset)
    altered = body[:12] + bytes([body[12] ^ 0x01]) + body[13:]
    refused(make_request, preset, signed_headers(preset), altered)


@pytest.mark.parametrize("preset", ALL)
def test_rejected_when_signature_altered_by_one_character(make_request, preset):
    headers = signed_headers(preset)
    name = signature_header(preset)
    value = headers[name]
    index = len(value) - 6  # inside the signature itself, past any prefix or timestamp item
    headers[name] = value[:index] + ("b" if value[index] == "a" else "a") + value[index + 1 :]
    refused(make_request, preset, headers)


@pytest.mark.parametrize("preset", ALL)
def test_rejected_when_signature_header_missing(make_request, preset):
    headers = signed_headers(preset)
    del headers[signature_header(preset)]
    assert refused(make_request, preset, headers).reason == "signature_missing"


@pytest.mark.parametrize("preset", ALL)
def test_rejected_when_signature_header_empty(make_request, preset):
    refused(make_request, preset, signed_headers(preset) | {signature_header(preset): ""})


@pytest.mark.parametrize("preset", ALL)
def test_rejected_when_signature_is_not_in_the_encoding(make_request, preset):
    headers = signed_headers(preset)
    name = signature_header(preset)
    headers[name] = headers[name].replace(headers[name][-8:], "*!*!*!*!")
    refused(make_request, preset, headers)


@pytest.mark.parametrize("preset", PREFIXED)
def test_rejected_when_prefix_missing(make_request, preset):
    headers = signed_headers(preset)
    name = signature_header(preset)
    headers[name] = headers[name].removeprefix(PRESETS[preset].prefix)
    refused(make_request, preset, headers)


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("preset", ALL)
def test_accepted_during_rotation_when_signed_with_either_secret(make_request, preset, which):
    headers = signed_headers(preset, secret=secrets_of(preset)[which])
    check(make_request, preset, headers, secrets=secrets_of(preset))


@pytest.mark.parametrize("preset", ALL)
def test_rejected_during_rotation_when_signed_with_neither_secret(make_request, preset):
    third = "ef" * 32 if preset == "close" else "a-third-secret"
    with pytest.raises(SignatureError):
        check(make_request, preset, signed_headers(preset, secret=third), secrets=secrets_of(preset))


@pytest.mark.parametrize("preset", ALL)
def test_fails_closed_when_no_secret(make_request, preset):
    with pytest.raises(SecretNotConfiguredError):
        check(make_request, preset, signed_headers(preset), secrets=["", "  "])


def stale(preset: str) -> float:
    return PRESETS[preset].timestamp.tolerance + 1  # type: ignore[union-attr]


@pytest.mark.parametrize("preset", TIMESTAMPED)
def test_rejected_when_timestamp_older_than_the_tolerance(make_request, preset):
    then = NOW - stale(preset)
    headers = signed_headers(preset, at_seconds=then)
    error = refused(make_request, preset, headers, body_of(preset, then))
    assert error.reason == "timestamp_expired"


@pytest.mark.parametrize("preset", TIMESTAMPED)
def test_rejected_when_timestamp_ten_minutes_old(make_request, preset):
    then = NOW - 600
    refused(make_request, preset, signed_headers(preset, at_seconds=then), body_of(preset, then))


@pytest.mark.parametrize("preset", TIMESTAMPED)
def test_rejected_when_timestamp_in_the_future(make_request, preset):
    then = NOW + stale(preset)
    error = refused(make_request, preset, signed_headers(preset, at_seconds=then), body_of(preset, then))
    assert error.reason == "timestamp_in_future"


@pytest.mark.parametrize("preset", TIMESTAMPED)
def test_accepted_at_the_tolerance_edge(make_request, preset):
    then = NOW - PRESETS[preset].timestamp.tolerance  # type: ignore[union-attr]
    check(make_request, preset, signed_headers(preset, at_seconds=then), body_of(preset, then))


@pytest.mark.parametrize("preset", HEADER_STAMPED)
def test_rejected_when_a_stale_request_gets_a_fresh_timestamp(make_request, preset):
    # The replay: an old signed request with its timestamp rewritten to now.
    old = signed_headers(preset, at_seconds=NOW - 3600)
    fresh = signed_headers(preset)
    stamp = PRESETS[preset].timestamp
    assert stamp is not None
    if stamp.where == "header":
        old[stamp.name] = fresh[stamp.name]
    else:
        name = signature_header(preset)
        old_stamp = hmac_scheme.format_timestamp(stamp, NOW - 3600)
        old[name] = old[name].replace(old_stamp, hmac_scheme.format_timestamp(stamp, NOW))
    assert refused(make_request, preset, old).reason == "signature_invalid"


@pytest.mark.parametrize("preset", HEADER_STAMPED)
def test_rejected_when_timestamp_missing(make_request, preset):
    headers = signed_headers(preset)
    stamp = PRESETS[preset].timestamp
    assert stamp is not None
    if stamp.where == "header":
        del headers[stamp.name]
    else:
        name = signature_header(preset)
        items = headers[name].split(PRESETS[preset].items)
        headers[name] = PRESETS[preset].items.join(i for i in items if not i.startswith(stamp.name + "="))
    assert refused(make_request, preset, headers).reason == "signature_missing"


@pytest.mark.parametrize("value", ["-1763900000", "1763900000.0", "0x6923", "1" * 17, "yesterday"])
@pytest.mark.parametrize("preset", sorted(p for p in HEADER_STAMPED if PRESETS[p].timestamp.format != "iso"))  # type: ignore[union-attr]
def test_rejected_when_timestamp_not_plain_digits(make_request, preset, value):
    headers = signed_headers(preset)
    stamp = PRESETS[preset].timestamp
    assert stamp is not None
    if stamp.where == "header":
        headers[stamp.name] = value
    else:
        name = signature_header(preset)
        headers[name] = headers[name].replace(hmac_scheme.format_timestamp(stamp, NOW), value)
    assert refused(make_request, preset, headers).reason == "timestamp_invalid"


def test_zendesk_rejected_when_timestamp_not_iso(make_request):
    headers = signed_headers("zendesk") | {"X-Zendesk-Webhook-Signature-Timestamp": "1763900000"}
    assert refused(make_request, "zendesk", headers).reason == "timestamp_invalid"


def test_linear_rejected_when_body_has_no_timestamp(make_request):
    body = b'{"action":"update","type":"Issue"}'
    headers = signed_headers("linear", body=body)
    assert refused(make_request, "linear", headers, body).reason == "signature_missing"


def test_linear_body_that_is_not_json_is_malformed_once_signed(make_request):
    body = b"not json"
    with pytest.raises(MalformedBodyError):
        check(make_request, "linear", signed_headers("linear", body=body), body)


@pytest.mark.parametrize("preset", ["stripe", "calendly", "paddle"])
def test_accepted_when_one_of_several_signatures_matches(make_request, preset):
    scheme = PRESETS[preset]
    good = signed_headers(preset)[scheme.header]
    junk = f"{scheme.signature_key}{scheme.pair}{'0' * 64}"
    check(make_request, preset, {scheme.header: scheme.items.join([junk, good, "v0=" + "1" * 64])})


def test_stripe_ignores_signatures_of_other_schemes(make_request):
    good = signed_headers("stripe")["Stripe-Signature"]
    refused(make_request, "stripe", {"Stripe-Signature": good.replace("v1=", "v0=")})


def test_docusign_accepted_when_any_numbered_header_matches(make_request):
    good = signed_headers("docusign")["X-DocuSign-Signature-1"]
    other = signed_headers("docusign", secret="retired-key")["X-DocuSign-Signature-1"]
    check(make_request, "docusign", {"X-DocuSign-Signature-1": other, "X-DocuSign-Signature-2": good})


def test_docusign_rejected_when_the_only_signature_is_under_another_header_name(make_request):
    good = signed_headers("docusign")["X-DocuSign-Signature-1"]
    refused(make_request, "docusign", {"X-DocuSign-Signature": good, "X-DocuSign-Signature-1x": good})


def test_github_rejected_when_only_the_sha1_header_is_sent(make_request):
    # X-Hub-Signature (SHA-1) is GitHub's legacy header: the preset checks the SHA-256 one only.
    refused(make_request, "github", {"X-Hub-Signature": "sha1=" + "0" * 40})


def test_tolerance_can_be_set_per_endpoint(make_request):
    then = NOW - 30
    headers = signed_headers("paddle", at_seconds=then)
    refused(make_request, "paddle", headers)
    source("paddle", tolerance=60).verify(
        make_request(body_of("paddle"), headers), [secrets_of("paddle")[0]], now=at(NOW)
    )


# --- settings -------------------------------------------------------------------------------------


def config(**variables: str) -> GenericConfig:
    return GenericConfig.from_settings(
        Settings.from_environ({f"GENERIC_PAY_{k}": v for k, v in variables.items()}), "pay"
    )


def test_preset_read_from_settings():
    assert config(PRESET="Paddle", SECRET="x") == GenericConfig(name="pay", preset="paddle")
    assert config(PRESET="zendesk", SIGNED_CONTENT="{body}{ts}", TOLERANCE_SECONDS="120") == GenericConfig(
        name="pay", preset="zendesk", signed_content="{body}{ts}", tolerance=120.0
    )


@pytest.mark.parametrize(
    "variables",
    [
        {"PRESET": "strip"},
        {"PRESET": "stripe", "SCHEME": "hmac"},
        {"PRESET": "zendesk", "SIGNED_CONTENT": "{ts}"},
        {"PRESET": "paddle", "TOLERANCE_SECONDS": "soon"},
        {"PRESET": "paddle", "TOLERANCE_SECONDS": "-5"},
        {"PRESET": "paddle", "TOLERANCE_SECONDS": "inf"},
    ],
    ids=[
        "unknown-preset",
        "preset-and-scheme",
        "content-without-body",
        "tolerance-text",
        "tolerance-negative",
        "tolerance-infinite",
    ],
)
def test_preset_settings_fail_closed_when_they_cannot_be_meant(variables):
    with pytest.raises(SecretNotConfiguredError):
        config(**variables)


@pytest.mark.parametrize("preset", ALL)
def test_bridge_send_signs_as_the_endpoints_preset(make_request, preset):
    settings = Settings.from_environ({f"GENERIC_{preset.upper()}_PRESET": preset})
    body = body_of(preset)
    headers = sign_request("generic", body, secrets_of(preset)[0], now=NOW, name=preset, settings=settings)
    check(make_request, preset, headers, body)


# --- dedupe, handshakes, answers ------------------------------------------------------------------


@pytest.mark.parametrize("preset", sorted(p for p, s in PRESETS.items() if s.retry_horizon))
def test_dedupe_window_outlasts_the_senders_retries(preset):
    scheme = PRESETS[preset]
    window = source(preset).dedupe_seconds or ingest.DEDUPE_SECONDS
    assert scheme.retry_horizon is not None and window > scheme.retry_horizon


def test_docusign_identities_kept_longer_than_ingests_window():
    assert source("docusign").dedupe_seconds == 14 * 24 * 3600 > ingest.DEDUPE_SECONDS
    assert source("stripe").dedupe_seconds is None  # ingest's 7 days outlast Stripe's 3


def test_no_ingest_answer_is_410():
    # Calendly deletes a subscription answered 410 (Typeform may disable one).
    def every(cls: type) -> list[type]:
        return [cls] + [c for sub in cls.__subclasses__() for c in every(sub)]

    assert all(getattr(cls, "status", None) != 410 for cls in every(errors.IngestError))


@pytest.mark.parametrize(
    ("preset", "headers"),
    [
        ("github", ("x-github-delivery", "x-github-event")),
        (
            "shopify",
            ("x-shopify-event-id", "x-shopify-topic", "x-shopify-triggered-at", "x-shopify-webhook-id"),
        ),
        ("attio", ("idempotency-key",)),
        ("stripe", ()),
    ],
)
def test_a_resend_keeps_the_headers_the_preset_reads(preset, headers):
    settings = Settings.from_environ({f"GENERIC_{preset.upper()}_PRESET": preset})
    assert generic.sender_headers(settings, preset) == headers


def test_linear_body_restamped_with_the_time_it_is_sent():
    body = b'{"type":"Issue","webhookTimestamp": 1700000000000,"data":{"webhookTimestamp":"keep"}}'
    fresh = hmac_scheme.restamp(PRESETS["linear"], body, NOW)
    assert fresh == body.replace(b"1700000000000", str(int(NOW * 1000)).encode())
    assert hmac_scheme.restamp(PRESETS["stripe"], body, NOW) == body


def test_readme_has_one_row_per_preset():
    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    section = readme.split("### Sender presets", 1)[1].split("\n### ", 1)[0]
    rows = [line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")]
    assert rows == list(PRESETS)
