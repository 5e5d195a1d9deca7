"""Pipedrive handler in-process against moto: v1 and v2 bodies behind Basic credentials."""

from __future__ import annotations

import json

import pytest
from timeline_bridge_tools.signing import sign_event

CREDENTIALS = "pipedrive-hook:Zk3pL9qW2xV7nB4mR8tY"


@pytest.fixture
def handler(aws, monkeypatch, load_function, lambda_context):
    monkeypatch.setenv("PIPEDRIVE_BASIC_AUTH", CREDENTIALS)
    module = load_function("pipedrive")
    return lambda event: module.lambda_handler(event, lambda_context)


def test_v2_deal_stage_change_enqueued(handler, aws, load_event):
    event = load_event("pipedrive/deal-stage-change-v2.json")
    assert handler(sign_event("pipedrive", event, CREDENTIALS))["statusCode"] == 200
    [envelope] = aws.receive()
    body = json.loads(event["body"])
    assert (envelope["source"], envelope["event_type"], envelope["event_id"]) == (
        "pipedrive",
        "change.deal",
        body["meta"]["id"],
    )
    assert envelope["occurred_at"] == "2025-11-23T12:01:55.724Z"
    assert envelope["event"]["previous"]["stage_id"] == 3
    assert envelope["event"]["data"]["stage_id"] == 4


def test_v1_deal_updated_enqueued(handler, aws, load_event):
    event = load_event("pipedrive/deal-updated-v1.json")
    assert handler(sign_event("pipedrive", event, CREDENTIALS))["statusCode"] == 200
    [envelope] = aws.receive()
    assert (envelope["event_type"], envelope["event_id"]) == (
        "updated.deal",
        "1234567:deal:42:1763899315724112",
    )


@pytest.mark.parametrize(
    ("file", "bump"),
    [
        ("pipedrive/deal-stage-change-v2.json", lambda b: b["meta"].update(attempt=2)),
        ("pipedrive/deal-updated-v1.json", lambda b: b.update(retry=1)),
    ],
    ids=["v2", "v1"],
)
def test_retry_enqueued_once_when_pipedrive_redelivers(handler, aws, load_event, file, bump):
    event = load_event(file)
    handler(sign_event("pipedrive", event, CREDENTIALS))
    body = json.loads(event["body"])
    bump(body)
    event["body"] = json.dumps(body)
    answer = handler(sign_event("pipedrive", event, CREDENTIALS))
    assert json.loads(answer["body"])["duplicates"] == 1
    assert len(aws.receive()) == 1


@pytest.mark.parametrize(
    "credentials",
    ["pipedrive-hook:wrong", "other:Zk3pL9qW2xV7nB4mR8tY", CREDENTIALS + "x"],
    ids=["password", "user", "longer"],
)
def test_wrong_credentials_answer_401_and_enqueue_nothing(handler, aws, load_event, credentials):
    event = sign_event("pipedrive", load_event("pipedrive/deal-stage-change-v2.json"), credentials)
    assert handler(event)["statusCode"] == 401
    assert aws.count() == 0


def test_missing_credentials_answer_401(handler, aws, load_event):
    assert handler(load_event("pipedrive/deal-stage-change-v2.json"))["statusCode"] == 401


@pytest.mark.parametrize("which", [0, 1])
def test_rotation_list_accepts_both_credentials(handler, aws, load_event, monkeypatch, which):
    both = ["pipedrive-hook:old-password-1", "pipedrive-hook:new-password-2"]
    monkeypatch.setenv("PIPEDRIVE_BASIC_AUTH", json.dumps(both))
    event = sign_event("pipedrive", load_event("pipedrive/deal-stage-change-v2.json"), both[which])
    assert handler(event)["statusCode"] == 200


def test_unknown_shape_acknowledged_and_not_enqueued(handler, aws, load_event):
    event = load_event("pipedrive/deal-stage-change-v2.json")
    event["body"] = json.dumps({"meta": {"version": "3.0", "id": "x"}, "data": {}})
    assert handler(sign_event("pipedrive", event, CREDENTIALS))["statusCode"] == 200
    assert aws.count() == 0


def test_malformed_body_answers_400(handler, aws, load_event):
    event = load_event("pipedrive/deal-stage-change-v2.json")
    event["body"] = event["body"][:-10]
    assert handler(sign_event("pipedrive", event, CREDENTIALS))["statusCode"] == 400
    assert aws.count() == 0


# Times no datetime holds (or before the epoch, for an epoch number), as JSON text.
OUT_OF_RANGE_TIMES = [
    pytest.param("1" + "0" * 400, id="huge-integer"),
    pytest.param("-1" + "0" * 400, id="negative-huge-integer"),
    pytest.param("1e400", id="float-overflowing-to-infinity"),
    pytest.param("1000000000000000000", id="past-year-9999"),
    pytest.param('"9999-12-31T23:59:59-01:00"', id="iso-past-year-9999-in-utc"),
    pytest.param('"0001-01-01T00:00:00+01:00"', id="iso-before-year-1-in-utc"),
]


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
@pytest.mark.parametrize(
    ("file", "field", "drop"),
    [
        ("pipedrive/deal-stage-change-v2.json", "timestamp", None),
        ("pipedrive/deal-updated-v1.json", "timestamp_micro", None),
        ("pipedrive/deal-updated-v1.json", "timestamp", "timestamp_micro"),
    ],
    ids=["v2-timestamp", "v1-timestamp_micro", "v1-timestamp"],
)
def test_out_of_range_meta_timestamp_answers_400_naming_the_field(
    handler, aws, load_event, file, field, drop, value
):
    event = load_event(file)
    body = json.loads(event["body"])
    body["meta"][field] = "<time>"
    if drop:
        body["meta"].pop(drop)
    event["body"] = json.dumps(body).replace('"<time>"', value)
    answer = handler(sign_event("pipedrive", event, CREDENTIALS))
    assert answer["statusCode"] == 400
    refusal = json.loads(answer["body"])
    assert refusal["error"] == "timestamp_out_of_range"
    assert f"meta.{field} " in refusal["message"]
    assert aws.count() == 0
