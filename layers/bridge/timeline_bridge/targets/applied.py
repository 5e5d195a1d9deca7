"""Applied Labs v2026-04: `POST /v2026-04/events/` (the trailing slash is part of the route).

Contract: schemas/targets/applied.schema.json, proven by tests/contract/test_applied_contract.py.
Applied documents no idempotency header. A metric is counted once per `deduping_key` (set to the
job key), but a contact activity is added on every request: after an answer is lost, a job with a
contact is not retried blindly.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import requests

from timeline_bridge.errors import DeliveryFailure, PermanentDeliveryError, RetryLaterError
from timeline_bridge.models import DeliveryJob
from timeline_bridge.observability import logger
from timeline_bridge.targets.base import Delivered, Outcome, TargetClient
from timeline_bridge.targets.http import (
    as_dict,
    as_list,
    as_str,
    json_body,
    redirect_error,
    retry_after,
)
from timeline_bridge.targets.spec import Contract, KeyField, TargetSpec

if TYPE_CHECKING:
    from timeline_bridge.config import Secrets, Settings

EVENTS_PATH = "/v2026-04/events/"
CREDENTIAL = "APPLIED_API_KEY"
SHOP_ENV = "APPLIED_SHOP_ID"
SHOP_ID_PATTERN = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
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


def provider_id(response: requests.Response) -> str | None:
    """The id Applied gives the stored event: `id`, else the contact's (`{"contact": {"id": …}}`)."""
    body = as_dict(json_body(response))
    return as_str(body.get("id")) or as_str(as_dict(body.get("contact")).get("id"))


def refuses_shop(status: int, fields: dict[str, Any]) -> bool:
    """The answer refuses the shop (or the key's access to it), which every job of this stack
    shares: 403, a 404 on the one fixed route (unknown shop), or a 400 naming X-Shop-Id."""
    if status in (403, 404):
        return True
    return status == 400 and any(
        isinstance(item, dict) and str(item.get("attr", "")).lower() == "x-shop-id"
        for item in fields["details"]
    )


def classify(response: requests.Response, job: DeliveryJob, *, now: float | None = None) -> Outcome:
    status = response.status_code
    if 200 <= status < 300:
        return Delivered(provider_id(response), status)
    if 300 <= status < 400:
        return redirect_error(response, "applied")
    fields = _error_fields(response)
    if refuses_shop(status, fields):
        # An operator's setting, not this job's fault: the target pauses until it is fixed,
        # instead of every job being dead-lettered.
        message = (
            f"Applied Labs refused the shop in {SHOP_ENV} ({fields['code'] or status}): {fields['message']}"
        )
        return RetryLaterError(**{**fields, "code": "target_misconfigured", "message": message})
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
    credential = CREDENTIAL

    def __init__(
        self,
        settings: Settings,
        secrets: Secrets,
        *,
        shop_id: Callable[[], str | None] | None = None,
        **options: Any,
    ) -> None:
        """`shop_id` replaces the configured shop (APPLIED_SHOP_ID)."""
        super().__init__(settings, secrets, **options)
        configured = settings.applied_shop_id
        self._shop_id = shop_id or (lambda: configured)

    def _send_one(self, job: DeliveryJob) -> Outcome:
        try:
            api_key = self._require_token()
        except RetryLaterError as failure:
            return failure
        shop_id = self._shop_id()
        if not shop_id:
            return RetryLaterError(f"{SHOP_ENV} is not configured", code="credentials_missing")
        if not SHOP_ID_PATTERN.match(shop_id):
            return RetryLaterError(f"{SHOP_ENV} is not a UUID", code="target_misconfigured")
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


def check_shop_id(value: str | None) -> None:
    """ValueError naming the setting when `APPLIED_SHOP_ID` is set but is not a UUID."""
    if value and not SHOP_ID_PATTERN.match(value):
        raise ValueError(f"{SHOP_ENV} must be a UUID (Applied Labs refuses any other X-Shop-Id)")


def build_client(settings: Settings, secrets: Secrets) -> AppliedClient:
    """The Applied Labs client of the shop in `settings`; the key is read on each send.

    A shop id that is not a UUID is reported when the client is built (cold start) and pauses
    the target on every send: failing the cold start instead would send each batch to the DLQ
    with no reason once its receives ran out."""
    try:
        check_shop_id(settings.applied_shop_id)
    except ValueError as exc:
        logger.error("target misconfigured", extra={"target": "applied", "reason": str(exc)})
    return AppliedClient(settings, secrets)


SPEC = TargetSpec(
    name="applied",
    base_url="https://core.appliedlabs.ai",
    credential=CREDENTIAL,
    contracts=(Contract("applied", EVENTS_PATH),),
    build_client=build_client,
    rate_limits=((5, 1.0), (120, 60.0)),  # not documented: conservative
    rate_limits_documented=False,
    configured_headers=frozenset({"x-shop-id"}),
    # A metric counts once per deduping_key (see `prepare`).
    key_fields=(KeyField(("metric", "deduping_key")),),
)
