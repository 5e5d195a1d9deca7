"""Where `bridge dlq redrive` sends each kind of dead letter, where it finds the queues, and which
dead letters a filter picks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from timeline_bridge.models import DeliveryJob
from timeline_bridge_tools.dlq import (
    DeadLetter,
    DeadLetterFilter,
    QueuePair,
    destination,
    parse_since,
    stack_queues,
)

PAIRS = {
    "stora": QueuePair("stora", "https://sqs/stora", "https://sqs/stora-dlq"),
    "events": QueuePair("events", "https://sqs/events", "https://sqs/events-dlq"),
}


def dead_job(**dead_letter: Any) -> DeliveryJob:
    return DeliveryJob(
        key="tb-1",
        target="stora",
        mapping="m",
        mapping_file="mappings/m.yaml",
        source="hubspot",
        event_id="1",
        event_type="deal.propertyChange",
        occurred_at=None,
        body={"description": "x"},
        attempts=5,
        first_failure_at="2026-11-23T09:00:00.000Z",
        last_failure_at="2026-11-23T09:30:00.000Z",
        key_generation=2,
        not_before="2026-11-23T09:31:00.000Z",
        retries=5,
        throttled=7,
        dead_letter=dead_letter or None,
    )


def letter(queue: str, body: str) -> DeadLetter:
    return DeadLetter(queue=queue, message_id="m-1", receipt_handle="rh", body=body)


def test_a_dead_delivery_job_goes_back_to_its_queue_with_a_fresh_budget_and_its_history():
    url, body, kind = destination(
        letter("stora", dead_job(reason="retries_exhausted").to_json()), PAIRS["stora"], PAIRS
    )
    job = DeliveryJob.from_json(body)
    assert (url, kind) == ("https://sqs/stora", "delivery")
    assert (job.retries, job.throttled, job.not_before, job.dead_letter) == (0, 0, None, None)
    assert (job.attempts, job.first_failure_at, job.key_generation, job.redrives) == (
        5,
        "2026-11-23T09:00:00.000Z",
        2,
        1,
    )


def test_a_route_stage_dead_letter_is_routed_again_from_its_envelope():
    envelope = {
        "source": "hubspot",
        "event_type": "deal.propertyChange",
        "event_id": "1",
        "occurred_at": None,
        "received_at": "2026-11-23T09:00:00Z",
        "event": {"objectId": 1},
        "name": None,
    }
    body = dead_job(reason="mapping_error", stage="route", envelope=envelope).to_json()
    url, sent, kind = destination(letter("stora", body), PAIRS["stora"], PAIRS)
    assert (url, kind, json.loads(sent)) == ("https://sqs/events", "events", envelope)


@pytest.mark.parametrize(
    ("queue", "body"),
    [
        ("stora", "{not json"),
        ("stora", "[1, 2]"),
        ("stora", '{"key": "tb-x"}'),
        ("events", '{"source": "slack"}'),
    ],
)
def test_anything_else_goes_back_unchanged(queue, body):
    assert destination(letter(queue, body), PAIRS[queue], PAIRS) == (PAIRS[queue].queue_url, body, "as_is")


class FakeCloudFormation:
    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        return {
            "Stacks": [
                {
                    "StackName": StackName,
                    "Outputs": [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()],
                }
            ]
        }


def test_queue_urls_come_from_the_stack_outputs_when_a_stack_is_named():
    outputs = {
        "StoraDeliveryQueueUrl": "q",
        "StoraDeliveryDeadLetterQueueUrl": "d",
        "EventsQueueUrl": "e",
        "EventsDeadLetterQueueUrl": "ed",
    }
    pairs = stack_queues("prod", FakeCloudFormation(outputs))
    assert pairs == {"stora": QueuePair("stora", "q", "d"), "events": QueuePair("events", "e", "ed")}
    with pytest.raises(RuntimeError):
        stack_queues("other", FakeCloudFormation({}))


# --- filters -----------------------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
DELIVERY = letter(
    "stora",
    dead_job(
        reason="permanent_failure",
        stage="deliver",
        status=422,
        provider_code="invalid_content",
        dead_lettered_at="2026-11-23T11:00:00.000Z",
    ).to_json(),
)
ROUTE = letter(
    "stora",
    dead_job(
        reason="mapping_error",
        stage="route",
        field="body.contact",
        at="2026-11-20T09:00:00.000Z",
        envelope={},
    ).to_json(),
)
EVENTS_LETTER = letter("events", '{"source": "slack", "event_type": "block_actions", "event_id": "e-1"}')
UNREADABLE = letter("stora", "{not json")


@pytest.mark.parametrize(
    ("where", "matched"),
    [
        (DeadLetterFilter(), {"delivery", "route", "events", "unreadable"}),
        (DeadLetterFilter(mapping="m"), {"delivery", "route"}),
        (DeadLetterFilter(mapping="other"), set()),
        (DeadLetterFilter(code="INVALID_CONTENT"), {"delivery"}),
        (DeadLetterFilter(code="permanent_failure"), {"delivery"}),
        (DeadLetterFilter(code="mapping_error"), {"route"}),
        (DeadLetterFilter(code="body.contact"), set()),
        (DeadLetterFilter(code="unreadable"), {"unreadable"}),
        (DeadLetterFilter(status=422), {"delivery"}),
        (DeadLetterFilter(status=500), set()),
        (DeadLetterFilter(since=NOW - timedelta(hours=2)), {"delivery"}),
        (DeadLetterFilter(since=NOW - timedelta(days=7)), {"delivery", "route"}),
        (DeadLetterFilter(mapping="m", status=422, since=NOW - timedelta(hours=2)), {"delivery"}),
        (DeadLetterFilter(mapping="m", status=404), set()),
    ],
)
def test_a_filter_matches_only_the_dead_letters_carrying_every_field_it_names(where, matched):
    letters = {"delivery": DELIVERY, "route": ROUTE, "events": EVENTS_LETTER, "unreadable": UNREADABLE}
    assert {name for name, dl in letters.items() if where.matches(dl)} == matched


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("2h", NOW - timedelta(hours=2)),
        ("7d", NOW - timedelta(days=7)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2w", NOW - timedelta(weeks=2)),
        ("2026-11-23T09:00:00Z", datetime(2026, 11, 23, 9, tzinfo=UTC)),
        ("2026-11-23T10:00:00+01:00", datetime(2026, 11, 23, 9, tzinfo=UTC)),
        ("2026-11-23T09:00", datetime(2026, 11, 23, 9, tzinfo=UTC)),  # no zone: UTC
        ("2026-11-23", datetime(2026, 11, 23, tzinfo=UTC)),
    ],
)
def test_since_is_a_time_or_a_duration_back_from_now_when_parsed(text, expected):
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2 hours", "0m", "-2h", "3y", "2026-13-01"])
def test_since_is_refused_when_it_is_neither_a_time_nor_a_duration(text):
    with pytest.raises(ValueError):
        parse_since(text, now=NOW)
