"""Claims in the idempotency table: one record per piece of work, so that work is done once.

Ingest claims each source event (`ingest.<scope>#<md5 of the event id>`) until it is on the
events queue; deliver claims each job (`deliver#<target>#<md5 of the job key>`) until the
provider confirmed it. Either way a record is a Powertools idempotency record on DynamoDB:
INPROGRESS while the work is under way (expiring with the invocation, so a dead worker never
blocks it), COMPLETED once it is done, deleted when it failed so a retry may claim it again; the
payload hash catches the same key arriving with another body.

A store made with `hold_while_working=False` writes once per key instead of twice: its claim is a
read (no record, or an expired one: CLAIMED, nothing written), its completion the one write, its
release nothing. Nothing holds the key meanwhile, so two copies claimed at the same moment may both
do the work: only for work whose copies are absorbed further on. Ingest is such work (an event
enqueued twice becomes the same jobs, and the deliver stage claims each job before it is sent);
a DynamoDB write unit costs five consistent read units.

Powertools is used through its public persistence API (`configure`, `save_inprogress`,
`save_success`, `delete_record`, `get_record`) and its documented extension points
(`_update_record`/`_delete_record` of a persistence layer), which add one thing: inside
`ClaimStore.batch()` completions and releases are collected and written by BatchWriteItem, 25 per
call, because one provider request settles up to a hundred jobs at once.

Powertools' idempotency module (and jmespath) loads with the first store, not with this module:
ingest's import path stays light (Slack allows 3 s for an answer).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from functools import cache
from typing import TYPE_CHECKING, Any

from timeline_bridge.observability import logger

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
    from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

BATCH_WRITE_ITEMS = 25  # BatchWriteItem: at most 25 requests per call
BATCH_WRITE_ATTEMPTS = 3  # unprocessed requests are sent again this often, then raised
# A busy claim is looked at again no sooner than this, and no later than an invocation can last.
MIN_RETRY_IN = 1.0
MAX_RETRY_IN = 900.0
# An in-progress record without an expiry (written by something else): look again after this.
UNKNOWN_RETRY_IN = 5.0


class ClaimState(Enum):
    """What claiming a key found. The aliases are the same members, in each stage's words."""

    CLAIMED = "claimed"  # ours now (INPROGRESS written): do the work, then complete or release
    COMPLETED = "completed"  # done before: a duplicate, not done again
    BUSY = "busy"  # another worker holds it; `Claim.retry_in` says when to look again
    MISMATCH = "payload_mismatch"  # same key, another body
    NO_KEY = "no_idempotency_key"  # nothing to key the claim on

    NEW = "claimed"  # ingest: enqueue it
    DUPLICATE = "completed"  # ingest: enqueued before
    DELIVERED = "completed"  # deliver: sent before
    IN_PROGRESS = "busy"  # ingest: the sender retries later


@dataclass(frozen=True, slots=True)
class Claim:
    state: ClaimState
    retry_in: float = 0.0  # BUSY: seconds until the holder's claim expires (clamped)


class ClaimStore:
    """The claims of one key space (`key_prefix`) of the idempotency table.

    `data` is what a claim is keyed and validated on: `data[key_field]` names the work (no value:
    NO_KEY), `data[payload_field]` is hashed for payload validation (no `payload_field`: none, for
    a store that only reads records by key).
    """

    def __init__(
        self,
        table: str,
        *,
        key_prefix: str,
        key_field: str,
        payload_field: str | None,
        expires_after_seconds: int,
        dynamodb: Any,
        label: str = "claim",
        hold_while_working: bool = True,
    ) -> None:
        from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

        self.label = label  # what the records are called in errors ("delivered-record")
        # False: no INPROGRESS record; a claim reads, the completion is the only write (module doc).
        self.hold_while_working = hold_while_working
        self._collected = threading.local()  # this thread's writes held back by `batch()`
        self.layer = batching_layer_class()(self._collected, table_name=table, boto3_client=dynamodb)
        self.layer.configure(
            IdempotencyConfig(
                event_key_jmespath=key_field,
                payload_validation_jmespath=payload_field or "",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=expires_after_seconds,
            ),
            key_prefix=key_prefix,
        )

    def claim(self, data: dict[str, Any], remaining_ms: float) -> Claim:
        """Claim `data`'s key until `remaining_ms` from now; DynamoDB failures propagate."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyItemAlreadyExistsError,
            IdempotencyItemNotFoundError,
            IdempotencyKeyError,
            IdempotencyValidationError,
        )

        if not self.hold_while_working:
            return _claim_by_reading(self.layer, data)
        try:
            self.layer.save_inprogress(data=data, remaining_time_in_millis=max(0, int(remaining_ms)))
            return Claim(ClaimState.CLAIMED)
        except IdempotencyKeyError:
            return Claim(ClaimState.NO_KEY)
        except IdempotencyValidationError:
            return Claim(ClaimState.MISMATCH)
        except IdempotencyItemAlreadyExistsError as exists:
            record = exists.old_data_record
        if record is None:  # DynamoDB did not return the record it refused the write for
            try:
                record = self.layer.get_record(data=data)
            except IdempotencyValidationError:
                return Claim(ClaimState.MISMATCH)
            except IdempotencyItemNotFoundError:
                return Claim(ClaimState.BUSY, retry_in=MIN_RETRY_IN)  # released meanwhile: look again soon
        return _found(record)

    def record(self, data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """The record of `data`'s key as stored: its status (INPROGRESS, COMPLETED) and the result
        it was completed with ({} while in progress); None when there is none. Raises
        IdempotencyValidationError when the store validates payloads and `data`'s differs."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyItemNotFoundError

        try:
            found = self.layer.get_record(data=data)
        except IdempotencyItemNotFoundError:
            return None
        if found is None:  # no key in `data`: nothing is stored under it
            return None
        result = found.response_json_as_dict()
        return found.status, result if isinstance(result, dict) else {}

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Inside the block this thread's completions and releases are collected, not written;
        leaving it writes them together, 25 per BatchWriteItem (nothing is written when the block
        raises). Raises when a write stayed unprocessed."""
        if getattr(self._collected, "requests", None) is not None:
            raise RuntimeError("batch() is already open in this thread")
        requests: list[dict[str, Any]] = []
        self._collected.requests = requests
        try:
            yield
        finally:
            self._collected.requests = None
        write_batches(self.layer.client, self.layer.table_name, requests)

    def complete(self, data: dict[str, Any], result: dict[str, Any]) -> None:
        """The work is done: later claims of the key find it COMPLETED (with `result`)."""
        self.layer.save_success(data=data, result=result)

    def complete_many(self, entries: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """`complete` every `(data, result)`, 25 per BatchWriteItem instead of one UpdateItem each;
        one by one when the batched write fails. Raises when a record could not be completed."""
        try:
            with self.batch():
                for data, result in entries:
                    self.complete(data, result)
            return
        except Exception:
            logger.warning("batched completion failed; completing one by one", exc_info=True)
        _each(entries, lambda entry: self.complete(*entry), f"{self.label}(s) not completed")

    def release(self, data: dict[str, Any], reason: Exception) -> None:
        """The work failed: forget the claim so a retry can claim the key again."""
        if self.hold_while_working:  # otherwise the claim wrote nothing
            self.layer.delete_record(data=data, exception=reason)

    def release_many(self, datas: Sequence[dict[str, Any]], reason: Exception) -> None:
        """`release` every claim of `datas`, 25 per BatchWriteItem; one by one when that fails."""
        try:
            with self.batch():
                for data in datas:
                    self.release(data, reason)
            return
        except Exception:
            logger.warning("batched release failed; releasing one by one", exc_info=True)
        _each(datas, lambda data: self.release(data, reason), f"{self.label}(s) not released")


def _claim_by_reading(layer: DynamoDBPersistenceLayer, data: dict[str, Any]) -> Claim:
    """A claim that writes nothing: what the key's record says, CLAIMED when there is none."""
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyItemNotFoundError,
        IdempotencyKeyError,
        IdempotencyValidationError,
    )

    try:
        record = layer.get_record(data=data)
    except IdempotencyKeyError:
        return Claim(ClaimState.NO_KEY)
    except IdempotencyValidationError:
        return Claim(ClaimState.MISMATCH)
    except IdempotencyItemNotFoundError:
        return Claim(ClaimState.CLAIMED)
    if record is None:
        return Claim(ClaimState.NO_KEY)
    if record.is_expired:  # kept until DynamoDB's TTL deletes it, but no longer binding
        return Claim(ClaimState.CLAIMED)
    return _found(record)


def _found(record: DataRecord | None) -> Claim:
    """What an existing record means for a claim: COMPLETED, or BUSY until its holder's expiry."""
    if record is not None and record.status == "COMPLETED":
        return Claim(ClaimState.COMPLETED)
    expiry_ms = getattr(record, "in_progress_expiry_timestamp", None)  # a Decimal from DynamoDB
    retry_in = float(expiry_ms) / 1000.0 - time.time() if expiry_ms else UNKNOWN_RETRY_IN
    return Claim(ClaimState.BUSY, retry_in=min(max(retry_in, MIN_RETRY_IN), MAX_RETRY_IN))


def _each(items: Sequence[Any], action: Callable[[Any], None], what: str) -> None:
    """`action` on every item, each on its own; raises after the last when any failed."""
    failures: list[Exception] = []
    for item in items:
        try:
            action(item)
        except Exception as exc:
            failures.append(exc)
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(items)} {what}") from failures[0]


@cache
def batching_layer_class() -> Callable[..., DynamoDBPersistenceLayer]:
    """`BatchingLayer`, defined on first use: its base is in Powertools' idempotency module."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    class BatchingLayer(DynamoDBPersistenceLayer):
        """Powertools' DynamoDB persistence layer, but while `collected.requests` is a list (see
        `ClaimStore.batch`) the COMPLETED records `save_success` writes and the deletions of
        `delete_record` go on it as BatchWriteItem requests (a PutRequest of the whole item, a
        DeleteRequest) instead of an UpdateItem or DeleteItem each."""

        def __init__(self, collected: threading.local, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.collected = collected

        def _update_record(self, data_record: DataRecord) -> None:
            requests = getattr(self.collected, "requests", None)
            if requests is None:
                super()._update_record(data_record)
            else:
                requests.append({"PutRequest": {"Item": completed_item(self, data_record)}})

        def _delete_record(self, data_record: DataRecord) -> None:
            requests = getattr(self.collected, "requests", None)
            if requests is None:
                super()._delete_record(data_record)
            else:
                requests.append({"DeleteRequest": {"Key": record_key(self, data_record.idempotency_key)}})

    return BatchingLayer


def record_key(layer: DynamoDBPersistenceLayer, idempotency_key: str) -> dict[str, Any]:
    """The record's DynamoDB key as the layer spells it: the key attribute, or the static
    partition value and the key as sort key when the layer has a sort key."""
    if layer.sort_key_attr:
        return {layer.key_attr: {"S": layer.static_pk_value}, layer.sort_key_attr: {"S": idempotency_key}}
    return {layer.key_attr: {"S": idempotency_key}}


def completed_item(layer: DynamoDBPersistenceLayer, record: DataRecord) -> dict[str, Any]:
    """The COMPLETED item `save_success` leaves (key, expiry, status, response data, payload
    hash), whole, for a PutRequest: the INPROGRESS record it replaces holds nothing else to keep."""
    item: dict[str, Any] = {
        **record_key(layer, record.idempotency_key),
        layer.expiry_attr: {"N": str(record.expiry_timestamp)},
        layer.status_attr: {"S": record.status},
        layer.data_attr: {"S": record.response_data},
    }
    if layer.payload_validation_enabled:
        item[layer.validation_key_attr] = {"S": record.payload_hash}
    return item


def write_batches(dynamodb: Any, table: str, requests: Sequence[dict[str, Any]]) -> None:
    """BatchWriteItem `requests` 25 at a time; unprocessed ones are sent again (briefly backed
    off: DynamoDB throttled part of the batch), then raised."""
    pending = list(requests)
    for attempt in range(BATCH_WRITE_ATTEMPTS):
        left: list[dict[str, Any]] = []
        for start in range(0, len(pending), BATCH_WRITE_ITEMS):
            answer = dynamodb.batch_write_item(
                RequestItems={table: pending[start : start + BATCH_WRITE_ITEMS]}
            )
            left.extend((answer.get("UnprocessedItems") or {}).get(table) or ())
        if not left:
            return
        pending = left
        time.sleep(0.05 * 2**attempt)
    raise RuntimeError(f"{len(pending)} record write(s) left unprocessed")
