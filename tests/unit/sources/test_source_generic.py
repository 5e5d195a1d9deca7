"""Generic endpoints: Standard Webhooks library vectors, the plain HMAC mode, names and bodies."""

from __future__ import annotations

import base64
import json

import pytest
from timeline_bridge import sources
from timeline_bridge.config import Secrets, Settings
from timeline_bridge.errors import MalformedBodyError, NotFoundError, SecretNotConfiguredError, SignatureError
from timeline_bridge.sources import generic
from timeline_bridge.sources.generic import GenericConfig

# standard-webhooks libraries/*/tests: the same vector in every language.
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = "1614265330"
SW_BODY = '{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def sw_request(make_request, signature: str = SW_SIGNATURE, body: str = SW_BODY, **overrides: str):
    headers = {"webhook-id": SW_ID, "webhook-timestamp": SW_TIMESTAMP, "webhook-signature": signature}
    return make_request(body, headers | overrides, path="/generic/billing")


def at_vector_time() -> float:
    return float(SW_TIMESTAMP)


def test_sign_matches_library_vector():
    assert generic.standard_signature(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_BODY.encode()) == SW_SIGNATURE


@pytest.mark.parametrize("secret", [SW_SECRET, SW_SECRET.removeprefix("whsec_")], ids=["prefixed", "bare"])
def test_library_vector_accepted_with_or_without_prefix(make_request, secret):
    generic.verify_standard(sw_request(make_request), [secret], now=at_vector_time)


def test_library_vector_accepted_when_headers_arrive_in_any_case(make_request):
    request = make_request(
        SW_BODY, {"Webhook-Id": SW_ID, "WEBHOOK-TIMESTAMP": SW_TIMESTAMP, "Webhook-Signature": SW_SIGNATURE}
    )
    generic.verify_standard(request, [SW_SECRET], now=at_vector_time)


def test_library_vector_rejected_when_last_char_differs(make_request):
    # The library's own negative case: one base64 character changed.
    request = sw_request(make_request, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=")
    with pytest.raises(SignatureError):
        generic.verify_standard(request, [SW_SECRET], now=at_vector_time)


def test_multi_signature_accepted_when_one_v1_entry_matches(make_request):
    junk = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
    header = " ".join([junk, junk.replace("v1,", "v2,"), SW_SIGNATURE, junk])
    generic.verify_standard(sw_request(make_request, header), [SW_SECRET], now=at_vector_time)


def test_signature_under_other_version_rejected(make_request):
    with pytest.raises(SignatureError):
        generic.verify_standard(
            sw_request(make_request, SW_SIGNATURE.replace("v1,", "v1a,")), [SW_SECRET], now=at_vector_time
        )


def test_unpadded_signature_accepted(make_request):
    generic.verify_standard(
        sw_request(make_request, SW_SIGNATURE.rstrip("=")), [SW_SECRET], now=at_vector_time
    )


def test_unpadded_secret_accepted(make_request):
    key = bytes(range(25))  # 25 bytes: base64 ends in "=="
    padded = "whsec_" + base64.b64encode(key).decode()
    assert padded.endswith("==")
    body = b'{"type": "a.b"}'
    signature = generic.standard_signature(padded, SW_ID, SW_TIMESTAMP, body)
    request = make_request(
        body, {"webhook-id": SW_ID, "webhook-timestamp": SW_TIMESTAMP, "webhook-signature": signature}
    )
    generic.verify_standard(request, [padded.rstrip("=")], now=at_vector_time)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_rejected_when_header_missing(make_request, missing):
    headers = {"webhook-id": SW_ID, "webhook-timestamp": SW_TIMESTAMP, "webhook-signature": SW_SIGNATURE}
    del headers[missing]
    with pytest.raises(SignatureError):
        generic.verify_standard(make_request(SW_BODY, headers), [SW_SECRET], now=at_vector_time)


def test_rejected_when_timestamp_not_integer(make_request):
    with pytest.raises(SignatureError):
        generic.verify_standard(
            sw_request(make_request, **{"webhook-timestamp": "hello"}), [SW_SECRET], now=at_vector_time
        )


def test_secret_that_is_not_base64_fails_closed(make_request):
    with pytest.raises(SecretNotConfiguredError):
        generic.verify_standard(sw_request(make_request), ["whsec_not*base64!"], now=at_vector_time)


@pytest.mark.parametrize("secrets", [[], [""], None])
def test_verify_fails_closed_when_no_secret(make_request, secrets):
    with pytest.raises(SecretNotConfiguredError):
        generic.verify_standard(sw_request(make_request), secrets, now=at_vector_time)


# --- plain HMAC -------------------------------------------------------------------------------

# GitHub's documented test values for X-Hub-Signature-256.
GITHUB = GenericConfig(name="github", scheme="hmac", signature_header="X-Hub-Signature-256", prefix="sha256=")
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_hmac_matches_github_vector():
    assert generic.hmac_signature(GITHUB_SECRET, b"Hello, World!", prefix="sha256=") == GITHUB_SIGNATURE


def test_hmac_accepted_when_github_vector(make_request):
    request = make_request("Hello, World!", {"X-Hub-Signature-256": GITHUB_SIGNATURE})
    generic.verify_hmac(request, [GITHUB_SECRET], GITHUB)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(GITHUB_SIGNATURE.removeprefix("sha256="), id="prefix-missing"),
        pytest.param(GITHUB_SIGNATURE[:-1] + "8", id="last-digit"),
        pytest.param("sha256=zz", id="not-hex"),
        pytest.param("", id="empty"),
    ],
)
def test_hmac_rejected_when_header_wrong(make_request, header):
    request = make_request("Hello, World!", {"X-Hub-Signature-256": header})
    with pytest.raises(SignatureError):
        generic.verify_hmac(request, [GITHUB_SECRET], GITHUB)


def test_hmac_base64_encoding_accepted(make_request):
    settings = GenericConfig(
        name="attio", scheme="hmac", signature_header="Attio-Signature", encoding="base64"
    )
    body = b'{"type": "record.updated"}'
    signature = generic.hmac_signature("attio-secret", body, encoding="base64")
    generic.verify_hmac(make_request(body, {"Attio-Signature": signature}), ["attio-secret"], settings)


# --- names, settings, bodies ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/generic/billing", "billing"),
        ("/generic/billing/", "billing"),
        ("/generic/a-b-9", "a-b-9"),
        ("/", "default"),
        ("/generic", "default"),
    ],
)
def test_endpoint_name_taken_from_path(path, name):
    assert generic.endpoint_name(path) == name


@pytest.mark.parametrize(
    "path",
    [
        "/hubspot",
        "/generic/a/b",
        "/generic/bad.name",
        "/generic/" + "x" * 65,
        "/generic/a-b_9",
        "/generic/Billing",
    ],
)
def test_endpoint_name_rejected_when_path_not_generic(path):
    with pytest.raises(NotFoundError):
        generic.endpoint_name(path)


def no_secrets_manager():
    raise AssertionError("Secrets Manager must not be asked")


def secrets_of(environ: dict[str, str]) -> Secrets:
    """The secrets of a function whose variables are `environ`."""
    return Secrets(Settings.from_environ(environ), no_secrets_manager)


def test_config_read_from_settings():
    settings = Settings.from_environ(
        {
            "GENERIC_MY_CRM_SCHEME": "hmac",
            "GENERIC_MY_CRM_SIGNATURE_HEADER": "X-Crm-Signature",
            "GENERIC_MY_CRM_ENCODING": "base64",
            "GENERIC_MY_CRM_PREFIX": "v1=",
            "GENERIC_MY_CRM_ID_HEADER": "X-Crm-Delivery",
            "GENERIC_MY_CRM_TYPE_FIELD": "event.kind",
        }
    )
    assert GenericConfig.from_settings(settings, "my-crm") == GenericConfig(
        name="my-crm",
        scheme="hmac",
        signature_header="X-Crm-Signature",
        encoding="base64",
        prefix="v1=",
        id_header="X-Crm-Delivery",
        type_field="event.kind",
    )


@pytest.mark.parametrize(("key", "value"), [("SCHEME", "none"), ("ENCODING", "base32")])
def test_config_fails_closed_when_value_unknown(key, value):
    settings = Settings.from_environ({f"GENERIC_BILLING_{key}": value})
    with pytest.raises(SecretNotConfiguredError):
        GenericConfig.from_settings(settings, "billing")


def test_secrets_prefer_endpoint_secret_over_shared():
    secrets = secrets_of(
        {"GENERIC_WEBHOOK_SECRET": "whsec_shared", "GENERIC_BILLING_SECRET": '["whsec_old", "whsec_new"]'}
    )
    assert GenericConfig(name="billing").secrets(secrets) == ["whsec_old", "whsec_new"]
    assert GenericConfig(name="other").secrets(secrets) == ["whsec_shared"]


def test_secrets_fail_closed_when_none():
    with pytest.raises(SecretNotConfiguredError):
        GenericConfig(name="nothing-here").secrets(secrets_of({}))


def test_endpoints_built_from_two_functions_settings_each_verify_only_their_own_signature(make_request):
    # Two functions in one process serving the same endpoint with different secrets: each source
    # holds its own function's settings and reads its own secrets, nothing process-wide.
    other_secret = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
    functions = {
        secret: Settings.from_environ({"GENERIC_BILLING_SECRET": secret})
        for secret in (SW_SECRET, other_secret)
    }
    signed = {
        secret: sw_request(
            make_request, generic.standard_signature(secret, SW_ID, SW_TIMESTAMP, SW_BODY.encode())
        )
        for secret in functions
    }
    built = {
        secret: sources.for_request("generic", signed[secret], settings)
        for secret, settings in functions.items()
    }
    for own, source in built.items():
        secrets = source.secrets(Secrets(functions[own], no_secrets_manager))
        assert secrets == [own]
        source.verify(signed[own], secrets, now=at_vector_time)
        for other, request in signed.items():
            if other != own:
                with pytest.raises(SignatureError):
                    source.verify(request, secrets, now=at_vector_time)


INVOICE = {"type": "invoice.paid", "timestamp": "2025-11-23T12:05:00.000Z", "data": {"invoice_id": "inv_1"}}


def test_parse_standard_uses_type_and_webhook_id(make_request):
    [event] = generic.parse(make_request(json.dumps(INVOICE), {"webhook-id": "msg_1"})).events
    assert (event.event_type, event.event_id, event.occurred_at, event.known) == (
        "invoice.paid",
        "msg_1",
        "2025-11-23T12:05:00.000Z",
        True,
    )


def test_parse_hmac_identity_from_id_header_or_body_hash(make_request):
    body = json.dumps(INVOICE)
    with_header = GenericConfig(scheme="hmac", id_header="X-Delivery")
    assert generic.parse(make_request(body, {"X-Delivery": "d-7"}), with_header).events[0].event_id == "d-7"
    hashed = generic.parse(make_request(body), GenericConfig(scheme="hmac")).events[0].event_id
    assert hashed is not None and len(hashed) == 64


def test_parse_reads_type_at_dotted_path(make_request):
    body = {"event": {"kind": "record.updated"}}
    parsed = generic.parse(
        make_request(json.dumps(body), {"webhook-id": "m"}), GenericConfig(type_field="event.kind")
    )
    assert parsed.events[0].event_type == "record.updated"


def test_parse_marks_unknown_when_type_missing(make_request):
    parsed = generic.parse(make_request(json.dumps({"data": {}}), {"webhook-id": "m"}))
    assert not parsed.events[0].known


@pytest.mark.parametrize("body", [b"[]", b"{", b"null"], ids=["array", "truncated", "null"])
def test_parse_rejects_when_body_is_malformed(make_request, body):
    with pytest.raises(MalformedBodyError):
        generic.parse(make_request(body, {"webhook-id": "m"}))
