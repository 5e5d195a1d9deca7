"""`dlq.redrive` against moto SQS: dead letters move back ten at a time, a message its queue
refuses stays in the DLQ, a filter moves only the letters it matches (the others stay, visible),
and a dry run moves none."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from delivery_harness import enqueue
from timeline_bridge.models import DeliveryJob
from timeline_bridge_tools import dlq


def dead_jobs(count: int) -> list[DeliveryJob]:
    return [
        DeliveryJob(
            key=f"tb-redrive-{i:03d}",
            target="stora",
            mapping="m",
            mapping_file="mappings/m.yaml",
            source="hubspot",
            event_id=str(i),
            event_type="deal.propertyChange",
            occurred_at=None,
            body={"description": f"event {i}"},
            attempts=3,
            retries=3,
            dead_letter={"reason": "retries_exhausted", "stage": "deliver"},
        )
        for i in range(count)
    ]


def counted(call: Any, name: str, calls: list[str]) -> Any:
    def wrapped(**kwargs: Any) -> Any:
        calls.append(name)
        return call(**kwargs)

    return wrapped


def stora_pair(aws: Any) -> dlq.QueuePair:
    return dlq.QueuePair("stora", aws.queues["stora"], aws.queues["stora-dlq"])


def test_every_dead_letter_is_moved_in_batches_when_the_dlq_is_redriven(aws, monkeypatch):
    jobs = dead_jobs(25)
    enqueue(aws.sqs, aws.queues["stora-dlq"], [j.to_json() for j in jobs])
    calls: list[str] = []
    for name in ("send_message", "send_message_batch", "delete_message", "delete_message_batch"):
        monkeypatch.setattr(aws.sqs, name, counted(getattr(aws.sqs, name), name, calls))

    report = dlq.redrive(stora_pair(aws), {}, sqs=aws.sqs)

    assert (report.moved, report.failed) == (25, 0)
    assert calls.count("send_message_batch") == 3 and calls.count("delete_message_batch") == 3
    assert "send_message" not in calls and "delete_message" not in calls
    moved = [DeliveryJob(**body) for body in aws.receive("stora")]
    assert sorted(j.key for j in moved) == [j.key for j in jobs]
    assert {(j.retries, j.redrives, j.dead_letter) for j in moved} == {(0, 1, None)}
    assert aws.count("stora-dlq") == 0


def test_a_dead_letter_its_queue_refuses_stays_in_the_dlq_when_the_others_move(aws, monkeypatch):
    jobs = dead_jobs(4)
    enqueue(aws.sqs, aws.queues["stora-dlq"], [j.to_json() for j in jobs])
    real = aws.sqs.send_message_batch

    def refuse_the_second(**kwargs: Any) -> Any:
        refused = [e for e in kwargs["Entries"] if jobs[1].key in e["MessageBody"]]
        answer = real(**{**kwargs, "Entries": [e for e in kwargs["Entries"] if e not in refused]})
        failed = [
            {"Id": e["Id"], "Code": "InternalError", "Message": "x", "SenderFault": False} for e in refused
        ]
        return {**answer, "Failed": [*answer.get("Failed", []), *failed]}

    monkeypatch.setattr(aws.sqs, "send_message_batch", refuse_the_second)
    report = dlq.redrive(stora_pair(aws), {}, sqs=aws.sqs, limit=4)

    assert (report.moved, report.failed) == (3, 1)
    assert report.errors and report.errors[0].endswith("not accepted by " + aws.queues["stora"])
    assert sorted(DeliveryJob(**b).key for b in aws.receive("stora")) == [
        jobs[0].key,
        jobs[2].key,
        jobs[3].key,
    ]
    assert aws.count("stora-dlq") == 1  # still there (in flight until its visibility ends), not lost


# --- filters and dry runs ----------------------------------------------------------------------


def failed_job(key: str, mapping: str, *, hours_ago: float = 1, **reason: Any) -> DeliveryJob:
    at = (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat(timespec="milliseconds")
    return DeliveryJob(
        key=key,
        target="stora",
        mapping=mapping,
        mapping_file=f"mappings/{mapping}.yaml",
        source="pipedrive",
        event_id=key,
        event_type="change.deal",
        occurred_at=None,
        body={"description": key},
        attempts=1,
        dead_letter={
            "reason": "permanent_failure",
            "stage": "deliver",
            "status": 422,
            "provider_code": "invalid_content",
            "mapping": mapping,
            "dead_lettered_at": at.replace("+00:00", "Z"),
            **reason,
        },
    )


def mixed_dlq(aws: Any) -> dict[str, list[DeliveryJob]]:
    """Stora's DLQ with 12 letters of one mapping, 13 of another (a 404, failed three days ago),
    and one message nobody can read."""
    jobs = {
        "stage": [failed_job(f"tb-stage-{i:02d}", "pipedrive-deal-stage-to-stora") for i in range(12)],
        "won": [
            failed_job(
                f"tb-won-{i:02d}",
                "pipedrive-deal-won-to-stora",
                hours_ago=72,
                status=404,
                provider_code="not_found",
            )
            for i in range(13)
        ],
    }
    enqueue(aws.sqs, aws.queues["stora-dlq"], [j.to_json() for group in jobs.values() for j in group])
    enqueue(aws.sqs, aws.queues["stora-dlq"], ["{not json"])
    return jobs


def visible(aws: Any, queue: str) -> tuple[int, int]:
    """(visible, in flight) messages on `queue`."""
    attrs = aws.sqs.get_queue_attributes(
        QueueUrl=aws.queues[queue],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def dlq_keys(aws: Any) -> list[str]:
    """Take every message off Stora's DLQ; returns the job keys (a message that is no job: its body)."""
    keys: list[str] = []
    while True:
        messages = aws.sqs.receive_message(
            QueueUrl=aws.queues["stora-dlq"], MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        if not messages:
            return sorted(keys)
        for message in messages:
            keys.append(dlq.DeadLetter("stora", "", "", message["Body"]).summary()["key"] or message["Body"])
            aws.sqs.delete_message(QueueUrl=aws.queues["stora-dlq"], ReceiptHandle=message["ReceiptHandle"])


def test_only_the_mappings_letters_move_and_the_others_stay_visible_when_redriven_by_mapping(
    aws, monkeypatch
):
    jobs = mixed_dlq(aws)
    calls: list[str] = []
    monkeypatch.setattr(aws.sqs, "receive_message", counted(aws.sqs.receive_message, "receive", calls))

    where = dlq.DeadLetterFilter(mapping="pipedrive-deal-stage-to-stora")
    report = dlq.redrive(stora_pair(aws), {}, sqs=aws.sqs, where=where)

    assert (report.moved, report.failed, report.skipped) == (12, 0, 14)
    assert len(calls) <= 4  # 26 letters, read once each, ten at a time
    assert sorted(DeliveryJob(**b).key for b in aws.receive("stora")) == [j.key for j in jobs["stage"]]
    assert visible(aws, "stora-dlq") == (14, 0)
    assert dlq_keys(aws) == sorted(["{not json", *(j.key for j in jobs["won"])])


@pytest.mark.parametrize(
    "where",
    [
        dlq.DeadLetterFilter(code="not_found"),
        dlq.DeadLetterFilter(status=404),
        dlq.DeadLetterFilter(mapping="pipedrive-deal-won-to-stora", code="NOT_FOUND", status=404),
    ],
)
def test_only_the_letters_with_that_answer_move_when_redriven_by_code_or_status(aws, where):
    jobs = mixed_dlq(aws)

    report = dlq.redrive(stora_pair(aws), {}, sqs=aws.sqs, where=where)

    assert (report.moved, report.skipped) == (13, 13)
    assert sorted(DeliveryJob(**b).key for b in aws.receive("stora")) == [j.key for j in jobs["won"]]
    assert visible(aws, "stora-dlq") == (13, 0)


def test_only_recent_letters_move_when_redriven_since_a_duration(aws):
    jobs = mixed_dlq(aws)

    report = dlq.redrive(
        stora_pair(aws), {}, sqs=aws.sqs, where=dlq.DeadLetterFilter(since=dlq.parse_since("1d"))
    )

    assert (report.moved, report.skipped) == (12, 14)
    assert sorted(DeliveryJob(**b).key for b in aws.receive("stora")) == [j.key for j in jobs["stage"]]
    assert visible(aws, "stora-dlq") == (14, 0)


def test_a_filtered_redrive_stops_at_the_limit_and_leaves_the_rest_visible_when_given_one(aws):
    mixed_dlq(aws)

    where = dlq.DeadLetterFilter(mapping="pipedrive-deal-stage-to-stora")
    report = dlq.redrive(stora_pair(aws), {}, sqs=aws.sqs, where=where, limit=5)

    assert report.moved == 5
    assert len(aws.receive("stora")) == 5
    assert visible(aws, "stora-dlq") == (21, 0)


def test_nothing_moves_and_every_letter_is_visible_again_when_the_redrive_is_a_dry_run(aws):
    mixed_dlq(aws)
    route_letter = failed_job(
        "tb-route", "pipedrive-deal-stage-to-stora", reason="mapping_error", stage="route"
    )
    route_letter.dead_letter = {**(route_letter.dead_letter or {}), "envelope": {"source": "pipedrive"}}
    enqueue(aws.sqs, aws.queues["stora-dlq"], [route_letter.to_json()])
    pairs = {"events": dlq.QueuePair("events", aws.queues["events"], aws.queues["events-dlq"])}

    where = dlq.DeadLetterFilter(mapping="pipedrive-deal-stage-to-stora")
    report = dlq.redrive(stora_pair(aws), pairs, sqs=aws.sqs, where=where, dry_run=True)
    everything = dlq.redrive(stora_pair(aws), {}, sqs=aws.sqs, dry_run=True)

    assert (report.moved, report.to_events, report.failed, report.skipped, report.dry_run) == (
        13,
        1,
        0,
        14,
        True,
    )
    # Without the events queue the route-stage letter has nowhere to go: counted as failing.
    assert (everything.moved, everything.failed, everything.skipped) == (26, 1, 0)
    assert aws.count("stora") == 0 and aws.count("events") == 0
    assert visible(aws, "stora-dlq") == (27, 0)


def test_the_cli_prints_per_queue_counts_and_exits_0_when_redriving_with_a_filter(
    aws, capsys, monkeypatch, tmp_path
):
    from timeline_bridge_tools.cli import main

    jobs = mixed_dlq(aws)
    monkeypatch.chdir(tmp_path)
    filtered = ["dlq", "redrive", "--target", "stora", "--mapping", "pipedrive-deal-stage-to-stora"]

    assert main(["dlq", "list", "--target", "stora", "--status", "404", "--since", "7d"]) == 0
    listing = capsys.readouterr().out
    assert "stora: 26 dead letter(s), 13 matching" in listing
    assert "tb-won-00" in listing and "tb-stage-00" not in listing

    assert main([*filtered, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "stora: would move 12, failed 0, skipped 14 (not matching)" in out
    assert "dry run: nothing moved" in out
    assert visible(aws, "stora-dlq") == (26, 0)

    assert main([*filtered, "--json"]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert (report["queue"], report["moved"], report["skipped"], report["dry_run"]) == (
        "stora",
        12,
        14,
        False,
    )
    assert sorted(DeliveryJob(**b).key for b in aws.receive("stora")) == [j.key for j in jobs["stage"]]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dlq", "redrive", "--since", "yesterday"], "argument --since"),
        (["dlq", "list", "--since", "0h"], "argument --since"),
        (["dlq", "redrive", "--status", "abc"], "argument --status"),
    ],
)
def test_the_cli_refuses_a_bad_value_when_given_one(aws, capsys, argv, message):
    from timeline_bridge_tools.cli import main

    mixed_dlq(aws)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
    assert aws.count("stora") == 0 and visible(aws, "stora-dlq") == (26, 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["dlq", "list", "--dry-run"], "--dry-run applies to redrive"),
        (["dlq", "show", "tb-stage-00", "--mapping", "x"], "--since apply to list and redrive"),
    ],
)
def test_the_cli_refuses_an_option_when_the_action_does_not_take_it(aws, capsys, argv, message):
    from timeline_bridge_tools.cli import main

    assert main(argv) == 2
    assert message in capsys.readouterr().err
