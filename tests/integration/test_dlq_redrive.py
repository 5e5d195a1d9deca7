"""`dlq.redrive` against moto SQS: dead letters move back ten at a time, and a message its queue
refuses stays in the DLQ."""

from __future__ import annotations

from typing import Any

from delivery_harness import enqueue
from timeline_bridge import dlq
from timeline_bridge.models import DeliveryJob


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
