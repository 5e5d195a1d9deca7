"""Applied Labs v2026-04: `POST /v2026-04/events/` (the trailing slash is part of the route).

Contract: reference/targets.md §4. Applied documents no idempotency header. A metric is counted
once per `deduping_key` (set to the job key), but a contact activity is added on every request:
after an answer is lost, a job with a contact is not retried blindly.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from typing import Any

import requests

from timeline_bridge.errors import DeliveryFailure, PermanentDeliveryError, RetryLaterError
from timeline_bridge.models import DeliveryJob
from timeline_bridge.targets.base import Delivered, Outcome, TargetClient
from timeline_bridge.targets.http import (
    as_dict,
    as_list,
    as_str,
    json_body,
    redirect_error,
    retry_after,
)

EVENTS_PATH = "/v2026-04/events/"
SHOP_ENV = "APPLIED_SHOP_ID"
AMBIGUOUS_MESSAGE = (
    "The answer from Applied Labs was lost after the request was sent, so the activity may already "
    "be on the contact's timeline. Applied does not dedupe contact activities, so a blind retry "
    "could post it twice. Check the contact's timeline in Applied, then redrive this job only if "
    "the activity is missing."
)


def prepare(job: DeliveryJob) -> dict[str, Any]:
    """The request body: the job's body with `metric.deduping_key` = the job key."""
    body = copy.deepcopy(job.body)
    if not body.get("contact") and not body.get("metric"):
        raise PermanentDeliveryError(
            "Applied Labs needs at least one of contact or metric; the mapping produced neither",
            code="missing_contact_or_metric",
        )
    metric = body.get("metric")
    if isinstance(metric, dict):
        # The bridge owns the dedupe key: it is what makes a retried metric count once.
        metric["deduping_key"] = job.key
    return body


def _error_fields(response: requests.Response) -> dict[str, Any]:
    """Applied's error body is undocumented: accept `{detail, code}`, drf-standardized-errors'
    `{type, errors[{code, detail, attr}]}` and DRF's `{field: [messages]}`."""
    body = json_body(response)
    error = as_dict(body)
    items = [e for e in as_list(error.get("errors")) if isinstance(e, dict)]
    first = items[0] if items else {}
    code = as_str(error.get("code")) or as_str(first.get("code")) or as_str(error.get("type"))
    message = (
        as_str(error.get("detail"))
        or as_str(error.get("message"))
        or as_str(first.get("detail"))
        or as_str(first.get("message"))
        or f"Applied Labs answered {response.status_code}"
    )
    details: list[Any] = items
    if not items and error and "detail" not in error:
        details = [{"field": k, "messages": v} for k, v in error.items() if isinstance(v, list)]
    return {
        "status": response.status_code,
        "code": code,
        "request_id": as_str(error.get("request_id")) or response.headers.get("X-Request-Id"),
        "details": details,
        "message": message,
    }


def classify(response: requests.Response, job: DeliveryJob, *, now: float | None = None) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return Delivered(as_str(as_dict(json_body(response)).get("id")), status)
    if 300 <= status < 400:
        return redirect_error(response, "applied")
    fields = _error_fields(response)
    if status == 429:
        return RetryLaterError(
            **fields, retry_after=retry_after(response, "applied", now=now), throttled=True
        )
    if status == 504 and job.body.get("contact"):
        # A gateway timeout says nothing about whether Applied stored the activity.
        return PermanentDeliveryError(**{**fields, "code": "ambiguous_timeout", "message": AMBIGUOUS_MESSAGE})
    if status >= 500 or status == 401:
        return RetryLaterError(**fields, retry_after=retry_after(response, "applied", now=now))
    return PermanentDeliveryError(**fields)


class AppliedClient(TargetClient):
    """Records one Applied Labs event per job."""

    name = "applied"
    credential = "APPLIED_API_KEY"

    def __init__(self, *, shop_id: Callable[[], str | None] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self._shop_id = shop_id or (lambda: os.environ.get(SHOP_ENV, "").strip() or None)

    def _send_one(self, job: DeliveryJob) -> Outcome:
        try:
            api_key = self._require_token()
        except RetryLaterError as failure:
            return failure
        shop_id = self._shop_id()
        if not shop_id:
            return RetryLaterError(f"{SHOP_ENV} is not configured", code="credentials_missing")
        try:
            body = prepare(job)
        except PermanentDeliveryError as failure:
            return failure
        try:
            response = self._transport.post(
                EVENTS_PATH,
                body,
                {
                    "Authorization": f"Bearer {api_key}",
                    "X-Shop-Id": shop_id,
                    "Accept": "application/json",
                    "Content-Type": "application/json",
                },
            )
        except RetryLaterError as failure:
            if failure.ambiguous and body.get("contact"):
                return PermanentDeliveryError(
                    AMBIGUOUS_MESSAGE, code="ambiguous_timeout", details=[{"transport": failure.code}]
                )
            return failure  # metric-only: the deduping_key makes a retry count once
        except DeliveryFailure as failure:
            return failure
        outcome = classify(response, job, now=self._clock())
        if isinstance(outcome, Delivered) and outcome.provider_id is None:
            self._note_unexpected_success(response, "id", [job.key])
        return outcome


def build_client() -> AppliedClient:
    """The Applied Labs client; the shop, like the key, is read on each send."""
    return AppliedClient()
