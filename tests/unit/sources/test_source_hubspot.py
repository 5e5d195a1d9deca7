"""HubSpot: published signature vectors, URL handling, version choice and body parsing."""

from __future__ import annotations

import json

import pytest
from timeline_bridge.errors import MalformedBodyError, SecretNotConfiguredError, SignatureError
from timeline_bridge.sources import hubspot

# HubSpot's documentation and SDK test suites all use this client secret.
DOC_SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
DOC_URL = "https://www.example.com/webhook_uri"
SDK_BODY = "{'example_field':'example_value'}"

# developers.hubspot.com/docs/faq/v1-request-validation: "Example for a request with a body".
V1_DOC_BODY = (
    '[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    '"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    '"changeFlag":"NEW","appId":54321}]'
)


def at(seconds: float):
    return lambda: seconds


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            V1_DOC_BODY, "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de", id="v1-docs"
        ),
        pytest.param(
            SDK_BODY, "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750", id="v1-sdk"
        ),
    ],
)
def test_v1_vector_accepted_when_v1_enabled(make_request, body, expected):
    request = make_request(
        body,
        {"X-HubSpot-Signature": expected, "X-HubSpot-Signature-Version": "v1"},
        host="www.example.com",
        path="/webhook_uri",
    )
    assert hubspot.v1_signature(DOC_SECRET, body.encode()) == expected
    hubspot.verify(request, [DOC_SECRET], versions=("v3", "v1"))


@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [
        pytest.param(
            "GET", "", "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e", id="v2-docs-get"
        ),
        pytest.param(
            "POST",
            '{"example_field":"example_value"}',
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
            id="v2-docs-post",
        ),
        pytest.param(
            "POST", SDK_BODY, "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383", id="v2-sdk"
        ),
    ],
)
def test_v2_vector_accepted_when_v2_enabled(make_request, method, body, expected):
    request = make_request(
        body,
        {"X-HubSpot-Signature": expected, "X-HubSpot-Signature-Version": "v2"},
        method=method,
        host="www.example.com",
        path="/webhook_uri",
    )
    assert hubspot.v2_signature(DOC_SECRET, method, DOC_URL, body.encode()) == expected
    hubspot.verify(request, [DOC_SECRET], versions=("v3", "v2"))


V3_VECTORS = [
    # hubspot-api-python tests/spec/utils/test_signature.py (current).
    pytest.param("1693657560000", "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=", id="v3-python-sdk"),
    # hubspot-api-ruby spec/helpers/signature_spec.rb (current).
    pytest.param("1700000300000", "RnbPH7+UMKVkbV32P8bz450N4M56aPmcru1+D3kSDtw=", id="v3-ruby-sdk"),
    # Both SDKs' earlier suites.
    pytest.param("15000000", "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=", id="v3-sdk-earlier"),
]


@pytest.mark.parametrize(("timestamp", "expected"), V3_VECTORS)
def test_v3_vector_accepted_when_clock_matches(make_request, timestamp, expected):
    request = make_request(
        SDK_BODY,
        {"X-HubSpot-Signature-v3": expected, "X-HubSpot-Request-Timestamp": timestamp},
        host="www.example.com",
        path="/webhook_uri",
    )
    assert hubspot.v3_signature(DOC_SECRET, "POST", DOC_URL, SDK_BODY.encode(), timestamp) == expected
    hubspot.verify(request, [DOC_SECRET], now=at(int(timestamp) / 1000))


@pytest.mark.parametrize(("timestamp", "expected"), V3_VECTORS)
def test_v3_vector_rejected_when_clock_is_real(make_request, timestamp, expected):
    request = make_request(
        SDK_BODY,
        {"X-HubSpot-Signature-v3": expected, "X-HubSpot-Request-Timestamp": timestamp},
        host="www.example.com",
        path="/webhook_uri",
    )
    with pytest.raises(SignatureError) as caught:
        hubspot.verify(request, [DOC_SECRET])
    assert caught.value.reason == "timestamp_expired"


def sign_v3(
    make_request,
    body: bytes,
    *,
    url_signed: str,
    now: float,
    secret: str = "s3cret",  # noqa: S107
    headers: dict[str, str] | None = None,
    **where,
):
    millis = str(int(now * 1000))
    signed = {
        "X-HubSpot-Signature-v3": hubspot.v3_signature(secret, "POST", url_signed, body, millis),
        "X-HubSpot-Request-Timestamp": millis,
        **(headers or {}),
    }
    return make_request(body, signed, **where)


def test_decode_table_applies_only_to_listed_escapes():
    uri = "https://h.example/p%3Aa%2Fb%3Fc%40d%21e%24f%27g%28h%29i%2Aj%2Ck%3Bl?q=%20x%26y%3Dz%2f"
    assert hubspot.decode_uri(uri) == "https://h.example/p:a/b?c@d!e$f'g(h)i*j,k;l?q=%20x%26y%3Dz/"


def test_v3_accepted_when_signed_over_decoded_uri(make_request, frozen):
    query = "email=ann%40example.com&note=a%20b"
    request = sign_v3(
        make_request,
        b"[]",
        url_signed="https://hooks.example.com/hubspot?email=ann@example.com&note=a%20b",
        now=frozen(),
        path="/hubspot",
        query=query,
    )
    hubspot.verify(request, ["s3cret"], now=frozen)


def test_v3_accepted_when_signed_over_verbatim_uri_like_the_sdks(make_request, frozen):
    query = "email=ann%40example.com"
    request = sign_v3(
        make_request,
        b"[]",
        url_signed="https://hooks.example.com/hubspot?email=ann%40example.com",
        now=frozen(),
        path="/hubspot",
        query=query,
    )
    hubspot.verify(request, ["s3cret"], now=frozen)


def test_v3_rejected_when_an_unlisted_escape_was_decoded(make_request, frozen):
    request = sign_v3(
        make_request,
        b"[]",
        url_signed="https://hooks.example.com/hubspot?note=a b",
        now=frozen(),
        path="/hubspot",
        query="note=a%20b",
    )
    with pytest.raises(SignatureError):
        hubspot.verify(request, ["s3cret"], now=frozen)


def test_v3_accepted_when_webhook_url_overrides_the_lambda_host(make_request, frozen):
    request = sign_v3(
        make_request,
        b"[]",
        url_signed="https://hooks.acme.example/crm/hubspot",
        now=frozen(),
        host="abc123.lambda-url.eu-west-1.on.aws",
        path="/",
    )
    with pytest.raises(SignatureError):
        hubspot.verify(request, ["s3cret"], now=frozen)
    hubspot.verify(request, ["s3cret"], now=frozen, url="https://hooks.acme.example/crm/hubspot")


def test_v3_rejected_when_signed_for_the_host_a_client_names_in_x_forwarded_host(make_request, frozen):
    # Another stack with the same client secret: its signed request replayed here, its host claimed.
    request = sign_v3(
        make_request,
        b"[]",
        url_signed="https://other-stack.example/hubspot",
        now=frozen(),
        host="abc123.lambda-url.eu-west-1.on.aws",
        path="/hubspot",
        headers={"X-Forwarded-Host": "other-stack.example"},
    )
    with pytest.raises(SignatureError):
        hubspot.verify(request, ["s3cret"], now=frozen)


def test_v3_accepted_when_signed_for_this_domain_name_whatever_x_forwarded_host_says(make_request, frozen):
    request = sign_v3(
        make_request,
        b"[]",
        url_signed="https://abc123.lambda-url.eu-west-1.on.aws/hubspot",
        now=frozen(),
        host="abc123.lambda-url.eu-west-1.on.aws",
        path="/hubspot",
        headers={"X-Forwarded-Host": "other-stack.example"},
    )
    hubspot.verify(request, ["s3cret"], now=frozen)


def test_v3_override_url_keeps_the_request_query_when_it_has_none(make_request, frozen):
    request = sign_v3(
        make_request,
        b"[]",
        url_signed="https://hooks.acme.example/hubspot?tenant=7",
        now=frozen(),
        host="abc123.lambda-url.eu-west-1.on.aws",
        query="tenant=7",
    )
    hubspot.verify(request, ["s3cret"], now=frozen, url="https://hooks.acme.example/hubspot")


def test_v3_checked_without_fallback_when_v1_is_also_valid(make_request, frozen):
    body = b"[]"
    stale = str(int((frozen() - 301) * 1000))
    request = make_request(
        body,
        {
            "X-HubSpot-Signature-v3": hubspot.v3_signature(
                "s3cret", "POST", "https://hooks.example.com/", body, stale
            ),
            "X-HubSpot-Request-Timestamp": stale,
            "X-HubSpot-Signature": hubspot.v1_signature("s3cret", body),
            "X-HubSpot-Signature-Version": "v1",
        },
    )
    with pytest.raises(SignatureError):
        hubspot.verify(request, ["s3cret"], now=frozen, versions=("v3", "v1"))


def test_v1_rejected_when_only_v3_is_enabled(make_request, frozen):
    body = b"[]"
    request = make_request(
        body,
        {"X-HubSpot-Signature": hubspot.v1_signature("s3cret", body), "X-HubSpot-Signature-Version": "v1"},
    )
    with pytest.raises(SignatureError) as caught:
        hubspot.verify(request, ["s3cret"], now=frozen)
    assert caught.value.reason == "signature_missing"


def test_v1_accepted_when_v3_is_disabled_and_v3_header_present(make_request, frozen):
    body = b"[]"
    request = make_request(
        body,
        {
            "X-HubSpot-Signature-v3": "not checked",
            "X-HubSpot-Request-Timestamp": "1",
            "X-HubSpot-Signature": hubspot.v1_signature("s3cret", body),
            "X-HubSpot-Signature-Version": "v1",
        },
    )
    hubspot.verify(request, ["s3cret"], now=frozen, versions=("v1",))


def test_v2_rejected_when_version_header_says_v1(make_request, frozen):
    body = b"[]"
    request = make_request(
        body,
        {
            "X-HubSpot-Signature": hubspot.v2_signature("s3cret", "POST", "https://hooks.example.com/", body),
            "X-HubSpot-Signature-Version": "v1",
        },
    )
    with pytest.raises(SignatureError):
        hubspot.verify(request, ["s3cret"], now=frozen, versions=("v1", "v2"))


@pytest.mark.parametrize("secrets", [[], [""], ["   "], None])
def test_verify_fails_closed_when_no_secret(make_request, frozen, secrets):
    request = sign_v3(make_request, b"[]", url_signed="https://hooks.example.com/", now=frozen(), secret="")
    with pytest.raises(SecretNotConfiguredError):
        hubspot.verify(request, secrets, now=frozen)


def test_timestamp_rejected_when_not_digits(make_request, frozen):
    request = make_request(b"[]", {"X-HubSpot-Signature-v3": "x", "X-HubSpot-Request-Timestamp": "17639e5"})
    with pytest.raises(SignatureError) as caught:
        hubspot.verify(request, ["s3cret"], now=frozen)
    assert caught.value.reason == "timestamp_invalid"


# --- parsing ----------------------------------------------------------------------------------

DEAL_STAGE = {
    "eventId": 3816279340,
    "subscriptionId": 2472591,
    "portalId": 62515,
    "appId": 1160452,
    "occurredAt": 1763899315724,
    "subscriptionType": "deal.propertyChange",
    "attemptNumber": 0,
    "objectId": 18147040851,
    "propertyName": "dealstage",
    "propertyValue": "contractsent",
    "changeSource": "CRM",
}


def test_parse_yields_one_event_per_array_element(make_request):
    second = {**DEAL_STAGE, "eventId": 3816279341, "propertyValue": "closedwon"}
    parsed = hubspot.parse(make_request(json.dumps([DEAL_STAGE, second])))
    assert [e.event for e in parsed.events] == [DEAL_STAGE, second]
    first = parsed.events[0]
    assert first.event_type == "deal.propertyChange"
    assert first.event_id == "62515:2472591:3816279340:18147040851:1763899315724"
    assert first.occurred_at == "2025-11-23T12:01:55.724Z"
    assert first.known


def test_fingerprint_ignores_attempt_number_when_hubspot_retries(make_request):
    retry = {**DEAL_STAGE, "attemptNumber": 3}
    a, b = (hubspot.parse(make_request(json.dumps([e]))).events[0] for e in (DEAL_STAGE, retry))
    assert a.event_id == b.event_id
    assert a.fingerprint == b.fingerprint
    assert "attemptNumber" not in a.fingerprint


def test_parse_accepts_event_type_field_when_subscription_type_absent(make_request):
    event = {k: v for k, v in DEAL_STAGE.items() if k != "subscriptionType"} | {
        "eventType": "contact.creation"
    }
    parsed = hubspot.parse(make_request(json.dumps([event])))
    assert parsed.events[0].event_type == "contact.creation"
    assert parsed.events[0].known


@pytest.mark.parametrize(
    ("object_type_id", "expected"),
    [
        ("0-3", "deal.propertyChange"),
        ("0-1", "contact.propertyChange"),
        ("2-1234567", "object.propertyChange"),
    ],
)
def test_parse_names_new_platform_objects_when_standard(make_request, object_type_id, expected):
    event = DEAL_STAGE | {"subscriptionType": "object.propertyChange", "objectTypeId": object_type_id}
    parsed = hubspot.parse(make_request(json.dumps([event])))
    assert parsed.events[0].event_type == expected
    assert parsed.events[0].known


def test_parse_marks_unknown_when_action_not_handled(make_request):
    parsed = hubspot.parse(make_request(json.dumps([DEAL_STAGE | {"subscriptionType": "deal.somethingNew"}])))
    assert not parsed.events[0].known


def test_identity_absent_when_event_id_missing(make_request):
    event = {k: v for k, v in DEAL_STAGE.items() if k != "eventId"}
    assert hubspot.parse(make_request(json.dumps([event]))).events[0].event_id is None


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b'{"eventId": 1}', id="object-not-array"),
        pytest.param(b"[1, 2]", id="elements-not-objects"),
        pytest.param(b"[{", id="truncated"),
        pytest.param(b"\xff\xfe[]", id="not-utf8"),
        pytest.param(b"", id="empty"),
    ],
)
def test_parse_rejects_when_body_is_malformed(make_request, body):
    with pytest.raises(MalformedBodyError):
        hubspot.parse(make_request(body, encode=True))


def test_parse_rejects_when_batch_exceeds_cap(make_request):
    with pytest.raises(MalformedBodyError):
        hubspot.parse(make_request(json.dumps([DEAL_STAGE] * (hubspot.MAX_EVENTS + 1))))
