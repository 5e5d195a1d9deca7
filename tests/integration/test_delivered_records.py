"""The delivered-records of one provider request, written together (BatchWriteItem) against moto
DynamoDB: what Powertools reads back, and the one-by-one fallback."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError
from timeline_bridge.delivery import MIN_RECORD_TTL, ClaimState, DeliveredRecords


def records_for(aws: Any) -> DeliveredRecords:
    return DeliveredRecords(aws.table, "hubspot", dynamodb=aws.dynamodb)


def datas(count: int, run: str) -> list[dict[str, Any]]:
    return [
        {"key": f"tb-{run}-{i:04d}", "body": {"objectId": str(i), "tokens": {"n": i}}} for i in range(count)
    ]


def claimed(records: DeliveredRecords, items: list[dict[str, Any]]) -> list[ClaimState]:
    return [records.claim(d, 30_000).state for d in items]


def table_item(aws: Any, records: DeliveredRecords, data: dict[str, Any]) -> dict[str, Any]:
    key = records.layer._get_key(records.layer._get_hashed_idempotency_key(data=data))
    return aws.dynamodb.get_item(TableName=aws.table, Key=key)["Item"]


def test_records_written_together_read_as_delivered_when_one_request_carried_many_jobs(aws):
    records = records_for(aws)
    items = datas(60, "together")  # more than one BatchWriteItem (25 each)
    assert claimed(records, items) == [ClaimState.CLAIMED] * 60
    records.complete_many([(d, {"provider_id": f"p-{i}", "status": 201}) for i, d in enumerate(items)])

    assert claimed(records, items) == [ClaimState.DELIVERED] * 60  # never sent again
    changed = {**items[0], "body": {"objectId": "0", "tokens": {"n": "other"}}}
    assert records.claim(changed, 30_000).state is ClaimState.MISMATCH  # payload validation holds
    record = records.layer.get_record(data=items[7])
    assert record.status == "COMPLETED" and json.loads(record.response_data) == {
        "provider_id": "p-7",
        "status": 201,
    }
    item = table_item(aws, records, items[7])
    assert int(item["expiration"]["N"]) >= time.time() + MIN_RECORD_TTL - 60


def test_a_record_written_together_matches_the_one_powertools_writes_when_completed_alone(aws):
    records = records_for(aws)
    alone, together = datas(2, "same-shape")
    for data in (alone, together):
        records.claim(data, 30_000)
    result = {"provider_id": "p", "status": 201}
    records.complete(alone, result)
    records.complete_many([(together, result)])
    one, other = table_item(aws, records, alone), table_item(aws, records, together)
    shape = {name for name in one if name != "in_progress_expiration"}  # left over by UpdateItem
    assert set(other) == shape
    for name in ("status", "data"):
        assert one[name] == other[name]
    assert abs(int(one["expiration"]["N"]) - int(other["expiration"]["N"])) <= 2


def test_claims_released_together_can_be_claimed_again_when_a_request_failed(aws):
    records = records_for(aws)
    items = datas(30, "released")
    claimed(records, items)
    assert claimed(records, items) == [ClaimState.BUSY] * 30
    records.release_many(items, RuntimeError("503 from the provider"))
    assert claimed(records, items) == [ClaimState.CLAIMED] * 30


def test_records_are_completed_one_by_one_when_the_batch_write_fails(aws, monkeypatch):
    records = records_for(aws)
    items = datas(5, "fallback")
    claimed(records, items)

    def refuse(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "BatchWriteItem")

    monkeypatch.setattr(records.layer.client, "batch_write_item", refuse)
    records.complete_many([(d, {"provider_id": "p", "status": 201}) for d in items])
    assert claimed(records, items) == [ClaimState.DELIVERED] * 5


def test_unprocessed_writes_are_retried_when_dynamodb_throttles_part_of_the_batch(aws, monkeypatch):
    records = records_for(aws)
    items = datas(10, "unprocessed")
    claimed(records, items)
    real = records.layer.client.batch_write_item
    calls: list[int] = []

    def throttle_the_last(**kwargs: Any) -> Any:
        [(table, requests)] = kwargs["RequestItems"].items()
        calls.append(len(requests))
        if len(calls) == 1:  # DynamoDB took all but the last one
            real(RequestItems={table: requests[:-1]})
            return {"UnprocessedItems": {table: requests[-1:]}}
        return real(**kwargs)

    monkeypatch.setattr(records.layer.client, "batch_write_item", throttle_the_last)
    records.complete_many([(d, {"provider_id": "p", "status": 201}) for d in items])
    assert calls == [10, 1]
    assert claimed(records, items) == [ClaimState.DELIVERED] * 10


def test_completion_raises_when_a_record_cannot_be_written_at_all(aws, monkeypatch):
    records = records_for(aws)
    [data] = datas(1, "down")
    records.claim(data, 30_000)

    def down(**kwargs: Any) -> Any:
        raise ClientError({"Error": {"Code": "InternalServerError", "Message": "injected"}}, "Write")

    monkeypatch.setattr(records.layer.client, "batch_write_item", down)
    monkeypatch.setattr(records.layer.client, "update_item", down)
    with pytest.raises(RuntimeError, match="1 of 1 delivered-record"):
        records.complete_many([(data, {"provider_id": "p", "status": 201})])
