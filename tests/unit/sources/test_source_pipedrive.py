"""Pipedrive: Basic credentials compared in constant time, v1 and v2 bodies."""

from __future__ import annotations

import base64
import json

import pytest
from timeline_bridge.errors import MalformedBodyError, SecretNotConfiguredError, SignatureError
from timeline_bridge.sources import pipedrive

CREDENTIALS = "pipedrive-hook:Zk3pL9qW2xV7nB4m"


def basic(value: str) -> str:
    return "Basic " + base64.b64encode(value.encode()).decode()


def test_authorization_encodes_user_and_password():
    assert pipedrive.authorization("Aladdin:open sesame") == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="


@pytest.mark.parametrize(
    "header",
    [
        basic(CREDENTIALS),
        "basic " + basic(CREDENTIALS).split()[1],
        "BASIC  " + basic(CREDENTIALS).split()[1] + " ",
    ],
    ids=["canonical", "lowercase-scheme", "extra-spaces"],
)
def test_verify_accepts_when_credentials_match(make_request, header):
    pipedrive.verify(make_request(b"{}", {"Authorization": header}), [CREDENTIALS])


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(basic("pipedrive-hook:wrong"), id="wrong-password"),
        pytest.param(basic("other:Zk3pL9qW2xV7nB4m"), id="wrong-user"),
        pytest.param(basic(CREDENTIALS + " "), id="one-byte-longer"),
        pytest.param("Bearer " + basic(CREDENTIALS).split()[1], id="other-scheme"),
        pytest.param("Basic !!!not-base64!!!", id="not-base64"),
        pytest.param("Basic", id="no-token"),
        pytest.param("", id="empty"),
    ],
)
def test_verify_rejects_when_credentials_do_not_match(make_request, header):
    with pytest.raises(SignatureError):
        pipedrive.verify(make_request(b"{}", {"Authorization": header}), [CREDENTIALS])


def test_verify_rejects_when_authorization_missing(make_request):
    with pytest.raises(SignatureError) as caught:
        pipedrive.verify(make_request(b"{}"), [CREDENTIALS])
    assert caught.value.reason == "signature_missing"


@pytest.mark.parametrize("secrets", [[], [""], None])
def test_verify_fails_closed_when_no_credentials_configured(make_request, secrets):
    with pytest.raises(SecretNotConfiguredError):
        pipedrive.verify(make_request(b"{}", {"Authorization": basic(":")}), secrets)


# --- parsing ----------------------------------------------------------------------------------

V2 = {
    "data": {"id": 42, "stage_id": 4, "status": "open"},
    "previous": {"stage_id": 3},
    "meta": {
        "action": "change",
        "entity": "deal",
        "entity_id": "42",
        "id": "8b6b8c47-1c61-4d64-8f2f-1f0ab3c6d5e9",
        "timestamp": "2025-11-23T12:01:55.724Z",
        "version": "2.0",
        "attempt": 1,
        "webhook_id": "1234567",
    },
}

V1 = {
    "v": 1,
    "meta": {
        "v": 1,
        "action": "updated",
        "object": "deal",
        "id": 42,
        "timestamp": 1763899315,
        "timestamp_micro": 1763899315724112,
        "webhook_id": "1234567",
    },
    "current": {"id": 42, "stage_id": 4},
    "previous": {"id": 42, "stage_id": 3},
    "retry": 0,
    "event": "updated.deal",
}


def test_parse_v2_uses_meta_id_and_action_entity(make_request):
    [event] = pipedrive.parse(make_request(json.dumps(V2))).events
    assert (event.event_type, event.event_id, event.occurred_at) == (
        "change.deal",
        "8b6b8c47-1c61-4d64-8f2f-1f0ab3c6d5e9",
        "2025-11-23T12:01:55.724Z",
    )
    assert event.known and event.event == V2


def test_parse_v2_reads_epoch_seconds_timestamp(make_request):
    body = V2 | {"meta": V2["meta"] | {"timestamp": 1763899315}}
    assert pipedrive.parse(make_request(json.dumps(body))).events[0].occurred_at == "2025-11-23T12:01:55.000Z"


def test_parse_v1_uses_webhook_object_id_and_microseconds(make_request):
    [event] = pipedrive.parse(make_request(json.dumps(V1))).events
    assert (event.event_type, event.event_id, event.occurred_at) == (
        "updated.deal",
        "1234567:deal:42:1763899315724112",
        "2025-11-23T12:01:55.724Z",
    )
    assert event.known


@pytest.mark.parametrize(
    ("body", "retry"),
    [(V2, V2 | {"meta": V2["meta"] | {"attempt": 3}}), (V1, V1 | {"retry": 2})],
    ids=["v2-attempt", "v1-retry"],
)
def test_fingerprint_ignores_attempt_counters_when_pipedrive_retries(make_request, body, retry):
    first, again = (pipedrive.parse(make_request(json.dumps(b))).events[0] for b in (body, retry))
    assert first.event_id == again.event_id
    assert first.fingerprint == again.fingerprint


def test_parse_marks_unknown_when_version_is_neither(make_request):
    [event] = pipedrive.parse(make_request(json.dumps({"meta": {"version": "3.0", "id": "x"}}))).events
    assert not event.known


def test_parse_marks_unknown_when_v2_action_is_new(make_request):
    body = V2 | {"meta": V2["meta"] | {"action": "archive"}}
    assert not pipedrive.parse(make_request(json.dumps(body))).events[0].known


@pytest.mark.parametrize(
    "body", [b"[]", b'{"v": 1}', b"{", b'"text"'], ids=["array", "no-meta", "truncated", "string"]
)
def test_parse_rejects_when_body_is_malformed(make_request, body):
    with pytest.raises(MalformedBodyError):
        pipedrive.parse(make_request(body))
