"""The local emulator of Lambda's SQS event source mapping, against moto SQS: what it deletes, what
it leaves in flight, and what SQS redrives to the DLQ."""

from __future__ import annotations

import json
from typing import Any

import pytest
from timeline_bridge_tools.local.event_source import EventSourceMapping, drain, queue_counts


@pytest.fixture
def queue(aws: Any) -> str:
    """The Stora delivery queue, with a 1 s visibility timeout and redrive after 2 receives."""
    url = aws.queues["stora"]
    dlq_arn = aws.sqs.get_queue_attributes(QueueUrl=aws.queues["stora-dlq"], AttributeNames=["QueueArn"])
    aws.sqs.set_queue_attributes(
        QueueUrl=url,
        Attributes={
            "VisibilityTimeout": "1",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": "2"}
            ),
        },
    )
    return url


def send(aws: Any, url: str, *bodies: str) -> None:
    for body in bodies:
        aws.sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={"target": {"DataType": "String", "StringValue": "stora"}},
        )


def test_records_look_like_lambdas_sqs_event_when_the_handler_is_invoked(aws, queue):
    send(aws, queue, "one")
    seen: list[tuple[dict[str, Any], int]] = []
    mapping = EventSourceMapping(
        queue,
        lambda e, c: seen.append((e, c.get_remaining_time_in_millis())),
        sqs=aws.sqs,
        function_timeout=5,
    )
    assert mapping.poll_once(wait=0) == 1
    [(event, remaining)] = seen
    [record] = event["Records"]
    assert record["body"] == "one" and record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(":timeline-bridge-stora")
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"]["target"]["stringValue"] == "stora"
    assert record["receiptHandle"] and record["messageId"]
    assert 0 < remaining <= 5000
    assert sum(queue_counts(aws.sqs, queue).values()) == 0  # success: deleted


def test_only_reported_failures_stay_in_flight_when_the_handler_answers_batch_item_failures(aws, queue):
    send(aws, queue, "ok-1", "fail", "ok-2")

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "fail"
            ]
        }

    mapping = EventSourceMapping(queue, handler, sqs=aws.sqs, batch_size=10)
    assert mapping.poll_once(wait=0) == 3
    assert queue_counts(aws.sqs, queue) == {"visible": 0, "in_flight": 1, "delayed": 0}


@pytest.mark.parametrize(
    "outcome",
    ["raise", "unknown_id", "empty_id"],
)
def test_the_whole_batch_returns_when_the_handler_fails_or_answers_nonsense(aws, queue, outcome):
    send(aws, queue, "a", "b")

    def handler(event: dict[str, Any], context: Any) -> Any:
        if outcome == "raise":
            raise RuntimeError("worker crashed")
        return {"batchItemFailures": [{"itemIdentifier": "not-in-batch" if outcome == "unknown_id" else ""}]}

    mapping = EventSourceMapping(queue, handler, sqs=aws.sqs)
    mapping.poll_once(wait=0)
    assert queue_counts(aws.sqs, queue)["in_flight"] == 2
    assert mapping.failed_records == 2


def test_sqs_moves_a_record_to_the_dlq_after_max_receives_when_it_keeps_failing(aws, queue):
    send(aws, queue, "poison", "fine")

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "batchItemFailures": [
                {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "poison"
            ]
        }

    mapping = EventSourceMapping(queue, handler, sqs=aws.sqs)
    drain([mapping], timeout=20)
    dead = aws.sqs.receive_message(QueueUrl=aws.queues["stora-dlq"], MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]
    assert sum(queue_counts(aws.sqs, queue).values()) == 0


def test_drain_waits_for_started_pollers_until_nothing_is_left(aws, queue):
    send(aws, queue, *[f"m{i}" for i in range(25)])
    bodies: list[str] = []
    mapping = EventSourceMapping(
        queue,
        lambda e, c: bodies.extend(r["body"] for r in e["Records"]),
        sqs=aws.sqs,
        concurrency=2,
        poll_wait=0,
    )
    with mapping:
        drain([mapping], timeout=20)
    assert sorted(bodies) == sorted(f"m{i}" for i in range(25))
    assert not mapping.running
