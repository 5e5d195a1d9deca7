"""The delivery worker of one target: take an SQS batch of jobs, send them in provider-sized
chunks under the pacer and the shared pause, and decide each job's fate (delivered, put back,
retried, dead-lettered). The collaborators are what the worker needs of them (Protocols):
records (`records.DeliveredRecords`), queues (`queues.JobQueues`), the pause gate
(`pause.ThrottleGate`) and the pacer (`pacing.Pacer`)."""

from __future__ import annotations

import json
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from timeline_bridge import target_registry
from timeline_bridge.claims import Claim, ClaimState
from timeline_bridge.delivery.outcomes import (
    METRIC_CREDENTIALS_REJECTED,
    METRIC_DEAD_LETTERED,
    METRIC_DELIVERED,
    METRIC_DUPLICATE,
    METRIC_RETRIED,
    dead_letter_record,
    failure_category,
    iso,
    parse_iso,
    stops_target,
)
from timeline_bridge.delivery.pacing import Pacer
from timeline_bridge.delivery.policy import RetryPolicy
from timeline_bridge.delivery.queues import SQS_MAX_DELAY
from timeline_bridge.errors import DeliveryFailure, PermanentDeliveryError, RetryLaterError
from timeline_bridge.models import DeliveryJob
from timeline_bridge.observability import NAMESPACE, logger
from timeline_bridge.targets.base import Delivered, TargetClient
from timeline_bridge.wiring import NO_OBSERVER, StageObserver

if TYPE_CHECKING:
    from timeline_bridge.replies import Replies

# SQS delays are whole seconds: a job this close to its time is sent now.
EARLY_TOLERANCE = 1.0


class Records(Protocol):
    """Delivered-records: one claim per job, completed once the provider confirmed the job."""

    def data(self, job: DeliveryJob) -> dict[str, Any]: ...

    def claim(self, data: dict[str, Any], remaining_ms: float) -> Claim: ...

    def complete_many(self, entries: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> None: ...

    def release_many(self, datas: Sequence[dict[str, Any]], reason: Exception) -> None: ...


class Queues(Protocol):
    """The target's delivery queue and DLQ; the batch calls return the positions that failed."""

    def requeue_batch(self, entries: Sequence[tuple[str, float]]) -> list[int]: ...

    def hold(self, receipt_handle: str, seconds: float) -> None: ...

    def dead_letter_batch(self, jobs: Sequence[DeliveryJob]) -> list[int]: ...


class PauseGate(Protocol):
    """The target's pause, shared by every worker (epoch seconds)."""

    def paused_until(self) -> float: ...

    def pause(self, until: float, reason: str = "") -> None: ...


class Pacing(Protocol):
    """0.0 after counting one send that may go now; else the seconds until one may."""

    def reserve(self) -> float: ...


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
        # what became of each job, told to the stage observer once the batch is settled
        self.outcomes: list[tuple[_Item, str, str]] = []
        self.unsent_requeues: list[str] = []  # message ids whose re-enqueued copy did not get there

    def report(self, item: _Item, outcome: str, detail: str = "") -> None:
        self.outcomes.append((item, outcome, detail))

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
        records: Records,
        queues: Queues,
        gate: PauseGate,
        pacer: Pacing | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        observer: StageObserver = NO_OBSERVER,
        replies: Replies | None = None,
    ) -> None:
        target_registry.target_spec(target)  # ValueError for a name no target has
        self.target = target
        self.client = client
        self.records = records
        self.queues = queues
        self.gate = gate
        self.pacer: Pacing = pacer or Pacer(())
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.observer = observer
        self.replies = replies

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
        self._reply(batch)
        self._tell_observer(items, batch)
        return batch.response()

    def _reply(self, batch: _Batch) -> None:
        """The clickers' replies, once every job's fate holds (delivered, or on the DLQ)."""
        if self.replies is None:
            return
        for item, outcome, _ in batch.outcomes:
            if item.job.reply and outcome == "delivered":
                self.replies.recorded(item.job)
            elif item.job.reply and outcome == "dead-lettered":
                self.replies.not_recorded(item.job)

    def _tell_observer(self, items: list[_Item], batch: _Batch) -> None:
        """Each job's outcome, now that it holds: a re-enqueue that failed, or a record failed back
        without a decision, is `returned` (SQS delivers it again as it was)."""
        unsent = set(batch.unsent_requeues)
        told = set()
        for item, outcome, detail in batch.outcomes:
            if item.message_id in unsent and outcome in ("retrying", "deferred"):
                outcome, detail = "returned", "could not be re-enqueued"
            self.observer.job_outcome(item.job, outcome, detail)
            told.add(item.message_id)
        failed = set(batch.failures)
        for item in items:
            if item.message_id in failed and item.message_id not in told:
                self.observer.job_outcome(item.job, "returned", "returned to the queue")

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
            batch.unsent_requeues.append(batch.requeues[position][0])

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
                batch.report(item, "duplicate")
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
        # When and after how many attempts, kept in the record itself: `bridge events` reads it.
        delivered_at = iso(self.clock())
        try:
            self.records.complete_many(
                [
                    (
                        item.data,
                        {
                            "provider_id": o.provider_id,
                            "status": o.status,
                            "attempts": item.job.attempts + 1,
                            "delivered_at": delivered_at,
                        },
                    )
                    for item, o in delivered
                ]
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
            batch.report(item, "delivered")

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
            batch.report(item, "retrying")
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
            batch.report(item, "dead-lettered")

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
        batch.report(item, "deferred", why)
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
