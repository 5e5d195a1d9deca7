"""The deliver stage: send one target's delivery jobs and decide each job's fate.

One SQS record holds one `DeliveryJob`. For each record of a batch:

- unreadable (not a job, or a job for another target) → reported in `batchItemFailures`; SQS
  moves it to the DLQ after `maxReceiveCount` receives (the crash safety net).
- not due yet (`not_before` in the future), or the target is paused after a 429 → put back for
  the remaining wait. No attempt is counted.
- already delivered (a COMPLETED delivered-record under its key) → acknowledged, not sent again.
- otherwise claimed (an INPROGRESS record that expires with this invocation), sent in chunks of
  the client's batch size, paced under the provider's rate limit, and classified:
  * `Delivered` → the record becomes COMPLETED, only now; acknowledged.
  * `RetryLaterError` → re-enqueued with its retry state updated and `not_before` set to the
    provider's requested delay, else exponential backoff with full jitter (capped). Throttling
    (429) does not spend the retry budget, pauses the target for every worker and stops this
    batch: the rest of it is put back, never sent into the 429. A rejected credential (401, or
    none configured) pauses the target the same way: until an operator fixes it, one request per
    pause finds out, instead of every job spending its budget on it. Budget spent → DLQ
    (`retries_exhausted`).
  * `PermanentDeliveryError` → DLQ at once (`permanent_failure`).
  Nothing else ends a job.

Writes go out together: the delivered-records of one provider request in one BatchWriteItem
(completed right after the provider confirmed that request, released together when it failed),
and the batch's re-enqueued copies and dead letters by SendMessageBatch at the end of the
invocation, before any record is acknowledged.

Why the retry state travels in the job (re-enqueue, then acknowledge the original) instead of a
visibility change: every receive counts towards `maxReceiveCount`, so waiting out a 429 storm by
visibility would push healthy jobs into the DLQ with no reason attached. A re-enqueued copy starts
at receive count 0 and carries `attempts`/`retries`/`throttled`/`not_before`. SQS delays stop at
15 min; a longer wait re-enqueues with the maximum delay and, when the job shows up early, holds
it by visibility for the rest (one receive per 12 h of waiting).

Exactly once at the provider: the delivered-record (Powertools idempotency on DynamoDB, keyed on
the job key, the body hashed for payload validation) stops a redelivered job from being sent
again; the provider-side key (the job key, on every attempt) absorbs the window where the
provider stored the event but the record was not yet COMPLETED (lost answer, crash, timeout).
"""

from __future__ import annotations

import copy
import json
import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum
from functools import cache
from typing import Any

from timeline_bridge import aws, config, target_registry
from timeline_bridge.errors import (
    CONFIGURATION_CODES,
    DeliveryFailure,
    PermanentDeliveryError,
    RetryLaterError,
)
from timeline_bridge.models import DeliveryJob
from timeline_bridge.observability import NAMESPACE, logger
from timeline_bridge.targets.base import Delivered, TargetClient

SQS_MAX_DELAY = 900  # DelaySeconds upper bound
SQS_MAX_VISIBILITY = 43_200  # ChangeMessageVisibility upper bound (12 h)
# SQS delays are whole seconds: a job this close to its time is sent now.
EARLY_TOLERANCE = 1.0
MIN_RECORD_TTL = config.MIN_RECORD_TTL

METRIC_DELIVERED = "TimelineEventDelivered"
METRIC_RETRIED = "TimelineEventRetried"
METRIC_DEAD_LETTERED = "TimelineEventDeadLettered"
METRIC_DUPLICATE = "TimelineEventDuplicateSuppressed"
METRIC_CREDENTIALS_REJECTED = "TargetCredentialsRejected"


# --- settings ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetryPolicy(config.RetrySettings):
    """How long and how often a job is retried: `config.RetrySettings` (every knob an environment
    variable, parsed once) and the delays it implies."""

    @classmethod
    def from_settings(cls, retry: config.RetrySettings | None = None) -> RetryPolicy:
        """The policy of `retry` (default: the process settings)."""
        retry = retry or config.settings().retry
        return cls(**{f.name: getattr(retry, f.name) for f in fields(retry)})

    def backoff(self, retries: int, rng: random.Random) -> float:
        """Full jitter: uniform(0, min(cap, base * 2^(retries-1)))."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(max(retries - 1, 0), 30))
        return rng.uniform(0.0, ceiling)

    def retry_delay(self, failure: RetryLaterError, retries: int, rng: random.Random) -> float:
        """The provider's requested delay (plus a little spread so workers do not wake together),
        else the throttle pause for a bare 429, else backoff."""
        if failure.retry_after is not None:
            wait = min(max(float(failure.retry_after), 0.0), self.max_delay)
            return wait + rng.uniform(0.0, min(1.0, 0.1 * wait))
        if failure.throttled:
            return self.throttle_pause + rng.uniform(0.0, min(1.0, 0.1 * self.throttle_pause))
        return self.backoff(retries, rng)

    def exhausted(self, job: DeliveryJob) -> bool:
        return job.retries >= self.max_attempts or job.throttled >= self.max_throttled


def _documented_rate_limits(target: str) -> tuple[tuple[int, float], ...]:
    """The target's documented limits (`TargetSpec.rate_limits`), paced at DELIVERY_PACE_FRACTION
    of each and split across DELIVER_MAX_CONCURRENCY workers."""
    return target_registry.target_spec(target).rate_limits if target_registry.is_target(target) else ()


def rate_limits(target: str) -> tuple[tuple[int, float], ...]:
    """The limits the worker paces itself under: the documented ones (or `<TARGET>_RATE_LIMITS`
    "count/seconds,..."; `<TARGET>_MAX_REQUESTS_PER_SECOND`/`_PER_MINUTE` replace one window),
    windows scaled by DELIVERY_RATE_TIME_SCALE, counts by DELIVERY_PACE_FRACTION (0.8) and divided
    by DELIVER_MAX_CONCURRENCY (the workers sharing the provider's limit)."""
    pacing = config.settings().pacing
    configured = pacing.rate_limits.get(target, _documented_rate_limits(target))
    limits: dict[float, int] = {window: count for count, window in configured}
    limits.update(pacing.max_requests.get(target, {}))
    scale, fraction, workers = pacing.time_scale, pacing.fraction, pacing.workers
    return tuple(
        (max(1, int(count * fraction / workers)), window * scale) for window, count in sorted(limits.items())
    )


# --- pacing ------------------------------------------------------------------------------------


class Pacer:
    """A sliding-window limiter: at most `count` sends in any `window` seconds, for every pair."""

    def __init__(
        self, limits: Sequence[tuple[int, float]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = tuple(limits)
        self._clock = clock
        self._sent: deque[float] = deque(maxlen=max((c for c, _ in self.limits), default=1))
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """0.0 after counting one send that may go now; else the seconds until one may."""
        if not self.limits:
            return 0.0
        with self._lock:
            now = self._clock()
            wait = 0.0
            for count, window in self.limits:
                if len(self._sent) >= count and self._sent[-count] > now - window:
                    wait = max(wait, self._sent[-count] + window - now)
            if wait <= 0.0:
                self._sent.append(now)
            return wait


_pacers: dict[tuple[str, tuple[tuple[int, float], ...]], Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(target: str) -> Pacer:
    """The process-wide pacer of `target` (shared by every worker thread of this process)."""
    limits = rate_limits(target)
    with _pacers_lock:
        return _pacers.setdefault((target, limits), Pacer(limits))


# --- the throttle pause, shared by every worker -----------------------------------------------


class ThrottleGate:
    """A per-target pause after a 429: item `throttle#<target>` (attribute `until`, epoch seconds)
    in the idempotency table, read before sending (cached briefly), only ever moved later."""

    def __init__(
        self,
        table: str,
        target: str,
        *,
        dynamodb: Any = None,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 1.0,
    ) -> None:
        self.table = table
        self.target = target
        self._dynamodb = dynamodb
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._local_until = 0.0
        self._read_at = -math.inf
        self._remote_until = 0.0
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        return f"throttle#{self.target}"

    @property
    def dynamodb(self) -> Any:
        return self._dynamodb or aws.client("dynamodb")

    def paused_until(self) -> float:
        """Epoch seconds until which the target is paused (in the past when it is not)."""
        now = self._clock()
        with self._lock:
            stale = now - self._read_at >= self._cache_seconds
        if stale and self.table:
            try:
                remote, _reason = self.shared_pause()
            except Exception:
                # The pause is an optimisation: the provider's next 429 re-establishes it.
                logger.warning("throttle pause unreadable", extra={"target": self.target}, exc_info=True)
                remote = self._remote_until
            with self._lock:
                self._remote_until, self._read_at = remote, now
        with self._lock:
            return max(self._local_until, self._remote_until)

    def shared_pause(self) -> tuple[float, str]:
        """The pause every worker sees, read now: (until, reason), `(0.0, "")` when none was set."""
        item = self.dynamodb.get_item(TableName=self.table, Key={"id": {"S": self.key}}).get("Item")
        if not item:
            return 0.0, ""
        return float(item["until"]["N"]), item.get("reason", {}).get("S", "")

    def pause(self, until: float, reason: str = "") -> None:
        """Pause the target until `until` (epoch seconds) for every worker."""
        with self._lock:
            self._local_until = max(self._local_until, until)
        if not self.table:
            return
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"id": {"S": self.key}},
                UpdateExpression="SET #until = :until, #expiration = :expiration, #reason = :reason",
                ConditionExpression="attribute_not_exists(#until) OR #until < :until",
                ExpressionAttributeNames={
                    "#until": "until",
                    "#expiration": "expiration",
                    "#reason": "reason",
                },
                ExpressionAttributeValues={
                    ":until": {"N": f"{until:.3f}"},
                    ":expiration": {"N": str(int(until) + 86_400)},
                    ":reason": {"S": reason[:200] or "throttled"},
                },
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code != "ConditionalCheckFailedException":  # a later pause is already there
                logger.warning("throttle pause not shared", extra={"target": self.target}, exc_info=True)


# --- delivered-records -------------------------------------------------------------------------


class ClaimState(Enum):
    CLAIMED = "claimed"  # ours to send (INPROGRESS written)
    DELIVERED = "delivered"  # a COMPLETED record: already delivered
    BUSY = "busy"  # another worker holds it (INPROGRESS, not yet expired)
    MISMATCH = "payload_mismatch"  # same key, different body
    NO_KEY = "no_idempotency_key"


@dataclass(frozen=True, slots=True)
class Claim:
    state: ClaimState
    retry_in: float = 0.0  # BUSY: seconds until the holder's claim expires


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


class DeliveredRecords:
    """Powertools idempotency records on DynamoDB, one per job key (`deliver#<target>#<md5>`).

    The persistence layer is driven directly (not a decorator) because one provider request can
    carry a hundred jobs: each is claimed before the request and COMPLETED only after the provider
    confirmed it. The INPROGRESS record expires with the invocation (`in_progress_expiration`), so a
    worker killed mid-send never blocks the job: the next delivery re-runs (FM-04).
    """

    def __init__(self, table: str, target: str, *, ttl: int = 14 * 86_400, dynamodb: Any = None) -> None:
        from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

        self.layer = DynamoDBPersistenceLayer(
            table_name=table, boto3_client=dynamodb or aws.client("dynamodb")
        )
        self.layer.configure(
            IdempotencyConfig(
                event_key_jmespath="key",
                payload_validation_jmespath="body",
                raise_on_no_idempotency_key=True,
                expires_after_seconds=max(ttl, MIN_RECORD_TTL),
            ),
            key_prefix=f"deliver#{target}",
        )

    @staticmethod
    def data(job: DeliveryJob) -> dict[str, Any]:
        """What the record is keyed and validated on; a snapshot, so a client touching the body
        cannot change the hash between claim and completion."""
        return {"key": job.key, "body": copy.deepcopy(job.body)}

    def claim(self, data: dict[str, Any], remaining_ms: int) -> Claim:
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyItemAlreadyExistsError,
            IdempotencyKeyError,
            IdempotencyValidationError,
        )

        try:
            self.layer.save_inprogress(data=data, remaining_time_in_millis=max(0, remaining_ms))
            return Claim(ClaimState.CLAIMED)
        except IdempotencyValidationError:
            return Claim(ClaimState.MISMATCH)
        except IdempotencyKeyError:
            return Claim(ClaimState.NO_KEY)
        except IdempotencyItemAlreadyExistsError as exists:
            record = exists.old_data_record
        if record is None:
            try:
                record = self.layer.get_record(data=data)
            except IdempotencyValidationError:
                return Claim(ClaimState.MISMATCH)
        status = record.status if record is not None else "INPROGRESS"
        if status == "COMPLETED":
            return Claim(ClaimState.DELIVERED)
        expiry_ms = getattr(record, "in_progress_expiry_timestamp", None)  # a Decimal from DynamoDB
        retry_in = (float(expiry_ms) / 1000.0 - time.time()) if expiry_ms else 5.0
        return Claim(ClaimState.BUSY, retry_in=min(max(retry_in, EARLY_TOLERANCE), SQS_MAX_DELAY))

    def complete(self, data: dict[str, Any], result: dict[str, Any]) -> None:
        self.layer.save_success(data=data, result=result)

    def complete_many(self, entries: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """COMPLETE the records of one provider request (`(data, result)` pairs), 25 per
        BatchWriteItem instead of one UpdateItem each (a HubSpot batch carries 100 jobs). Each item
        is the record `save_success` writes (which stays the fallback). Raises when a record could
        not be completed."""
        try:
            self._write_batches([{"PutRequest": {"Item": self._completed_item(*e)}} for e in entries])
            return
        except Exception:
            logger.warning("batched completion failed; completing one by one", exc_info=True)
        _each(entries, lambda entry: self.complete(*entry), "delivered-record(s) not completed")

    def release(self, data: dict[str, Any], reason: Exception) -> None:
        """Forget the claim so a later delivery (retry, redrive) can send the job again."""
        self.layer.delete_record(data=data, exception=reason)

    def release_many(self, datas: Sequence[dict[str, Any]], reason: Exception) -> None:
        """`release` for every job of one provider request, 25 per BatchWriteItem."""
        try:
            keys = [self._record_key(data) for data in datas]
            self._write_batches([{"DeleteRequest": {"Key": key}} for key in keys])
            return
        except Exception:
            logger.warning("batched release failed; releasing one by one", exc_info=True)
        _each(datas, lambda data: self.release(data, reason), "claim(s) not released")

    def _record_key(self, data: dict[str, Any]) -> dict[str, Any]:
        """The DynamoDB key of the job's record, as Powertools computes it."""
        hashed = self.layer._get_hashed_idempotency_key(data=data)
        if hashed is None:  # unreachable: raise_on_no_idempotency_key makes Powertools raise first
            raise ValueError("the job has no idempotency key")
        return self.layer._get_key(hashed)

    def _completed_item(self, data: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """The COMPLETED record as `save_success` writes it (key, expiry, status, response data,
        payload hash), for a PutRequest."""
        layer = self.layer
        item: dict[str, Any] = {
            **self._record_key(data),
            layer.expiry_attr: {"N": str(layer._get_expiry_timestamp())},
            layer.status_attr: {"S": "COMPLETED"},
            layer.data_attr: {"S": json.dumps(result, sort_keys=True, default=str)},
        }
        if layer.payload_validation_enabled:
            item[layer.validation_key_attr] = {"S": layer._get_hashed_payload(data=data)}
        return item

    def _write_batches(self, requests: list[dict[str, Any]], attempts: int = 3) -> None:
        """BatchWriteItem `requests` 25 at a time; unprocessed ones are retried, then raised."""
        pending = list(requests)
        for attempt in range(attempts):
            left: list[dict[str, Any]] = []
            for start in range(0, len(pending), 25):
                answer = self.layer.client.batch_write_item(
                    RequestItems={self.layer.table_name: pending[start : start + 25]}
                )
                left.extend((answer.get("UnprocessedItems") or {}).get(self.layer.table_name) or ())
            if not left:
                return
            pending = left
            time.sleep(0.05 * 2**attempt)  # DynamoDB throttled part of the batch: back off briefly
        raise RuntimeError(f"{len(pending)} delivered-record write(s) left unprocessed")


# --- queues ------------------------------------------------------------------------------------


class JobQueues:
    """The target's delivery queue and DLQ."""

    def __init__(self, target: str, *, sqs: Any = None) -> None:
        self.target = target
        self._sqs = sqs

    @property
    def sqs(self) -> Any:
        return self._sqs or aws.client("sqs")

    def requeue_batch(self, entries: Sequence[tuple[str, float]]) -> list[int]:
        """Send updated jobs (JSON, delay in seconds ≤ 15 min) back to the delivery queue, batched
        by SendMessageBatch. Returns the positions that did not get on the queue."""
        return aws.send_message_batches(
            self.sqs,
            config.queue_url(self.target),
            [
                {"MessageBody": body, "DelaySeconds": int(min(max(delay, 0.0), SQS_MAX_DELAY))}
                for body, delay in entries
            ],
        )

    def hold(self, receipt_handle: str, seconds: float) -> None:
        """Keep a received message invisible for `seconds` (≤ 12 h)."""
        self.sqs.change_message_visibility(
            QueueUrl=config.queue_url(self.target),
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=int(min(max(math.ceil(seconds), 0), SQS_MAX_VISIBILITY - 60)),
        )

    def dead_letter_batch(self, jobs: Sequence[DeliveryJob]) -> list[int]:
        """Send jobs (each with its reason record) to the DLQ with the `reason` and `target`
        attributes, batched by SendMessageBatch. Returns the positions that did not get there."""
        return aws.send_message_batches(
            self.sqs,
            config.queue_url(self.target, dead_letter=True),
            [
                {
                    "MessageBody": job.to_json(),
                    "MessageAttributes": {
                        "reason": {
                            "DataType": "String",
                            "StringValue": str((job.dead_letter or {}).get("reason", "unknown")),
                        },
                        "target": {"DataType": "String", "StringValue": self.target},
                    },
                }
                for job in jobs
            ],
        )


# --- the worker --------------------------------------------------------------------------------


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def stops_target(outcome: Any) -> bool:
    """An answer that holds for every job of the target, not just this one: a 429, or a rejected
    or missing credential that will be retried. Sending more jobs into it only wastes them."""
    return isinstance(outcome, RetryLaterError) and (
        outcome.throttled or failure_category(outcome) == "credentials"
    )


def failure_category(failure: DeliveryFailure) -> str:
    """What kind of trouble a failure is, for the dead-letter record and the logs."""
    if isinstance(failure, RetryLaterError) and failure.throttled:
        return "rate_limited"
    if failure.status in (401, 403) or failure.code in CONFIGURATION_CODES:
        return "credentials"
    if isinstance(failure, PermanentDeliveryError):
        return "rejected"
    return "target_unavailable"


def dead_letter_record(
    job: DeliveryJob, reason: str, failure: DeliveryFailure | None, now: float, *, category: str | None = None
) -> dict[str, Any]:
    """The reason record a person acts on, stored in `job.dead_letter`."""
    details = failure.details if failure else []
    return {
        "reason": reason,
        "stage": "deliver",
        "target": job.target,
        "category": category or (failure_category(failure) if failure else reason),
        "status": failure.status if failure else None,
        "provider_code": failure.code if failure else None,
        "provider_message": failure.message if failure else None,
        "request_id": failure.request_id if failure else None,
        "details": json.loads(json.dumps(details, default=str)),
        "attempts": job.attempts,
        "retries": job.retries,
        "throttled": job.throttled,
        "redrives": job.redrives,
        "first_failure_at": job.first_failure_at,
        "last_failure_at": job.last_failure_at,
        "mapping": job.mapping,
        "mapping_file": job.mapping_file,
        "idempotency_key": job.key,
        "dead_lettered_at": iso(now),
    }


@dataclass
class _Item:
    record: dict[str, Any]
    job: DeliveryJob
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def message_id(self) -> str:
        return str(self.record.get("messageId", ""))


class _Batch:
    """What one invocation decided: the records to fail back to SQS and the metric counts."""

    def __init__(self) -> None:
        self.failures: list[str] = []
        self.counts: Counter[str] = Counter()
        # (message id, updated job as JSON, delay): sent together at the end of the batch
        self.requeues: list[tuple[str, str, float]] = []
        # jobs with their reason record, for the DLQ: sent together at the end of the batch
        self.dead: list[_Item] = []

    def fail(self, message_id: str) -> None:
        if message_id and message_id not in self.failures:
            self.failures.append(message_id)

    def requeue(self, item: _Item, delay: float) -> None:
        self.requeues.append((item.message_id, item.job.to_json(), delay))

    def response(self) -> dict[str, Any]:
        return {"batchItemFailures": [{"itemIdentifier": m} for m in self.failures]}


class Deliverer:
    """The delivery policy for one target. Every collaborator is injectable (tests pass fakes)."""

    def __init__(
        self,
        target: str,
        client: TargetClient,
        *,
        records: Any,
        queues: Any,
        gate: Any,
        pacer: Pacer | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        target_registry.target_spec(target)  # ValueError for a name no target has
        self.target = target
        self.client = client
        self.records = records
        self.queues = queues
        self.gate = gate
        self.pacer = pacer or Pacer(())
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()

    # -- entry point ----------------------------------------------------------------------------

    def process(self, sqs_records: Sequence[dict[str, Any]], context: Any = None) -> dict[str, Any]:
        """Handle one Lambda SQS batch; returns the partial batch response."""
        batch = _Batch()
        items = [item for item in (self._parse(r, batch) for r in sqs_records) if item is not None]
        now = self.clock()
        due: list[_Item] = []
        for item in items:
            not_before = parse_iso(item.job.not_before)
            if not_before is not None and not_before - now > EARLY_TOLERANCE:
                self._defer(item, not_before - now, "not_before", batch)
            else:
                due.append(item)
        try:
            self._deliver(due, context, batch)
            self._flush_dead_letters(batch)
            self._flush_requeues(batch)
        finally:
            self._flush_metrics(batch)
        return batch.response()

    def _flush_requeues(self, batch: _Batch) -> None:
        """Send the re-enqueued jobs; a record whose copy did not get on the queue is failed back to
        SQS instead of acknowledged, so it is redelivered as it was."""
        if not batch.requeues:
            return
        try:
            failed = set(self.queues.requeue_batch([(body, delay) for _, body, delay in batch.requeues]))
        except Exception:
            logger.exception("requeue failed; SQS redelivers", extra={"target": self.target})
            failed = set(range(len(batch.requeues)))
        for position in sorted(failed):
            batch.fail(batch.requeues[position][0])

    def _parse(self, record: dict[str, Any], batch: _Batch) -> _Item | None:
        try:
            if not isinstance(json.loads(record["body"]), dict):
                raise TypeError("not a JSON object")
            job = DeliveryJob.from_json(record["body"])
            if not isinstance(job.body, dict):
                raise TypeError("body is not an object")
        except (KeyError, TypeError, ValueError) as exc:
            logger.error(
                "unreadable delivery job; SQS dead-letters it after maxReceiveCount",
                extra={"target": self.target, "message_id": record.get("messageId"), "error": str(exc)[:300]},
            )
            batch.fail(str(record.get("messageId", "")))
            return None
        if job.target != self.target:
            logger.error(
                "delivery job for another target",
                extra={"target": self.target, "job_target": job.target, "key": job.key},
            )
            batch.fail(str(record.get("messageId", "")))
            return None
        return _Item(record, job)

    # -- sending --------------------------------------------------------------------------------

    def _deliver(self, due: list[_Item], context: Any, batch: _Batch) -> None:
        size = max(1, int(getattr(self.client, "max_batch_size", 1) or 1))
        position = 0
        while position < len(due):
            rest = due[position:]
            if self._remaining_ms(context) < self.policy.time_margin * 1000:
                logger.warning(
                    "close to the function timeout; returning unsent jobs to the queue",
                    extra={"target": self.target, "unsent": len(rest)},
                )
                for item in rest:
                    batch.fail(item.message_id)
                return
            if not self._pace(rest, context, batch):
                return
            # After pacing (which may have slept): another worker may have met a 429 meanwhile.
            paused = self.gate.paused_until() - self.clock()
            if paused > 0:
                self._defer_all(rest, paused + self._spread(paused), "target_paused", batch)
                return
            chunk = self._claim(due[position : position + size], context, batch)
            position += size
            if not chunk:
                continue
            outcomes = self._send(chunk, batch)
            if outcomes is None:
                for item in due[position:]:
                    batch.fail(item.message_id)
                return
            stop = next((o for o in outcomes if stops_target(o)), None)
            # Pause first: the other workers must stop sending now, not after this chunk is settled.
            wait = self._pause(stop, batch) if stop is not None else 0.0
            self._settle(chunk, outcomes, batch)
            if stop is not None:
                self._defer_all(due[position:], wait + self._spread(wait), "target_paused", batch)
                return

    def _pace(self, rest: list[_Item], context: Any, batch: _Batch) -> bool:
        """Wait for the pacer (briefly) or put the rest back for the pacer's wait. True: send now."""
        while True:
            wait = self.pacer.reserve()
            if wait <= 0.0:
                return True
            budget = self._remaining_ms(context) / 1000.0 - self.policy.time_margin
            if wait > self.policy.max_pace_sleep or wait > budget:
                self._defer_all(rest, wait + self._spread(wait), "paced", batch)
                return False
            self.sleep(wait)

    def _claim(self, chunk: list[_Item], context: Any, batch: _Batch) -> list[_Item]:
        """Claim each job of `chunk`; returns those to send now."""
        ready: list[_Item] = []
        remaining = self._remaining_ms(context)
        for item in chunk:
            item.data = self.records.data(item.job)
            try:
                claim = self.records.claim(item.data, remaining if remaining != math.inf else 900_000)
            except Exception:
                # FM-16: the store is down: never send without dedupe; SQS redelivers later.
                logger.exception(
                    "delivered-record store unavailable", extra={"target": self.target, "key": item.job.key}
                )
                batch.fail(item.message_id)
                continue
            if claim.state is ClaimState.CLAIMED:
                ready.append(item)
            elif claim.state is ClaimState.DELIVERED:
                logger.info(
                    "already delivered; not sent again",
                    extra={"target": self.target, "key": item.job.key, "mapping": item.job.mapping},
                )
                batch.counts[METRIC_DUPLICATE] += 1
            elif claim.state is ClaimState.BUSY:
                # Usually the holder finishes in moments; a dead holder's claim expires (retry_in).
                wait = min(claim.retry_in, self.policy.busy_recheck)
                self._defer(item, wait + self._spread(wait), "in_progress_elsewhere", batch)
            else:
                message = (
                    "a different body was already delivered under this key"
                    if claim.state is ClaimState.MISMATCH
                    else "the job has no idempotency key"
                )
                self._dead_letter(
                    item, claim.state.value, PermanentDeliveryError(message, code=claim.state.value), batch
                )
        return ready

    def _send(self, chunk: list[_Item], batch: _Batch) -> list[Any] | None:
        jobs = [item.job for item in chunk]
        try:
            outcomes = list(self.client.send(jobs))
            if len(outcomes) != len(jobs):
                raise RuntimeError(
                    f"{self.target} client returned {len(outcomes)} outcomes for {len(jobs)} jobs"
                )
            return outcomes
        except Exception as exc:
            # A client bug, not a provider answer: release the claims and let SQS redeliver.
            logger.exception("target client failed", extra={"target": self.target})
            self._release(chunk, exc)
            for item in chunk:
                batch.fail(item.message_id)
            return None

    # -- outcomes -------------------------------------------------------------------------------

    def _settle(self, chunk: list[_Item], outcomes: list[Any], batch: _Batch) -> None:
        """Decide every job of one provider request: delivered ones are COMPLETED together (one
        write per request, right after the provider confirmed it), failed ones released together
        and then retried or dead-lettered."""
        delivered = [(i, o) for i, o in zip(chunk, outcomes, strict=True) if isinstance(o, Delivered)]
        failed = [(i, o) for i, o in zip(chunk, outcomes, strict=True) if not isinstance(o, Delivered)]
        if delivered:
            self._complete(delivered, batch)
        if failed:
            failures = [
                o if isinstance(o, DeliveryFailure) else RetryLaterError(f"unexpected outcome {o!r}")
                for _, o in failed
            ]
            self._release([item for item, _ in failed], failures[0])
            for (item, _), failure in zip(failed, failures, strict=True):
                self._retry_or_dead_letter(item, failure, batch)

    def _complete(self, delivered: list[tuple[_Item, Delivered]], batch: _Batch) -> None:
        try:
            self.records.complete_many(
                [(item.data, {"provider_id": o.provider_id, "status": o.status}) for item, o in delivered]
            )
        except Exception:
            # Delivered all the same; a redelivery is absorbed by the provider-side key.
            logger.exception(
                "delivered-record not completed",
                extra={"target": self.target, "keys": [item.job.key for item, _ in delivered]},
            )
        for item, outcome in delivered:
            job = item.job
            logger.info(
                "timeline event delivered",
                extra={
                    "target": self.target,
                    "key": job.key,
                    "source": job.source,
                    "event_id": job.event_id,
                    "mapping": job.mapping,
                    "provider_id": outcome.provider_id,
                    "status": outcome.status,
                    "replayed": outcome.replayed,
                    "attempts": job.attempts + 1,
                },
            )
            batch.counts[METRIC_DELIVERED] += 1

    def _retry_or_dead_letter(self, item: _Item, failure: DeliveryFailure, batch: _Batch) -> None:
        job = item.job
        now = self.clock()
        job.attempts += 1
        job.first_failure_at = job.first_failure_at or iso(now)
        job.last_failure_at = iso(now)
        if isinstance(failure, RetryLaterError):
            if failure.throttled:
                job.throttled += 1
            else:
                job.retries += 1
            if self.policy.exhausted(job):
                self._dead_letter(item, "retries_exhausted", failure, batch)
                return
            delay = self.policy.retry_delay(failure, job.retries, self.rng)
            job.not_before = iso(now + delay)
            batch.requeue(item, delay)
            logger.warning(
                "delivery failed; retrying later",
                extra={
                    "target": self.target,
                    "key": job.key,
                    "source": job.source,
                    "event_id": job.event_id,
                    "mapping": job.mapping,
                    "status": failure.status,
                    "code": failure.code,
                    "category": failure_category(failure),
                    "request_id": failure.request_id,
                    "retry_in": round(delay, 3),
                    "retries": job.retries,
                    "throttled": job.throttled,
                },
            )
            batch.counts[METRIC_RETRIED] += 1
            return
        self._dead_letter(item, "permanent_failure", failure, batch)

    def _dead_letter(self, item: _Item, reason: str, failure: DeliveryFailure | None, batch: _Batch) -> None:
        """Attach the reason record; the job goes to the DLQ with the others at the end of the batch."""
        job = item.job
        job.not_before = None
        job.dead_letter = dead_letter_record(job, reason, failure, self.clock())
        batch.dead.append(item)

    def _flush_dead_letters(self, batch: _Batch) -> None:
        """Send the batch's dead letters; a record whose dead letter did not get on the DLQ is failed
        back to SQS instead of acknowledged, so it is redelivered as it was."""
        if not batch.dead:
            return
        try:
            failed = set(self.queues.dead_letter_batch([item.job for item in batch.dead]))
        except Exception:
            logger.exception("dead letters not sent; SQS redelivers", extra={"target": self.target})
            failed = set(range(len(batch.dead)))
        for position, item in enumerate(batch.dead):
            job = item.job
            if position in failed:
                logger.error(
                    "dead letter not sent; SQS redelivers", extra={"target": self.target, "key": job.key}
                )
                batch.fail(item.message_id)
                continue
            record = job.dead_letter or {}
            logger.error(
                "timeline event dead-lettered",
                extra={
                    "target": self.target,
                    "key": job.key,
                    "source": job.source,
                    "event_id": job.event_id,
                    "reason": record.get("reason"),
                    "mapping": job.mapping,
                    "mapping_file": job.mapping_file,
                    "status": record.get("status"),
                    "provider_code": record.get("provider_code"),
                    "request_id": record.get("request_id"),
                    "attempts": job.attempts,
                },
            )
            batch.counts[METRIC_DEAD_LETTERED] += 1

    def _release(self, items: list[_Item], reason: Exception) -> None:
        try:
            self.records.release_many([item.data for item in items], reason)
        except Exception:
            # The claims then expire with this invocation (in_progress_expiration).
            logger.warning(
                "claim not released",
                extra={"target": self.target, "keys": [item.job.key for item in items]},
                exc_info=True,
            )

    def _pause(self, failure: RetryLaterError, batch: _Batch) -> float:
        """Pause the target for every worker; returns the pause in seconds."""
        if failure.retry_after is not None:
            wait = min(max(float(failure.retry_after), 0.0), self.policy.max_delay)
        else:
            wait = self.policy.throttle_pause if failure.throttled else self.policy.credentials_pause
        self.gate.pause(self.clock() + wait, reason=f"{failure.status or ''} {failure.code or ''}".strip())
        if failure.throttled:
            logger.warning(
                "target throttled; pausing",
                extra={"target": self.target, "pause_seconds": round(wait, 3), "code": failure.code},
            )
        else:
            # Nothing for this target gets through until someone fixes the credential: say so loudly.
            logger.error(
                "target credentials rejected; pausing",
                extra={
                    "target": self.target,
                    "pause_seconds": round(wait, 3),
                    "status": failure.status,
                    "code": failure.code,
                    "error": failure.message,
                },
            )
            batch.counts[METRIC_CREDENTIALS_REJECTED] += 1
        return wait

    # -- putting jobs back without an attempt ---------------------------------------------------

    def _defer_all(self, items: list[_Item], wait: float, why: str, batch: _Batch) -> None:
        for item in items:
            self._defer(item, wait, why, batch)

    def _defer(self, item: _Item, wait: float, why: str, batch: _Batch) -> None:
        """Put the job back for `wait` seconds; not an attempt."""
        job = item.job
        job.not_before = iso(self.clock() + wait)
        if wait <= SQS_MAX_DELAY:
            batch.requeue(item, wait)
        else:
            handle = item.record.get("receiptHandle")
            try:
                if not handle:
                    raise ValueError("no receipt handle")
                self.queues.hold(handle, wait)
            except Exception:
                logger.warning(
                    "hold failed; re-enqueued instead", extra={"target": self.target}, exc_info=True
                )
                batch.requeue(item, SQS_MAX_DELAY)
            else:
                batch.fail(item.message_id)  # held by visibility: must not be deleted
        logger.debug(
            "job deferred", extra={"target": self.target, "key": job.key, "why": why, "wait": round(wait, 3)}
        )

    # -- helpers --------------------------------------------------------------------------------

    def _spread(self, wait: float) -> float:
        """A small random extra so deferred jobs do not all come back at the same instant."""
        return self.rng.uniform(0.0, min(1.0, 0.1 * max(wait, 0.0)))

    @staticmethod
    def _remaining_ms(context: Any) -> float:
        getter = getattr(context, "get_remaining_time_in_millis", None)
        return float(getter()) if callable(getter) else math.inf

    def _flush_metrics(self, batch: _Batch) -> None:
        if not batch.counts:
            return
        try:
            from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

            # Ephemeral: the `target` dimension stays right when one process serves several targets.
            metrics = EphemeralMetrics(namespace=NAMESPACE)
            metrics.add_dimension(name="target", value=self.target)
            for name, value in sorted(batch.counts.items()):
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
            metrics.flush_metrics()
        except Exception:
            logger.warning("metrics not published", exc_info=True)


# --- composition root --------------------------------------------------------------------------


def build(target: str, client: TargetClient | None = None) -> Deliverer:
    """The deliverer for `target` from the environment (IDEMPOTENCY_TABLE, queue URLs, knobs)."""
    from timeline_bridge.targets import client_for

    policy = RetryPolicy.from_settings()
    table = config.settings().idempotency_table
    if not table:
        raise RuntimeError("IDEMPOTENCY_TABLE is not set: delivery never runs without dedupe")
    return Deliverer(
        target,
        client or client_for(target),
        records=DeliveredRecords(table, target, ttl=policy.record_ttl),
        queues=JobQueues(target),
        gate=ThrottleGate(table, target),
        pacer=pacer_for(target),
        policy=policy,
    )


@cache
def deliverer_for(target: str) -> Deliverer:
    """The process-wide deliverer of `target` (`deliverer_for.cache_clear()` after env changes)."""
    return build(target)


def handle(event: dict[str, Any], context: Any = None, *, target: str | None = None) -> dict[str, Any]:
    """Deliver one SQS batch for `target` (default: env TARGET); the partial batch response."""
    target = target or config.settings().target
    if not target:
        raise RuntimeError("TARGET is not set")
    return deliverer_for(target).process(event.get("Records") or [], context)
