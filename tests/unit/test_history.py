"""Event history against moto S3, SQS and DynamoDB: each job's state from the archive, the
delivered-records and the DLQs; the partitions a window reads; `bridge events`; the `--since`
parser."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge.archive import ArchivedEvent, ArchivedJob, EventArchive
from timeline_bridge.delivery.records import DeliveredRecords
from timeline_bridge.mapping.loader import load_mappings
from timeline_bridge.models import DeliveryJob, Envelope, utc_now_iso
from timeline_bridge_tools import history
from timeline_bridge_tools.cli import main
from timeline_bridge_tools.history import EventFilter, History, Window, parse_when

FAULT_MAPPINGS = Path(__file__).resolve().parent.parent / "integration" / "fault_mappings"
BUCKET = "timeline-bridge-test-history"


@pytest.fixture
def archive(aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> EventArchive:
    """An archive bucket, named where the tools look for it; the tests run in an empty folder, so
    no `bridge dev` of the working tree is found."""
    import boto3

    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    monkeypatch.setenv("EVENTS_ARCHIVE_BUCKET", BUCKET)
    monkeypatch.chdir(tmp_path)
    return EventArchive(BUCKET, s3)


def ago(minutes: float) -> str:
    return (
        (datetime.now(UTC) - timedelta(minutes=minutes))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def envelope(event_id: str, *, source: str = "hubspot", minutes_ago: float = 5, **changes: Any) -> Envelope:
    fields: dict[str, Any] = {
        "source": source,
        "event_type": "deal.propertyChange",
        "event_id": event_id,
        "occurred_at": None,
        "received_at": ago(minutes_ago),
        "event": {"objectId": event_id},
    }
    fields.update(changes)
    return Envelope(**fields)


def archived(
    env: Envelope, jobs: Sequence[ArchivedJob] = (), dead: Sequence[ArchivedJob] = ()
) -> ArchivedEvent:
    return ArchivedEvent(env, utc_now_iso(), list(jobs), list(dead))


def deliver(aws: Any, target: str, key: str, result: dict[str, Any]) -> None:
    records = DeliveredRecords(aws.table, target, dynamodb=aws.dynamodb)
    data = {"key": key, "body": {"any": "body"}}
    records.claim(data, 30_000)
    records.complete(data, result)


def dead_letter(aws: Any, target: str, key: str, **reason: Any) -> None:
    job = DeliveryJob(
        key=key,
        target=target,
        mapping="m",
        mapping_file="mappings/m.yaml",
        source="hubspot",
        event_id="x",
        event_type="deal.propertyChange",
        occurred_at=None,
        body={},
        attempts=reason.get("attempts", 1),
        dead_letter=reason,
    )
    aws.sqs.send_message(QueueUrl=aws.queues[f"{target}-dlq"], MessageBody=job.to_json())


def last_hour() -> EventFilter:
    return EventFilter(Window.of("1h"))


def test_history_shows_a_dead_lettered_job_with_its_reason_and_a_delivered_one_with_its_provider_id(
    aws, archive
):
    event = envelope("deal-1")
    archive.write(
        [
            archived(
                event,
                [
                    ArchivedJob("to-stora", "stora", "tb-stora-1"),
                    ArchivedJob("to-hubspot", "hubspot", "tb-hs-1"),
                ],
            )
        ]
    )
    deliver(
        aws,
        "stora",
        "tb-stora-1",
        {"provider_id": "evt_123", "status": 201, "attempts": 3, "delivered_at": "2026-12-02T14:00:00.000Z"},
    )
    dead_letter(
        aws,
        "hubspot",
        "tb-hs-1",
        reason="permanent_failure",
        stage="deliver",
        status=400,
        provider_code="VALIDATION_ERROR",
        provider_message="property dealname is required",
        attempts=1,
        dead_lettered_at="2026-12-02T14:01:00.000Z",
    )

    [found] = History(history.local_deployment()).events(last_hour())

    assert found.status == "dead"
    stora, hubspot = found.jobs
    assert (stora.state, stora.provider_id, stora.attempts, stora.status) == ("delivered", "evt_123", 3, 201)
    assert stora.delivered_at == "2026-12-02T14:00:00.000Z"
    assert hubspot.state == "dead" and hubspot.reason is not None
    assert hubspot.reason["reason"] == "permanent_failure"
    assert hubspot.reason["provider_message"] == "property dealname is required"
    assert (hubspot.status, hubspot.attempts) == (400, 1)


def test_each_event_status_follows_from_its_jobs(aws, archive):
    archive.write(
        [
            archived(envelope("delivered"), [ArchivedJob("m", "stora", "tb-d")]),
            archived(envelope("pending"), [ArchivedJob("m", "stora", "tb-p")]),
            archived(
                envelope("route-dead"), dead=[ArchivedJob("m", "matter", "tb-r", reason="mapping_error")]
            ),
            archived(envelope("unmatched")),
            archived(envelope("too-old", minutes_ago=90)),
        ]
    )
    deliver(aws, "stora", "tb-d", {"provider_id": "p", "status": 201})
    found = {e.envelope.event_id: e for e in History(history.local_deployment()).events(last_hour())}

    assert {k: e.status for k, e in found.items()} == {
        "delivered": "delivered",
        "pending": "pending",
        "route-dead": "dead",
        "unmatched": "unmatched",
    }
    assert found["route-dead"].jobs[0].reason == {"reason": "mapping_error", "stage": "route"}
    listed = History(history.local_deployment()).events(last_hour(), status="pending")
    assert [e.envelope.event_id for e in listed] == ["pending"]


def test_an_event_is_found_by_its_id_or_by_one_of_its_job_keys(aws, archive):
    archive.write(
        [archived(envelope("deal-7"), [ArchivedJob("m", "stora", "tb-key-7")]), archived(envelope("deal-8"))]
    )
    found = History(history.local_deployment())
    assert [e.envelope.event_id for e in found.find("deal-7", last_hour())] == ["deal-7"]
    assert [e.envelope.event_id for e in found.find("tb-key-7", last_hour())] == ["deal-7"]
    assert found.find("tb-unknown", last_hour()) == []


def test_a_job_a_replay_made_through_a_new_mapping_is_found_by_its_key(aws, archive):
    mappings = load_mappings(FAULT_MAPPINGS)
    event = envelope(
        "in_7",
        source="generic",
        name="billing",
        event_type="invoice.paid",
        event={"type": "invoice.paid", "timestamp": ago(5), "data": {"invoice_id": "in_7"}},
    )
    archive.write([archived(event)])  # no mapping wanted it when it came
    mapping = mappings.get("fault-generic-invoice-to-matter")
    deliver(aws, "matter", mapping.key(event), {"provider_id": "mat_1", "status": 201, "attempts": 1})

    [found] = History(history.local_deployment(), mappings=mappings).events(last_hour())
    assert found.status == "delivered"
    assert [(j.mapping, j.state, j.provider_id, j.archived) for j in found.jobs] == [
        ("fault-generic-invoice-to-matter", "delivered", "mat_1", False)
    ]


def test_events_list_with_status_unmatched_lists_the_unmatched_event(aws, archive, capsys):
    archive.write(
        [
            archived(
                envelope("nobody-wants-me", source="generic", name="billing", event_type="thing.happened")
            ),
            archived(envelope("routed"), [ArchivedJob("m", "stora", "tb-routed")]),
        ]
    )
    code = main(
        [
            "events",
            "list",
            "--since",
            "30m",
            "--status",
            "unmatched",
            "--json",
            "--mappings",
            str(FAULT_MAPPINGS),
        ]
    )
    listed = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(e["event_id"], e["status"], e["jobs"]) for e in listed] == [("nobody-wants-me", "unmatched", [])]

    assert main(["events", "list", "--since", "30m", "--mappings", str(FAULT_MAPPINGS)]) == 0
    table = capsys.readouterr().out
    assert "nobody-wants-me" in table and "unmatched" in table and "m: pending" in table


def test_events_show_names_each_job_and_its_outcome(aws, archive, capsys):
    archive.write([archived(envelope("deal-9"), [ArchivedJob("to-stora", "stora", "tb-9")])])
    deliver(aws, "stora", "tb-9", {"provider_id": "evt_9", "status": 201, "attempts": 1})
    assert main(["events", "show", "tb-9", "--mappings", str(FAULT_MAPPINGS)]) == 0
    shown = capsys.readouterr().out
    assert "deal-9" in shown and "to-stora → stora" in shown and "provider id evt_9" in shown
    assert main(["events", "show", "no-such-event", "--mappings", str(FAULT_MAPPINGS)]) == 1


def test_a_window_lists_only_its_own_partitions():
    window = Window(datetime(2026, 12, 2, 10, 30, tzinfo=UTC), datetime(2026, 12, 2, 12, 10, tzinfo=UTC))
    assert window.prefixes() == [
        "events/date=2026-12-02/hour=10/",
        "events/date=2026-12-02/hour=11/",
        "events/date=2026-12-02/hour=12/",
    ]
    assert window.prefixes("slack")[0] == "events/date=2026-12-02/hour=10/source=slack/"
    days = Window(datetime(2026, 11, 30, 23, 0, tzinfo=UTC), datetime(2026, 12, 2, 0, 30, tzinfo=UTC))
    assert days.prefixes() == [
        "events/date=2026-11-30/hour=23/",
        "events/date=2026-12-01/",  # a whole day: one listing
        "events/date=2026-12-02/hour=00/",
    ]
    assert window.holds_partition("events/date=2026-12-02/hour=10/source=slack/x.jsonl.gz", "slack")
    assert not window.holds_partition("events/date=2026-12-02/hour=10/source=slack/x.jsonl.gz", "hubspot")
    assert not window.holds_partition("events/date=2026-12-02/hour=13/source=slack/x.jsonl.gz", None)


NOW = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", NOW - timedelta(minutes=10)),
        ("2h", NOW - timedelta(hours=2)),
        ("3d", NOW - timedelta(days=3)),
        ("2026-12-01T09:30:00Z", datetime(2026, 12, 1, 9, 30, tzinfo=UTC)),
        ("2026-12-01T10:30:00+01:00", datetime(2026, 12, 1, 9, 30, tzinfo=UTC)),
        ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
    ],
)
def test_since_and_until_take_a_duration_or_an_iso_time(text, expected):
    assert parse_when(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "10", "-2h", "0m", ""])
def test_since_refuses_anything_else(text):
    with pytest.raises(ValueError):
        parse_when(text, now=NOW)


def test_a_window_that_ends_before_it_starts_is_refused():
    with pytest.raises(ValueError, match="before"):
        Window.of("1h", "2h", now=NOW)
    assert Window.of("2h", "1h", now=NOW) == Window(NOW - timedelta(hours=2), NOW - timedelta(hours=1))
