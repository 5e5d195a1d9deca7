"""Stora Public API 2025-09: `POST /2025-09/timeline/events`, one event per request.

Contract: schemas/targets/stora.schema.json, proven by tests/contract/test_stora_contract.py.
Errors come as `{"error": {code, type, message, details[{message, pointer}], links, request_id}}`;
429 carries `RateLimit-Reset` (UTC epoch seconds), no Retry-After.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

from timeline_bridge.errors import DeliveryFailure, PermanentDeliveryError, RetryLaterError
from timeline_bridge.models import DeliveryJob
from timeline_bridge.targets.base import Delivered, Outcome, TargetClient
from timeline_bridge.targets.http import (
    as_dict,
    as_list,
    as_str,
    capped_wait,
    json_body,
    parse_ratelimit_reset,
    redirect_error,
    retry_after,
)
from timeline_bridge.targets.spec import Contract, TargetSpec

if TYPE_CHECKING:
    from timeline_bridge.config import Secrets, Settings

API_VERSION = "2025-09"
EVENTS_PATH = f"/{API_VERSION}/timeline/events"
CREDENTIAL = "STORA_TOKEN"


def idempotency_key(job: DeliveryJob) -> str:
    """The job key, or a derived one once Stora has answered 5xx.

    Stora stores the answer to a keyed POST for 24 h "whether the request succeeds or fails" and
    replays it, 5xx included. Retrying a 5xx under the same key would get the same stored 5xx for
    a day, so each 5xx moves the job to the next key generation (`<key>-r1`, `-r2`, ...). A lost
    answer or a timeout keeps the key: that replay is exactly what dedupes the retry.
    """
    return job.key if job.key_generation <= 0 else f"{job.key}-r{job.key_generation}"


def _failure_fields(response: requests.Response) -> dict[str, Any]:
    error = as_dict(as_dict(json_body(response)).get("error"))
    return {
        "status": response.status_code,
        "code": as_str(error.get("code")),
        "request_id": as_str(error.get("request_id")),
        "details": [d for d in as_list(error.get("details")) if isinstance(d, dict)],
        "message": as_str(error.get("message")) or f"Stora answered {response.status_code}",
    }


def classify(response: requests.Response, job: DeliveryJob, *, now: float | None = None) -> Outcome:
    """Turn Stora's answer to `job` into an outcome (may advance `job.key_generation`)."""
    status = response.status_code
    if 200 <= status < 300:
        event = as_dict(as_dict(json_body(response)).get("event"))
        return Delivered(as_str(event.get("id")), status)
    if 300 <= status < 400:
        return redirect_error(response, "stora")
    fields = _failure_fields(response)
    if status == 429:
        delay = capped_wait(
            "stora",
            parse_ratelimit_reset(response.headers.get("RateLimit-Reset"), now=now),
            throttled=True,
            source="RateLimit-Reset",
        )
        if delay is None:
            delay = retry_after(response, "stora", now=now)
        return RetryLaterError(**fields, retry_after=delay, throttled=True)
    if status >= 500:
        job.key_generation += 1  # see idempotency_key: the old key now replays this 5xx
        return RetryLaterError(**fields, retry_after=retry_after(response, "stora", now=now))
    if status == 401:
        # invalid_token: a rotated or expired token is fixed by an operator, not by the job.
        return RetryLaterError(**fields)
    return PermanentDeliveryError(**fields)


class StoraClient(TargetClient):
    """Creates one Stora timeline event per job, keyed by the job's idempotency key."""

    name = "stora"
    credential = CREDENTIAL

    def _send_one(self, job: DeliveryJob) -> Outcome:
        try:
            headers = {
                "Authorization": f"Bearer {self._require_token()}",
                "Accept": "application/json",
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key(job),
            }
            response = self._transport.post(EVENTS_PATH, job.body, headers)
        except DeliveryFailure as failure:
            return failure
        outcome = classify(response, job, now=self._clock())
        if isinstance(outcome, Delivered) and outcome.provider_id is None:
            self._note_unexpected_success(response, "event.id", [job.key])
        return outcome


def build_client(settings: Settings, secrets: Secrets) -> StoraClient:
    return StoraClient(settings, secrets)


SPEC = TargetSpec(
    name="stora",
    base_url="https://public-api.stora.co",
    credential=CREDENTIAL,
    contracts=(Contract("stora", EVENTS_PATH),),
    build_client=build_client,
    rate_limits=((10, 1.0), (60, 60.0)),
)
