"""Slack handler in-process against moto: button clicks, the Events API and url_verification."""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, quote_plus

import pytest
from botocore.exceptions import ClientError
from timeline_bridge.sources import slack
from timeline_bridge_tools.signing import sign_event

SECRET = "7d3f9a1c5e2b8d4f6a0c1e3b5d7f9a2c"


@pytest.fixture
def handler(aws, monkeypatch, load_function, lambda_context):
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    module = load_function("slack")
    return lambda event: module.lambda_handler(event, lambda_context)


def payload_of(event) -> dict:
    return json.loads(parse_qs(event["body"])["payload"][0])


def refuse_sqs(monkeypatch, cold_start):
    def refuse(**kwargs):
        raise ClientError(
            {"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "SendMessageBatch"
        )

    monkeypatch.setattr(cold_start("slack").aws("sqs"), "send_message_batch", refuse)


@pytest.mark.parametrize(
    ("file", "action_id"),
    [("slack/approve-button.json", "approve_request"), ("slack/reject-button.json", "reject_request")],
)
def test_button_click_enqueued_as_block_actions(handler, aws, load_event, file, action_id):
    event = load_event(file)
    answer = handler(sign_event("slack", event, SECRET))
    assert (answer["statusCode"], answer["body"]) == (200, "")
    [envelope] = aws.receive()
    assert envelope["source"] == "slack"
    assert envelope["event_type"] == "block_actions"
    assert envelope["event_id"] == payload_of(event)["trigger_id"]
    assert envelope["event"] == payload_of(event)
    assert envelope["event"]["actions"][0]["action_id"] == action_id


def test_click_enqueued_once_when_delivered_twice(handler, aws, load_event):
    event = sign_event("slack", load_event("slack/approve-button.json"), SECRET)
    handler(event)
    handler(event)
    assert len(aws.receive()) == 1


def test_approve_and_reject_are_two_events(handler, aws, load_event):
    for file in ("slack/approve-button.json", "slack/reject-button.json"):
        handler(sign_event("slack", load_event(file), SECRET))
    assert sorted(e["event"]["actions"][0]["action_id"] for e in aws.receive()) == [
        "approve_request",
        "reject_request",
    ]


def test_url_verification_answers_the_challenge(handler, aws, load_event):
    event = load_event("slack/url-verification.json")
    answer = handler(sign_event("slack", event, SECRET))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {"challenge": json.loads(event["body"])["challenge"]}
    assert aws.count() == 0


def test_url_verification_refused_when_unsigned(handler, aws, load_event):
    assert handler(load_event("slack/url-verification.json"))["statusCode"] == 401


def test_events_api_retry_deduped_when_slack_retries_after_timeout(handler, aws, load_event):
    event = load_event("slack/url-verification.json")
    event["body"] = json.dumps(
        {
            "token": "bHKJ2n9AW6Ju3MjciOHfbA1b",
            "team_id": "T01ABCDEF12",
            "api_app_id": "A05XYZ12345",
            "event": {
                "type": "app_mention",
                "user": "U04ABCD1234",
                "text": "<@U05BOT> status",
                "ts": "1763900300.000100",
            },
            "type": "event_callback",
            "event_id": "Ev08MFMKH6",
            "event_time": 1763900300,
        }
    )
    first = sign_event("slack", event, SECRET)
    retry = sign_event("slack", event, SECRET)
    retry["headers"] |= {"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"}
    assert handler(first)["statusCode"] == 200
    assert json.loads(handler(retry)["body"])["duplicates"] == 1
    [envelope] = aws.receive()
    assert (envelope["event_type"], envelope["event_id"]) == ("app_mention", "Ev08MFMKH6")


def test_click_answered_with_try_again_text_when_queue_fails(
    handler, aws, load_event, monkeypatch, cold_start
):
    event = sign_event("slack", load_event("slack/approve-button.json"), SECRET)
    refuse_sqs(monkeypatch, cold_start)
    answer = handler(event)
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {
        "response_type": "ephemeral",
        "replace_original": False,
        "text": slack.RETRY_TEXT,
    }
    monkeypatch.undo()
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    # The claim was released: the same click, sent again, is recorded.
    assert handler(event)["statusCode"] == 200
    assert len(aws.receive()) == 1


def test_click_answered_with_try_again_text_when_dedupe_table_fails(
    handler, aws, load_event, monkeypatch, cold_start
):
    def throttled(**kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "injected"}}, "PutItem")

    dynamodb = cold_start("slack").aws("dynamodb")
    for call in ("get_item", "put_item", "update_item"):  # the whole table is down
        monkeypatch.setattr(dynamodb, call, throttled)
    answer = handler(sign_event("slack", load_event("slack/reject-button.json"), SECRET))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["text"] == slack.RETRY_TEXT
    assert aws.count() == 0


def test_events_api_gets_503_when_queue_fails(handler, aws, load_event, monkeypatch, cold_start):
    event = load_event("slack/url-verification.json")
    event["body"] = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": {"type": "message"}})
    refuse_sqs(monkeypatch, cold_start)
    assert handler(sign_event("slack", event, SECRET))["statusCode"] == 503


@pytest.mark.parametrize("skew", [-301, 301], ids=["old", "future"])
def test_click_refused_when_timestamp_outside_window(handler, aws, load_event, skew):
    event = sign_event("slack", load_event("slack/approve-button.json"), SECRET, now=time.time() + skew)
    assert handler(event)["statusCode"] == 401
    assert aws.count() == 0


def test_click_refused_when_payload_altered(handler, aws, load_event):
    event = sign_event("slack", load_event("slack/approve-button.json"), SECRET)
    event["body"] = event["body"].replace("approve_request", "reject__request")
    assert handler(event)["statusCode"] == 401
    assert aws.count() == 0


def test_click_verified_when_body_arrives_base64_encoded(handler, aws, load_event):
    import base64

    event = load_event("slack/approve-button.json")
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert handler(sign_event("slack", event, SECRET))["statusCode"] == 200
    assert len(aws.receive()) == 1


def test_slash_command_acknowledged_and_not_enqueued(handler, aws, load_event):
    event = load_event("slack/approve-button.json")
    event["body"] = "token=x&team_id=T1&command=%2Fdeal&text=status&trigger_id=1.2.3"
    assert handler(sign_event("slack", event, SECRET))["statusCode"] == 200
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
def test_out_of_range_event_time_answers_400_naming_the_field(handler, aws, load_event, value):
    event = load_event("slack/url-verification.json")
    body = {
        "type": "event_callback",
        "event_id": "Ev08MFMKH7",
        "event": {"type": "app_mention", "text": "<@U05BOT> status"},
        "event_time": "<time>",
    }
    event["body"] = json.dumps(body).replace('"<time>"', value)
    answer = handler(sign_event("slack", event, SECRET))
    assert answer["statusCode"] == 400
    refusal = json.loads(answer["body"])
    assert refusal["error"] == "timestamp_out_of_range"
    assert "event_time " in refusal["message"]
    assert aws.count() == 0


def test_click_enqueued_without_occurred_at_when_action_ts_is_out_of_range(handler, aws, load_event):
    # Only some interactivity payloads carry actions[].action_ts: informative, so null.
    event = load_event("slack/approve-button.json")
    payload = payload_of(event)
    payload["actions"][0]["action_ts"] = "1" + "0" * 400
    event["body"] = "payload=" + quote_plus(json.dumps(payload))
    assert handler(sign_event("slack", event, SECRET))["statusCode"] == 200
    [envelope] = aws.receive()
    assert envelope["occurred_at"] is None
