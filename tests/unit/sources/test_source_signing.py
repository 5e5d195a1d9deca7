"""signing: what `bridge send` and the tests use to sign like each sender; and shared helpers."""

from __future__ import annotations

import base64
import json

import pytest
from timeline_bridge.config import Settings
from timeline_bridge.http import WebhookRequest
from timeline_bridge.sources import for_request
from timeline_bridge.sources.base import iso_from_epoch
from timeline_bridge.sources.generic import GenericSource
from timeline_bridge.sources.hubspot import HubSpotSource
from timeline_bridge.sources.pipedrive import PipedriveSource
from timeline_bridge.sources.slack import SlackSource
from timeline_bridge_tools.signing import body_bytes, sign_event, sign_request

NOW = 1763900000.0
SECRETS = {
    "hubspot": "hs-client-secret-1",
    "slack": "8f742231b10e8888abcd99yyyzzz85a5",
    "pipedrive": "hook:Zk3pL9qW2xV7nB4m",
    "generic": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
}
SOURCES = {
    "hubspot": HubSpotSource(),
    "slack": SlackSource(),
    "pipedrive": PipedriveSource(),
    "generic": GenericSource(),
}


def event(body: str, path: str = "/", **headers: str) -> dict:
    return {
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "hooks.example.com", "x-forwarded-proto": "https", **headers},
        "requestContext": {"http": {"method": "POST", "path": path}},
        "body": body,
        "isBase64Encoded": False,
    }


def as_request(signed: dict) -> WebhookRequest:
    return WebhookRequest.from_function_url_event(signed, max_body_bytes=1 << 20)


@pytest.mark.parametrize("source", list(SECRETS))
def test_signed_event_verifies_when_secret_matches(source):
    signed = sign_event(source, event('{"type": "x.y"}'), SECRETS[source], now=NOW)
    SOURCES[source].verify(as_request(signed), [SECRETS[source]], now=lambda: NOW)


@pytest.mark.parametrize("source", list(SECRETS))
def test_signed_event_keeps_the_original_untouched(source):
    original = event('{"type": "x.y"}')
    snapshot = json.loads(json.dumps(original))
    sign_event(source, original, SECRETS[source], now=NOW)
    assert original == snapshot


def test_hubspot_headers_carry_v3_and_legacy_v1_like_hubspot():
    headers = sign_request("hubspot", b"[]", "s", url="https://h.example/", now=NOW)
    assert set(headers) == {
        "X-HubSpot-Signature-v3",
        "X-HubSpot-Request-Timestamp",
        "X-HubSpot-Signature",
        "X-HubSpot-Signature-Version",
    }
    assert headers["X-HubSpot-Request-Timestamp"] == "1763900000000"
    assert headers["X-HubSpot-Signature-Version"] == "v1"


def test_hubspot_requires_a_url_when_body_is_not_an_event():
    with pytest.raises(ValueError, match="url"):
        sign_request("hubspot", b"[]", "s", now=NOW)


def test_hubspot_url_taken_from_event_path_and_query():
    original = event("[]", path="/hubspot") | {"rawQueryString": "tenant=7"}
    signed = sign_event("hubspot", original, "s", now=NOW)
    request = as_request(signed)
    assert request.url == "https://hooks.example.com/hubspot?tenant=7"
    HubSpotSource().verify(request, ["s"], now=lambda: NOW)


def test_generic_reuses_the_event_webhook_id():
    signed = sign_event(
        "generic", event("{}", path="/generic/billing", **{"webhook-id": "msg_fixed"}), SECRETS["generic"]
    )
    assert signed["headers"]["webhook-id"] == "msg_fixed"


def test_generic_hmac_endpoint_signed_per_its_settings(monkeypatch):
    monkeypatch.setenv("GENERIC_GITHUB_SCHEME", "hmac")
    monkeypatch.setenv("GENERIC_GITHUB_SIGNATURE_HEADER", "X-Hub-Signature-256")
    monkeypatch.setenv("GENERIC_GITHUB_PREFIX", "sha256=")
    headers = sign_request("generic", b"Hello, World!", "It's a Secret to Everybody", name="github")
    assert headers == {
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    }


def test_headers_lowercased_when_merged_into_event():
    signed = sign_event("slack", event("{}"), SECRETS["slack"], now=NOW)
    assert "x-slack-signature" in signed["headers"]
    assert all(k == k.lower() for k in signed["headers"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (event("abc"), b"abc"),
        (event(base64.b64encode(b"\x00\xff").decode()) | {"isBase64Encoded": True}, b"\x00\xff"),
        (b"raw", b"raw"),
        ("text", b"text"),
        ([{"a": 1}], b'[{"a":1}]'),
    ],
    ids=["event", "event-base64", "bytes", "text", "json"],
)
def test_body_bytes_is_what_the_sender_posts(value, expected):
    assert body_bytes(value) == expected


def test_unknown_source_refused():
    with pytest.raises(ValueError):
        sign_request("zoho", b"", "s")
    with pytest.raises(ValueError):
        for_request("zoho", as_request(event("")), Settings.from_environ({}))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1763899315, "2025-11-23T12:01:55.000Z"),
        (1763899315724, "2025-11-23T12:01:55.724Z"),
        (1763899315724112, "2025-11-23T12:01:55.724Z"),
        ("1763899315", "2025-11-23T12:01:55.000Z"),
        ("1548426417.840180", "2019-01-25T14:26:57.840Z"),
        ("2025-11-23T12:01:55.724Z", "2025-11-23T12:01:55.724Z"),
        ("2025-11-23T13:01:55+01:00", "2025-11-23T12:01:55.000Z"),
        ("2025-11-23 12:01:55", "2025-11-23T12:01:55.000Z"),
        ("yesterday", None),
        (None, None),
        (True, None),
        (-5, None),
        (float("nan"), None),
    ],
)
def test_iso_from_epoch_reads_every_source_time_form(value, expected):
    assert iso_from_epoch(value) == expected
