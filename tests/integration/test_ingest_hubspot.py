"""HubSpot handler in-process against moto SQS + DynamoDB, with events signed at test time."""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from timeline_bridge_tools.signing import sign_event

SECRET = "3f6c0b7e-5d1a-4c2b-9e8f-7a6b5c4d3e2f"
EVENT_FILE = "hubspot/deal-stage-change.json"


@pytest.fixture
def handler(aws, monkeypatch, load_function, lambda_context):
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", SECRET)
    module = load_function("hubspot")
    return lambda event: module.lambda_handler(event, lambda_context)


def with_body(event: dict[str, Any], body: Any) -> dict[str, Any]:
    changed = copy.deepcopy(event)
    changed["body"] = json.dumps(body, separators=(",", ":"))
    return changed


def batch(template: dict[str, Any], count: int, *, attempt: int = 0) -> list[dict[str, Any]]:
    base = json.loads(template["body"])[0]
    return [
        base | {"eventId": 4000000000 + i, "objectId": 18147040000 + i, "attemptNumber": attempt}
        for i in range(count)
    ]


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


def test_deal_stage_change_enqueued_as_one_envelope(handler, aws, load_event):
    event = load_event(EVENT_FILE)
    answer = handler(sign_event("hubspot", event, SECRET))
    assert answer["statusCode"] == 200
    [envelope] = aws.receive()
    source_event = json.loads(event["body"])[0]
    assert envelope["source"] == "hubspot"
    assert envelope["event_type"] == "deal.propertyChange"
    assert envelope["event_id"] == "62515:2472591:3816279340:18147040851:1763899315724"
    assert envelope["occurred_at"] == "2025-11-23T12:01:55.724Z"
    assert envelope["event"] == source_event
    assert envelope["event"]["propertyValue"] == "contractsent"
    assert envelope["received_at"].endswith("Z")


def test_duplicate_enqueued_once_when_hubspot_retries(handler, aws, load_event):
    event = load_event(EVENT_FILE)
    assert handler(sign_event("hubspot", event, SECRET))["statusCode"] == 200
    assert handler(sign_event("hubspot", event, SECRET))["statusCode"] == 200
    # A later retry carries attemptNumber 1 and a fresh signature: still the same event.
    retry = with_body(event, [json.loads(event["body"])[0] | {"attemptNumber": 1}])
    answer = handler(sign_event("hubspot", retry, SECRET))
    assert json.loads(answer["body"])["duplicates"] == 1
    assert len(aws.receive()) == 1


def test_batch_of_100_yields_100_envelopes_then_none_when_posted_again(handler, aws, load_event):
    event = with_body(load_event(EVENT_FILE), batch(load_event(EVENT_FILE), 100))
    first = handler(sign_event("hubspot", event, SECRET))
    assert json.loads(first["body"]) == {"accepted": 100, "duplicates": 0, "ignored": 0, "rejected": 0}
    envelopes = aws.receive()
    assert len(envelopes) == 100
    assert len({e["event_id"] for e in envelopes}) == 100
    second = handler(sign_event("hubspot", event, SECRET))
    assert json.loads(second["body"])["duplicates"] == 100
    assert aws.receive() == []


def test_claims_written_for_seven_days_with_payload_hash(handler, aws, load_event):
    handler(sign_event("hubspot", load_event(EVENT_FILE), SECRET))
    [item] = aws.dynamodb.scan(TableName=aws.table)["Items"]
    assert item["id"]["S"].startswith("ingest.hubspot#")
    assert item["status"]["S"] == "COMPLETED"
    assert item["validation"]["S"]
    ttl = int(item["expiration"]["N"]) - time.time()
    assert 7 * 86400 - 60 < ttl <= 7 * 86400


def test_sqs_failure_answers_503_then_retry_goes_through(handler, aws, load_event, monkeypatch, cold_start):
    event = sign_event(
        "hubspot", with_body(load_event(EVENT_FILE), batch(load_event(EVENT_FILE), 100)), SECRET
    )
    sqs = cold_start("hubspot").aws("sqs")

    def refuse(**kwargs):
        raise client_error("InternalError", "SendMessageBatch")

    monkeypatch.setattr(sqs, "send_message_batch", refuse)
    answer = handler(event)
    assert answer["statusCode"] == 503
    assert json.loads(answer["body"])["error"] == "enqueue_failed"
    monkeypatch.undo()
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", SECRET)
    assert aws.count() == 0
    assert aws.dynamodb.scan(TableName=aws.table)["Count"] == 0  # every claim released

    retry = handler(event)
    assert json.loads(retry["body"])["accepted"] == 100
    assert len(aws.receive()) == 100


def test_partial_sqs_failure_releases_only_unsent_events(handler, aws, load_event, monkeypatch, cold_start):
    event = sign_event(
        "hubspot", with_body(load_event(EVENT_FILE), batch(load_event(EVENT_FILE), 25)), SECRET
    )
    sqs = cold_start("hubspot").aws("sqs")
    real = sqs.send_message_batch

    def drop_first_entry(**kwargs):
        entries = kwargs["Entries"]
        answer = real(QueueUrl=kwargs["QueueUrl"], Entries=entries[1:])
        answer["Failed"] = [
            {"Id": entries[0]["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
        ]
        return answer

    monkeypatch.setattr(sqs, "send_message_batch", drop_first_entry)
    assert handler(event)["statusCode"] == 503
    assert len(aws.receive()) == 22  # 3 calls (10 + 10 + 5), one entry failed in each
    monkeypatch.setattr(sqs, "send_message_batch", real)

    retry = handler(event)
    assert json.loads(retry["body"]) == {"accepted": 3, "duplicates": 22, "ignored": 0, "rejected": 0}
    assert len(aws.receive()) == 3


def test_dynamodb_failure_answers_503_and_enqueues_nothing(handler, aws, load_event, monkeypatch, cold_start):
    event = sign_event("hubspot", with_body(load_event(EVENT_FILE), batch(load_event(EVENT_FILE), 5)), SECRET)
    dynamodb = cold_start("hubspot").aws("dynamodb")
    real = dynamodb.get_item  # a claim reads the event's record; it is written once enqueued
    calls = {"n": 0}

    def throttled_after_two(**kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise client_error("ProvisionedThroughputExceededException", "GetItem")
        return real(**kwargs)

    monkeypatch.setattr(dynamodb, "get_item", throttled_after_two)
    assert handler(event)["statusCode"] == 503
    assert aws.count() == 0
    assert aws.dynamodb.scan(TableName=aws.table)["Count"] == 0  # nothing recorded for the claims that read
    monkeypatch.setattr(dynamodb, "get_item", real)

    assert json.loads(handler(event)["body"])["accepted"] == 5


def test_oversized_body_answers_413_and_enqueues_nothing(handler, aws, load_event, monkeypatch):
    monkeypatch.setenv("MAX_BODY_BYTES", "4096")
    event = with_body(load_event(EVENT_FILE), batch(load_event(EVENT_FILE), 40))
    assert len(event["body"]) > 4096
    assert handler(sign_event("hubspot", event, SECRET))["statusCode"] == 413
    assert aws.count() == 0


def test_unknown_event_type_answers_200_and_enqueues_nothing(handler, aws, load_event):
    event = load_event(EVENT_FILE)
    unknown = with_body(event, [json.loads(event["body"])[0] | {"subscriptionType": "deal.somethingNew"}])
    answer = handler(sign_event("hubspot", unknown, SECRET))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["ignored"] == 1
    assert aws.count() == 0


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        pytest.param(lambda e: e["headers"].pop("x-hubspot-signature-v3"), 401, id="signature-missing"),
        pytest.param(
            lambda e: e.update(body=e["body"].replace("contractsent", "closedwon")), 401, id="body-altered"
        ),
        pytest.param(lambda e: e["headers"].update({"x-forwarded-proto": "http"}), 401, id="http-not-https"),
        pytest.param(lambda e: e.update(rawPath="/hubspot/"), 401, id="other-path"),
    ],
)
def test_bad_input_gets_its_status_and_enqueues_nothing(handler, aws, load_event, mutate, status):
    event = sign_event("hubspot", load_event(EVENT_FILE), SECRET)
    mutate(event)
    assert handler(event)["statusCode"] == status
    assert aws.count() == 0


def at_path(event: dict[str, Any], path: str, **headers: str) -> dict[str, Any]:
    """`event` as a request to `path` of the same Function URL, with extra client headers."""
    moved = copy.deepcopy(event)
    moved["rawPath"] = moved["requestContext"]["http"]["path"] = path
    moved["headers"].update(headers)
    return moved


def test_request_signed_for_another_stack_answers_401_when_x_forwarded_host_names_that_stack(
    handler, aws, load_event
):
    # Same client secret on two stacks: a request signed for the other one, replayed here in time.
    event = at_path(load_event(EVENT_FILE), "/hubspot", **{"x-forwarded-host": "other-stack.example"})
    replayed = sign_event("hubspot", event, SECRET, url="https://other-stack.example/hubspot")
    assert handler(replayed)["statusCode"] == 401
    assert aws.count() == 0


def test_request_signed_for_this_domain_name_accepted_when_x_forwarded_host_names_another(
    handler, aws, load_event
):
    event = at_path(load_event(EVENT_FILE), "/hubspot", **{"x-forwarded-host": "other-stack.example"})
    domain = event["requestContext"]["domainName"]
    assert handler(sign_event("hubspot", event, SECRET, url=f"https://{domain}/hubspot"))["statusCode"] == 200
    assert aws.count() == 1


def test_stale_timestamp_answers_401(handler, aws, load_event):
    event = sign_event("hubspot", load_event(EVENT_FILE), SECRET, now=time.time() - 301)
    assert handler(event)["statusCode"] == 401
    assert aws.count() == 0


def test_malformed_body_answers_400_when_signed(handler, aws, load_event):
    event = load_event(EVENT_FILE)
    event["body"] = '{"eventId": 1}'
    assert handler(sign_event("hubspot", event, SECRET))["statusCode"] == 400
    assert aws.count() == 0


def test_same_identity_with_other_body_rejected(handler, aws, load_event):
    event = load_event(EVENT_FILE)
    handler(sign_event("hubspot", event, SECRET))
    tampered = with_body(event, [json.loads(event["body"])[0] | {"propertyValue": "closedlost"}])
    answer = handler(sign_event("hubspot", tampered, SECRET))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["rejected"] == 1
    assert len(aws.receive()) == 1


def test_missing_secret_answers_503(handler, aws, load_event, monkeypatch):
    monkeypatch.delenv("HUBSPOT_CLIENT_SECRET")
    assert handler(sign_event("hubspot", load_event(EVENT_FILE), SECRET))["statusCode"] == 503
    assert aws.count() == 0


@pytest.mark.parametrize("signer", ["old", "new"])
def test_both_secrets_accepted_when_secrets_manager_holds_a_rotation_list(
    handler, aws, load_event, monkeypatch, signer
):
    aws.put_secret("HUBSPOT_CLIENT_SECRET", ["old-client-secret", "new-client-secret"], monkeypatch)
    event = sign_event("hubspot", load_event(EVENT_FILE), f"{signer}-client-secret")
    assert handler(event)["statusCode"] == 200
    assert handler(sign_event("hubspot", load_event(EVENT_FILE), "third-secret"))["statusCode"] == 401


def test_public_url_setting_used_when_behind_a_custom_domain(handler, aws, load_event, monkeypatch):
    monkeypatch.setenv("HUBSPOT_WEBHOOK_URL", "https://hooks.acme.example/hubspot")
    event = sign_event("hubspot", load_event(EVENT_FILE), SECRET, url="https://hooks.acme.example/hubspot")
    assert handler(event)["statusCode"] == 200


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
def test_out_of_range_occurred_at_answers_400_naming_the_field(handler, aws, load_event, value):
    event = load_event(EVENT_FILE)
    good = json.loads(event["body"])[0]
    changed = with_body(event, [good, good | {"eventId": 4000000001, "occurredAt": "<time>"}])
    changed["body"] = changed["body"].replace('"<time>"', value)
    answer = handler(sign_event("hubspot", changed, SECRET))
    assert answer["statusCode"] == 400
    body = json.loads(answer["body"])
    assert body["error"] == "timestamp_out_of_range"
    assert "[1].occurredAt" in body["message"]
    assert value.strip('"') not in body["message"]  # the answer never echoes the body
    assert aws.count() == 0
