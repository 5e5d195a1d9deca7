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


# A line a terminal or a table cell still holds: a provider may list a reason per field.
DETAILS_TEXT_LIMIT = 400
# Where a provider says a reason applies, by the key each target's error body uses for it
# (Stora's pointer, Applied's attr, Matter's field, HubSpot's in).
_DETAIL_PLACES = ("pointer", "attr", "field", "in")


def details_text(details: Any) -> str:
    """A failure's `details` (the provider's reason per field) as one line, e.g. ``value at
    `/contact` is required by the template; kind: kind is required.``. Reads the shapes the
    targets keep (a `message`, `detail` or `messages` and where it applies); anything else is
    shown as its keys and values. "" when there are none."""
    items = details if isinstance(details, list) else []
    text = "; ".join(part for part in (_detail_text(item) for item in items) if part)
    return text if len(text) <= DETAILS_TEXT_LIMIT else text[: DETAILS_TEXT_LIMIT - 1] + "…"


def _detail_text(item: Any) -> str:
    if not isinstance(item, dict):
        return "" if item in (None, "") else str(item)
    text = next((v for k in ("message", "detail") if isinstance(v := item.get(k), str) and v), "")
    if not text and isinstance(item.get("messages"), list):
        text = " ".join(str(m) for m in item["messages"])
    if not text:
        return ", ".join(
            f"{k}={json.dumps(v, default=str) if isinstance(v, dict | list) else v}" for k, v in item.items()
        )
    place = next((v for k in _DETAIL_PLACES if isinstance(v := item.get(k), str) and v), "")
    # Said already: a pointer quoted in the message (Stora's), a message that begins with its field.
    said = text.startswith(place) or (place.startswith("/") and place in text)
    return f"{place}: {text}" if place and not said else text


def reason_text(record: dict[str, Any] | None) -> str:
    """A dead-letter reason record (`job.dead_letter`, from either stage) as the one line a person
    reads in a terminal or a table: the reason, the provider's status, code, message and details
    for a refusal (`permanent_failure · 422 · invalid_content · The request body content is not
    valid. · value at `/contact` is required by the template`), the reason and where the mapping
    failed (`file:line: field: why`) for a route-stage one. "" for no record."""
    if not record:
        return ""
    if record.get("stage") == "route":
        parts = [record.get("reason"), record.get("message") or record.get("detail")]
    else:
        parts = [
            record.get("reason"),
            record.get("status"),
            record.get("provider_code"),
            record.get("provider_message"),
            details_text(record.get("details")),
        ]
    return " · ".join(str(p) for p in parts if p not in (None, ""))
