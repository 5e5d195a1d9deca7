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

# One module per job (policy, pacing, pause, records, queues, outcomes, worker); this one wires
# them for a target and re-exports what the functions, the tooling and the tests use.

from __future__ import annotations

from typing import Any

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
from timeline_bridge.delivery.pacing import Pacer, pacer_for
from timeline_bridge.delivery.pause import ThrottleGate
from timeline_bridge.delivery.policy import RetryPolicy, rate_limits
from timeline_bridge.delivery.queues import SQS_MAX_DELAY, SQS_MAX_VISIBILITY, JobQueues
from timeline_bridge.delivery.records import MIN_RECORD_TTL, DeliveredRecords
from timeline_bridge.delivery.worker import EARLY_TOLERANCE, Deliverer
from timeline_bridge.targets.base import TargetClient
from timeline_bridge.wiring import Dependencies, Handler, Stage

__all__ = [
    "EARLY_TOLERANCE",
    "METRIC_CREDENTIALS_REJECTED",
    "METRIC_DEAD_LETTERED",
    "METRIC_DELIVERED",
    "METRIC_DUPLICATE",
    "METRIC_RETRIED",
    "MIN_RECORD_TTL",
    "SQS_MAX_DELAY",
    "SQS_MAX_VISIBILITY",
    "Claim",
    "ClaimState",
    "DeliveredRecords",
    "Deliverer",
    "JobQueues",
    "Pacer",
    "RetryPolicy",
    "ThrottleGate",
    "build",
    "dead_letter_record",
    "deliverer_for",
    "failure_category",
    "handle",
    "iso",
    "pacer_for",
    "parse_iso",
    "rate_limits",
    "stage",
    "stops_target",
]


def build(dependencies: Dependencies, target: str, client: TargetClient | None = None) -> Deliverer:
    """The deliverer for `target` on a function's dependencies (its table, queues, knobs, and the
    target's client built from its settings and secrets unless `client` is given)."""
    from timeline_bridge.replies import replies_for
    from timeline_bridge.targets import client_for

    settings = dependencies.settings
    policy = RetryPolicy.from_settings(settings.retry)
    table = settings.idempotency_table
    if not table:
        raise RuntimeError("IDEMPOTENCY_TABLE is not set: delivery never runs without dedupe")
    dynamodb = dependencies.aws("dynamodb")
    return Deliverer(
        target,
        client or client_for(target, settings, dependencies.secrets),
        records=DeliveredRecords(table, target, ttl=policy.record_ttl, dynamodb=dynamodb),
        queues=JobQueues(
            target,
            sqs=dependencies.aws("sqs"),
            queue_url=settings.queue_url(target),
            dead_letter_url=settings.queue_url(target, dead_letter=True),
        ),
        gate=ThrottleGate(table, target, dynamodb=dynamodb),
        pacer=pacer_for(target, settings.pacing),
        policy=policy,
        clock=dependencies.clock,
        observer=dependencies.observer,
        replies=replies_for(dependencies),
    )


def deliverer_for(dependencies: Dependencies) -> Deliverer:
    """The deliverer of a delivery function: the target its settings name (`TARGET`)."""
    target = dependencies.settings.target
    if not target:
        raise RuntimeError("TARGET is not set")
    return build(dependencies, target)


def stage() -> Stage:
    """The stage a delivery function's handler holds."""

    def build_stage(dependencies: Dependencies) -> Handler:
        deliverer = deliverer_for(dependencies)
        return lambda event, context: deliverer.process(event.get("Records") or [], context)

    return Stage(build_stage)


def handle(
    event: dict[str, Any], context: Any = None, *, dependencies: Dependencies | None = None
) -> dict[str, Any]:
    """One SQS batch through a deliverer built for it (default: from this process's environment)."""
    return deliverer_for(dependencies or Dependencies.from_environ()).process(
        event.get("Records") or [], context
    )
