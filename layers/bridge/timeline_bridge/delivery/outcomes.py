"""What a delivery attempt came to, in words people and dashboards read: the metric names, the
failure categories, the dead-letter reason record, and the timestamps jobs carry."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from timeline_bridge.errors import (
    CONFIGURATION_CODES,
    DeliveryFailure,
    PermanentDeliveryError,
    RetryLaterError,
)
from timeline_bridge.models import DeliveryJob

METRIC_DELIVERED = "TimelineEventDelivered"
METRIC_RETRIED = "TimelineEventRetried"
METRIC_DEAD_LETTERED = "TimelineEventDeadLettered"
METRIC_DUPLICATE = "TimelineEventDuplicateSuppressed"
METRIC_CREDENTIALS_REJECTED = "TargetCredentialsRejected"


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
