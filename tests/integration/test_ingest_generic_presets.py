"""Generic presets through the generic handler against moto: each sender's sample signed as that
sender, its event id and type as enqueued, redeliveries, handshakes, batches and dedupe windows."""

from __future__ import annotations

import json
import time

import pytest
from timeline_bridge.sources import hmac_scheme
from timeline_bridge.sources.generic_presets import PRESETS
from timeline_bridge_tools.signing import sign_event

SECRETS = {"close": "ab" * 32, "stripe": "whsec_9Hk2pLm4QrSt6UvWx8Yz"}

# preset → (event type, event id) of its sample, events/generic/<preset>.json
EXPECTED = {
    "github": ("issues", "6b1f4c2e-c85a-11f0-8f3e-2d7a9c1b4e50"),
    "shopify": ("orders/create", "8d1c7e2f-3a4b-4c5d-9e6f-7a8b9c0d1e2f:orders/create"),
    "intercom": ("conversation.user.created", "notif_7f3a2c1e-5b4d-4e6f-8a9b-0c1d2e3f4a5b"),
    "zendesk": ("zen:event-type:ticket.created", "5f1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"),
    "attio": ("record.updated", "0d8f6e3a-2b1c-4f5e-9a8b-7c6d5e4f3a21#0"),
    "close": ("opportunity.updated", "ev_3kN8pQ2rT6vX9zB1dF4hJ7"),
    "linear": ("Issue.update", "3c9a7e51-8f2d-4b6a-9c1e-5d7f3a2b8e46"),
    "paddle": ("transaction.completed", "evt_01jd2r8k5m3n7p9q1s4t6v8x0z"),
    "docusign": (
        "envelope-completed",
        "93be49e3-5f1c-4b7a-9d2e-6a8c0e2b4d6f:envelope-completed:2025-11-23T12:04:59.412Z",
    ),
    "stripe": ("invoice.paid", None),
    "calendly": ("invitee.created", None),
    "typeform": ("form_response", None),
}


def secret_of(preset: str) -> str:
    return SECRETS.get(preset, f"{preset}-signing-secret")


@pytest.fixture
def handler(aws, monkeypatch, load_function, lambda_context):
    for preset in EXPECTED:
        monkeypatch.setenv(f"GENERIC_{preset.upper()}_PRESET", preset)
        monkeypatch.setenv(f"GENERIC_{preset.upper()}_SECRET", secret_of(preset))
    module = load_function("generic")
    return lambda event: module.lambda_handler(event, lambda_context)


def signed(load_event, preset: str, **options) -> dict:
    return sign_event("generic", load_event(f"generic/{preset}.json"), secret_of(preset), **options)


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_sample_enqueued_with_its_senders_type_and_id(handler, aws, load_event, preset):
    answer = handler(signed(load_event, preset))
    assert answer["statusCode"] == 200, answer["body"]
    envelopes = aws.receive()
    kind, event_id = EXPECTED[preset]
    assert (envelopes[0]["source"], envelopes[0]["name"], envelopes[0]["event_type"]) == (
        "generic",
        preset,
        kind,
    )
    if event_id is not None:
        assert envelopes[0]["event_id"] == event_id


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_redelivery_signed_again_later_is_a_duplicate(handler, aws, load_event, preset):
    first = handler(signed(load_event, preset, now=time.time() - 2))
    again = handler(signed(load_event, preset))
    assert first["statusCode"] == again["statusCode"] == 200
    answer = json.loads(again["body"])
    assert answer["accepted"] == 0 and answer["duplicates"] >= 1, answer


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_sample_refused_with_401_when_signed_with_another_secret(handler, aws, load_event, preset):
    other = "cd" * 32 if preset == "close" else "not-the-secret"
    answer = handler(sign_event("generic", load_event(f"generic/{preset}.json"), other))
    assert answer["statusCode"] == 401
    assert aws.receive() == []


def test_attio_batch_enqueues_each_event_and_its_redelivery_none(handler, aws, load_event):
    answer = json.loads(handler(signed(load_event, "attio"))["body"])
    assert (answer["accepted"], answer["duplicates"]) == (2, 0)
    types = sorted(e["event_type"] for e in aws.receive())
    assert types == ["note.created", "record.updated"]
    again = json.loads(handler(signed(load_event, "attio"))["body"])
    assert (again["accepted"], again["duplicates"]) == (0, 2)


@pytest.mark.parametrize("preset", ["github", "intercom"])
def test_ping_answered_200_and_not_enqueued(handler, aws, load_event, preset):
    event = load_event(f"generic/{preset}.json")
    if preset == "github":
        event["headers"]["x-github-event"] = "ping"
        event["body"] = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 512774393})
    else:
        event["body"] = json.dumps({"type": "notification_event", "topic": "ping", "id": "notif_ping_1"})
    answer = handler(sign_event("generic", event, secret_of(preset)))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {"handshake": "ping"}
    assert aws.receive() == []


def test_intercom_retry_with_a_higher_attempt_count_is_a_duplicate_not_a_conflict(handler, aws, load_event):
    handler(signed(load_event, "intercom"))
    retry = load_event("generic/intercom.json")
    body = json.loads(retry["body"])
    retry["body"] = json.dumps(body | {"delivery_attempts": 2, "delivery_status": "retry"})
    answer = json.loads(handler(sign_event("generic", retry, secret_of("intercom")))["body"])
    assert (answer["duplicates"], answer["rejected"]) == (1, 0)


def expirations(aws) -> list[float]:
    return [float(item["expiration"]["N"]) for item in aws.dynamodb.scan(TableName=aws.table)["Items"]]


def test_docusign_identity_kept_14_days_and_stripe_7(handler, aws, load_event):
    before = time.time()
    handler(signed(load_event, "docusign"))
    [docusign] = expirations(aws)
    assert 14 * 86400 - 60 <= docusign - before <= 14 * 86400 + 60
    handler(signed(load_event, "stripe"))
    stripe = [e for e in expirations(aws) if e != docusign]
    assert stripe and all(7 * 86400 - 60 <= e - before <= 7 * 86400 + 60 for e in stripe)


def test_linear_sample_gets_a_fresh_body_timestamp_when_signed(handler, load_event):
    event = signed(load_event, "linear")
    stamp = json.loads(event["body"])["webhookTimestamp"]
    assert abs(stamp / 1000 - time.time()) < 60
    original = load_event("generic/linear.json")["body"]
    assert event["body"].replace(str(stamp), "1763899500000") == original


def test_linear_sample_with_its_old_body_timestamp_is_refused(handler, aws, load_event):
    event = load_event("generic/linear.json")
    body = event["body"].encode()
    event["headers"]["linear-signature"] = hmac_scheme.signature(PRESETS["linear"], secret_of("linear"), body)
    answer = handler(event)
    assert answer["statusCode"] == 401
    assert json.loads(answer["body"])["error"] == "timestamp_expired"
