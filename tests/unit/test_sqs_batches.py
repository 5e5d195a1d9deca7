"""`aws.send_message_batches`: ten messages and 256 KiB per SendMessageBatch, failures by position."""

from __future__ import annotations

from typing import Any

from timeline_bridge.aws import SQS_BATCH_BYTES, send_message_batches


class FakeSqs:
    """Records every SendMessageBatch; refuses the entries whose body is in `refuse`."""

    def __init__(self, refuse: frozenset[str] = frozenset(), down: bool = False) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.refuse = refuse
        self.down = down

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        if self.down:
            raise ConnectionError("endpoint unreachable")
        failed = [
            {"Id": e["Id"], "Code": "InternalError", "Message": "x"}
            for e in Entries
            if e["MessageBody"] in self.refuse
        ]
        return {"Successful": [], "Failed": failed}


def test_messages_go_ten_per_call_when_they_are_small() -> None:
    sqs = FakeSqs()
    assert send_message_batches(sqs, "q", [{"MessageBody": f"m{i}"} for i in range(23)]) == []
    assert [len(c) for c in sqs.calls] == [10, 10, 3]
    assert [e["Id"] for e in sqs.calls[2]] == ["0", "1", "2"]  # ids are unique within each call


def test_a_call_never_carries_more_than_256_kib_when_messages_are_large() -> None:
    sqs = FakeSqs()
    big = "x" * 100_000
    entries = [
        {"MessageBody": big, "MessageAttributes": {"target": {"DataType": "String", "StringValue": "stora"}}}
        for _ in range(5)
    ]
    assert send_message_batches(sqs, "q", entries) == []
    assert [len(c) for c in sqs.calls] == [2, 2, 1]
    for call in sqs.calls:
        assert sum(len(e["MessageBody"]) for e in call) <= SQS_BATCH_BYTES


def test_refused_messages_are_reported_by_position_when_sqs_fails_part_of_a_call() -> None:
    sqs = FakeSqs(refuse=frozenset({"m3", "m12"}))
    assert send_message_batches(sqs, "q", [{"MessageBody": f"m{i}"} for i in range(15)]) == [3, 12]


def test_every_message_of_a_call_is_reported_when_the_call_fails() -> None:
    sqs = FakeSqs(down=True)
    assert send_message_batches(sqs, "q", [{"MessageBody": f"m{i}"} for i in range(12)]) == list(range(12))
