"""The claim store against moto DynamoDB: what each claim finds, the records' keys and shape as
Powertools reads them, and completions and releases written 25 per BatchWriteItem."""

from __future__ import annotations

import ast
import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge import claims
from timeline_bridge.claims import ClaimState, ClaimStore

# The Powertools persistence layer's documented extension points, and the store's own state.
OVERRIDES = {"_put_record", "_update_record", "_delete_record"}
OWN = {"_collected"}


def store_for(aws: Any, prefix: str = "deliver#hubspot") -> ClaimStore:
    return ClaimStore(
        aws.table,
        key_prefix=prefix,
        key_field="key",
        payload_field="body",
        expires_after_seconds=3600,
        dynamodb=aws.dynamodb,
    )


def plain_powertools(aws: Any, prefix: str = "deliver#hubspot") -> Any:
    """Powertools' own layer, configured as the store is: it must read what the store wrote."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    layer = DynamoDBPersistenceLayer(table_name=aws.table, boto3_client=aws.dynamodb)
    layer.configure(
        IdempotencyConfig(event_key_jmespath="key", payload_validation_jmespath="body"), key_prefix=prefix
    )
    return layer


def datas(count: int, run: str) -> list[dict[str, Any]]:
    return [{"key": f"tb-{run}-{i:03d}", "body": {"n": i}} for i in range(count)]


def calls_of(aws: Any, operation: str) -> list[dict[str, Any]]:
    """Every `operation` call the test's DynamoDB client makes from now on (its parameters)."""
    seen: list[dict[str, Any]] = []
    aws.dynamodb.meta.events.register(
        f"provide-client-params.dynamodb.{operation}", lambda params, **_: seen.append(dict(params))
    )
    return seen


def items(aws: Any) -> dict[str, dict[str, Any]]:
    return {i["id"]["S"]: i for i in aws.dynamodb.scan(TableName=aws.table)["Items"]}


def test_a_completed_claim_is_seen_as_completed_when_claimed_again(aws):
    store = store_for(aws)
    [data] = datas(1, "done")
    assert store.claim(data, 30_000).state is ClaimState.CLAIMED
    store.complete(data, {"provider_id": "p-1"})
    assert store.claim(data, 30_000).state is ClaimState.COMPLETED
    assert ClaimState.DELIVERED is ClaimState.DUPLICATE is ClaimState.COMPLETED  # each stage's word


def test_a_released_claim_can_be_claimed_again(aws):
    store = store_for(aws)
    [data] = datas(1, "released")
    store.claim(data, 30_000)
    store.release(data, RuntimeError("503 from the provider"))
    assert store.claim(data, 30_000).state is ClaimState.CLAIMED


def test_same_key_with_another_body_is_a_mismatch(aws):
    store = store_for(aws)
    [data] = datas(1, "mismatch")
    store.claim(data, 30_000)
    assert store.claim({**data, "body": {"n": "other"}}, 30_000).state is ClaimState.MISMATCH
    store.complete(data, {})
    assert store.claim({**data, "body": {"n": "other"}}, 30_000).state is ClaimState.MISMATCH


def test_work_without_a_key_is_no_key(aws):
    assert store_for(aws).claim({"key": None, "body": {}}, 30_000).state is ClaimState.NO_KEY


def test_another_workers_claim_is_busy_until_it_expires(aws):
    holder, other = store_for(aws), store_for(aws)
    [data] = datas(1, "busy")
    holder.claim(data, 30_000)
    claim = other.claim(data, 30_000)
    assert claim.state is ClaimState.BUSY
    assert 25.0 < claim.retry_in <= 30.5  # the holder's claim expires with its invocation


def test_a_record_is_read_with_its_status_and_result_when_the_key_was_claimed(aws):
    store = store_for(aws)
    done, claimed, never = datas(3, "read")
    for data in (done, claimed):
        store.claim(data, 30_000)
    store.complete(done, {"provider_id": "p-1", "attempts": 2})
    assert store.record(done) == ("COMPLETED", {"provider_id": "p-1", "attempts": 2})
    assert store.record(claimed) == ("INPROGRESS", {})
    assert store.record(never) is None


def test_a_store_without_a_payload_field_reads_a_record_by_its_key_alone(aws):
    [data] = datas(1, "by-key")
    store_for(aws).claim(data, 30_000)
    store_for(aws).complete(data, {"provider_id": "p-1"})
    reader = ClaimStore(
        aws.table,
        key_prefix="deliver#hubspot",
        key_field="key",
        payload_field=None,
        expires_after_seconds=3600,
        dynamodb=aws.dynamodb,
    )
    assert reader.record({"key": data["key"]}) == ("COMPLETED", {"provider_id": "p-1"})


def test_keys_and_attributes_are_the_records_written_before(aws):
    """`deliver#<target>#<md5>` and `ingest.<scope>#<md5>`: records already in the table stay valid."""
    delivered, ingested = store_for(aws), store_for(aws, prefix="ingest.hubspot")
    delivered.claim({"key": "tb-1", "body": {"n": 1}}, 30_000)
    delivered.complete_many([({"key": "tb-1", "body": {"n": 1}}, {"provider_id": "p"})])
    ingested.claim({"key": "62515:1", "body": {"eventId": 1}}, 30_000)
    md5 = {value: hashlib.md5(json.dumps(value).encode()).hexdigest() for value in ("tb-1", "62515:1")}  # noqa: S324
    stored = items(aws)
    assert set(stored) == {f"deliver#hubspot#{md5['tb-1']}", f"ingest.hubspot#{md5['62515:1']}"}
    completed = stored[f"deliver#hubspot#{md5['tb-1']}"]
    assert set(completed) == {"id", "expiration", "status", "data", "validation"}
    assert completed["status"] == {"S": "COMPLETED"}
    assert set(stored[f"ingest.hubspot#{md5['62515:1']}"]) == {
        "id",
        "expiration",
        "in_progress_expiration",
        "status",
        "validation",
    }


def test_completing_sixty_records_costs_three_batch_writes_and_powertools_reads_them(aws):
    store = store_for(aws)
    records = datas(60, "sixty")
    for data in records:
        store.claim(data, 30_000)
    batches, updates = calls_of(aws, "BatchWriteItem"), calls_of(aws, "UpdateItem")
    store.complete_many([(d, {"provider_id": f"p-{i}", "status": 201}) for i, d in enumerate(records)])

    assert [len(b["RequestItems"][aws.table]) for b in batches] == [25, 25, 10]
    assert updates == []
    powertools = plain_powertools(aws)
    for i, data in enumerate(records):
        record = powertools.get_record(data)
        assert record.status == "COMPLETED"
        assert json.loads(record.response_data) == {"provider_id": f"p-{i}", "status": 201}


def test_releasing_thirty_claims_costs_two_batch_writes(aws):
    store = store_for(aws)
    records = datas(30, "thirty")
    for data in records:
        store.claim(data, 30_000)
    batches, deletes = calls_of(aws, "BatchWriteItem"), calls_of(aws, "DeleteItem")
    store.release_many(records, RuntimeError("503 from the provider"))
    assert [len(b["RequestItems"][aws.table]) for b in batches] == [25, 5]
    assert deletes == []
    assert items(aws) == {}
    assert [store.claim(d, 30_000).state for d in records] == [ClaimState.CLAIMED] * 30


def test_a_batch_that_raises_writes_nothing(aws):
    store = store_for(aws)
    records = datas(3, "raises")
    for data in records:
        store.claim(data, 30_000)
    batches = calls_of(aws, "BatchWriteItem")
    with pytest.raises(RuntimeError, match="stop"), store.batch():
        store.complete(records[0], {})
        raise RuntimeError("stop")
    assert batches == []
    assert store.claim(records[0], 30_000).state is ClaimState.BUSY


def test_a_batch_collects_only_its_own_threads_writes(aws):
    store = store_for(aws)
    mine, theirs = datas(2, "threads")
    for data in (mine, theirs):
        store.claim(data, 30_000)
    with store.batch():
        store.complete(mine, {})
        worker = threading.Thread(target=store.complete, args=(theirs, {}))
        worker.start()
        worker.join()
        # Another thread's completion went out at once; this thread's waits for the block's end.
        assert plain_powertools(aws).get_record(theirs).status == "COMPLETED"
        assert plain_powertools(aws).get_record(mine).status == "INPROGRESS"
    assert plain_powertools(aws).get_record(mine).status == "COMPLETED"


def test_no_private_powertools_helper_is_used():
    """Only the persistence layer's documented override points: Powertools' other underscore
    helpers (`_get_hashed_idempotency_key`, `_get_key`, ...) may change in any release."""
    tree = ast.parse(Path(claims.__file__).read_text("utf-8"))
    private = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
    }
    assert private <= OVERRIDES | OWN
    assert "._get_" not in Path(claims.__file__).read_text("utf-8")


# --- stores that write once (hold_while_working=False) -----------------------------------------


def reading_store(aws: Any, *, ttl: int = 3600) -> ClaimStore:
    return ClaimStore(
        aws.table,
        key_prefix="ingest.hubspot",
        key_field="key",
        payload_field="body",
        expires_after_seconds=ttl,
        dynamodb=aws.dynamodb,
        hold_while_working=False,
    )


def writes_of(aws: Any) -> list[str]:
    """The names of the write operations the test's DynamoDB client makes from now on."""
    seen: list[str] = []
    for operation in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"):
        aws.dynamodb.meta.events.register(
            f"provide-client-params.dynamodb.{operation}", lambda op=operation, **_: seen.append(op)
        )
    return seen


def test_a_reading_store_writes_one_record_per_key_and_only_when_the_work_is_done(aws):
    store = reading_store(aws)
    [data] = datas(1, "once")
    writes = writes_of(aws)
    assert store.claim(data, 30_000).state is ClaimState.CLAIMED
    assert writes == [] and items(aws) == {}  # a claim that only reads
    store.complete(data, {"enqueued": True})
    assert writes == ["UpdateItem"]
    assert store.claim(data, 30_000).state is ClaimState.COMPLETED
    assert store.claim({**data, "body": {"n": "other"}}, 30_000).state is ClaimState.MISMATCH
    assert plain_powertools(aws, "ingest.hubspot").get_record(data).status == "COMPLETED"


def test_a_reading_store_releases_without_writing_and_a_retry_claims_again(aws):
    store = reading_store(aws)
    [data] = datas(1, "failed")
    store.claim(data, 30_000)
    writes = writes_of(aws)
    store.release(data, RuntimeError("not enqueued"))
    store.release_many([data], RuntimeError("not enqueued"))
    assert writes == []
    assert store.claim(data, 30_000).state is ClaimState.CLAIMED


def test_a_reading_store_sees_an_expired_record_as_free_and_a_held_one_as_busy(aws):
    [done, held] = datas(2, "states")
    expired = reading_store(aws, ttl=1)
    expired.complete(done, {})
    table_item = items(aws)
    [key] = table_item
    aws.dynamodb.update_item(  # an expiry in the past, as DynamoDB keeps it until its TTL sweep
        TableName=aws.table,
        Key={"id": {"S": key}},
        UpdateExpression="SET expiration = :past",
        ExpressionAttributeValues={":past": {"N": "1000"}},
    )
    assert reading_store(aws).claim(done, 30_000).state is ClaimState.CLAIMED
    holder = ClaimStore(  # a store that holds its claims, on the same key space
        aws.table,
        key_prefix="ingest.hubspot",
        key_field="key",
        payload_field="body",
        expires_after_seconds=3600,
        dynamodb=aws.dynamodb,
    )
    holder.claim(held, 30_000)
    claim = reading_store(aws).claim(held, 30_000)
    assert claim.state is ClaimState.BUSY and 25.0 < claim.retry_in <= 30.5
    assert reading_store(aws).claim({"key": None, "body": {}}, 30_000).state is ClaimState.NO_KEY
