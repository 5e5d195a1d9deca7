"""Generic handler in-process against moto: Standard Webhooks and a plain HMAC endpoint."""

from __future__ import annotations

import json

import pytest
from timeline_bridge_tools.signing import sign_event

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
NEXT_SECRET = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
FILE = "generic/standard-webhook.json"


@pytest.fixture
def handler(aws, monkeypatch, load_function, lambda_context):
    monkeypatch.setenv("GENERIC_WEBHOOK_SECRET", SECRET)
    module = load_function("generic")
    return lambda event: module.lambda_handler(event, lambda_context)


def test_standard_webhook_enqueued_with_endpoint_name(handler, aws, load_event):
    event = load_event(FILE)
    assert handler(sign_event("generic", event, SECRET))["statusCode"] == 200
    [envelope] = aws.receive()
    assert (envelope["source"], envelope["name"], envelope["event_type"], envelope["event_id"]) == (
        "generic",
        "billing",
        "invoice.paid",
        event["headers"]["webhook-id"],
    )
    assert envelope["occurred_at"] == "2025-11-23T12:05:00.000Z"
    assert envelope["event"] == json.loads(event["body"])


def test_redelivery_enqueued_once_when_webhook_id_repeats(handler, aws, load_event):
    handler(sign_event("generic", load_event(FILE), SECRET))
    answer = handler(sign_event("generic", load_event(FILE), SECRET))  # re-signed later, same id
    assert json.loads(answer["body"])["duplicates"] == 1
    assert len(aws.receive()) == 1


def test_same_webhook_id_on_two_endpoints_enqueued_twice(handler, aws, load_event):
    first = load_event(FILE)
    second = load_event(FILE)
    second["rawPath"] = "/generic/shipping"
    for event in (first, second):
        assert handler(sign_event("generic", event, SECRET))["statusCode"] == 200
    assert sorted(e["name"] for e in aws.receive()) == ["billing", "shipping"]


def test_old_and_new_signatures_accepted_when_endpoint_secret_rotates(
    handler, aws, load_event, monkeypatch, cold_start
):
    monkeypatch.setenv("GENERIC_BILLING_SECRET", json.dumps([SECRET, NEXT_SECRET]))
    old = sign_event("generic", load_event(FILE), SECRET, webhook_id="msg_old")
    new = sign_event("generic", load_event(FILE), NEXT_SECRET, webhook_id="msg_new")
    assert [handler(e)["statusCode"] for e in (old, new)] == [200, 200]
    monkeypatch.setenv("GENERIC_BILLING_SECRET", json.dumps([NEXT_SECRET]))
    cold_start("generic")  # a plain variable changes with a new function configuration
    retired = sign_event("generic", load_event(FILE), SECRET, webhook_id="msg_retired")
    assert handler(retired)["statusCode"] == 401


def test_hmac_endpoint_configured_by_environment(handler, aws, load_event, monkeypatch):
    monkeypatch.setenv("GENERIC_GITHUB_SCHEME", "hmac")
    monkeypatch.setenv("GENERIC_GITHUB_SECRET", "It's a Secret to Everybody")
    monkeypatch.setenv("GENERIC_GITHUB_SIGNATURE_HEADER", "X-Hub-Signature-256")
    monkeypatch.setenv("GENERIC_GITHUB_PREFIX", "sha256=")
    monkeypatch.setenv("GENERIC_GITHUB_ID_HEADER", "X-GitHub-Delivery")
    monkeypatch.setenv("GENERIC_GITHUB_TYPE_FIELD", "action")
    event = load_event(FILE)
    event["rawPath"] = "/generic/github"
    event["headers"] = {k: v for k, v in event["headers"].items() if k != "webhook-id"}
    event["body"] = json.dumps({"action": "opened", "issue": {"number": 7}})
    signed = sign_event(
        "generic", event, "It's a Secret to Everybody", webhook_id="72d3162e-cc78-11e3-81ab-4c9367dc0958"
    )
    assert signed["headers"]["x-hub-signature-256"].startswith("sha256=")
    assert handler(signed)["statusCode"] == 200
    [envelope] = aws.receive()
    assert (envelope["name"], envelope["event_type"], envelope["event_id"]) == (
        "github",
        "opened",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    )


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        pytest.param(lambda e: e["headers"].pop("webhook-signature"), 401, id="signature-missing"),
        pytest.param(lambda e: e.update(body=e["body"].replace("4200", "4201")), 401, id="body-altered"),
        pytest.param(lambda e: e["headers"].update({"webhook-id": "msg_other"}), 401, id="id-swapped"),
        pytest.param(lambda e: e.update(rawPath="/generic/a/b"), 404, id="not-an-endpoint"),
    ],
)
def test_bad_input_gets_its_status_and_enqueues_nothing(handler, aws, load_event, mutate, status):
    event = sign_event("generic", load_event(FILE), SECRET)
    mutate(event)
    assert handler(event)["statusCode"] == status
    assert aws.count() == 0


def test_event_without_type_acknowledged_and_not_enqueued(handler, aws, load_event):
    event = load_event(FILE)
    event["body"] = json.dumps({"data": {"id": 1}})
    assert handler(sign_event("generic", event, SECRET))["statusCode"] == 200
    assert aws.count() == 0


def test_missing_secret_answers_503(handler, aws, load_event, monkeypatch):
    monkeypatch.delenv("GENERIC_WEBHOOK_SECRET")
    assert handler(sign_event("generic", load_event(FILE), SECRET))["statusCode"] == 503


# Times no datetime holds (or before the epoch, for an epoch number), as JSON text.
OUT_OF_RANGE_TIMES = [
    pytest.param("1" + "0" * 400, id="huge-integer"),
    pytest.param("-1" + "0" * 400, id="negative-huge-integer"),
    pytest.param("1e400", id="float-overflowing-to-infinity"),
    pytest.param("1000000000000000000", id="past-year-9999"),
    pytest.param('"9999-12-31T23:59:59-01:00"', id="iso-past-year-9999-in-utc"),
    pytest.param('"0001-01-01T00:00:00+01:00"', id="iso-before-year-1-in-utc"),
]


def with_timestamp(event: dict, value: str) -> dict:
    body = json.loads(event["body"])
    body["timestamp"] = "<time>"
    event["body"] = json.dumps(body).replace('"<time>"', value)
    return event


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
def test_out_of_range_body_timestamp_answers_400_naming_the_field(handler, aws, load_event, value):
    # Standard Webhooks payloads always carry `timestamp`: a broken one is the sender's bug.
    answer = handler(sign_event("generic", with_timestamp(load_event(FILE), value), SECRET))
    assert answer["statusCode"] == 400
    refusal = json.loads(answer["body"])
    assert refusal["error"] == "timestamp_out_of_range"
    assert "timestamp " in refusal["message"]
    assert aws.count() == 0


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
def test_hmac_endpoint_enqueues_without_occurred_at_when_body_timestamp_is_out_of_range(
    handler, aws, load_event, monkeypatch, value
):
    # A plain HMAC sender documents no `timestamp`: the field is informative there, so null.
    monkeypatch.setenv("GENERIC_PLAIN_SCHEME", "hmac")
    monkeypatch.setenv("GENERIC_PLAIN_SECRET", "plain-secret")
    event = with_timestamp(load_event(FILE), value)
    event["rawPath"] = "/generic/plain"
    event["headers"] = {k: v for k, v in event["headers"].items() if k != "webhook-id"}
    assert handler(sign_event("generic", event, "plain-secret"))["statusCode"] == 200
    [envelope] = aws.receive()
    assert envelope["occurred_at"] is None
