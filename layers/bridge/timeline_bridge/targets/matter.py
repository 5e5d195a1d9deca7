"""Matter: `POST /v1/timeline_events` (append-only), with `Matter-Version` and a UUID
`Idempotency-Key` on every attempt.

Contract: schemas/targets/matter.schema.json, proven by tests/contract/test_matter_contract.py.
Errors are RFC 7807 problems with a stable `code`. Matter never memoises a 5xx, so every retry
reuses the same key: a lost answer is replayed, a failure runs fresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

from timeline_bridge import keys
from timeline_bridge.errors import DeliveryFailure, PermanentDeliveryError, RetryLaterError
from timeline_bridge.models import DeliveryJob
from timeline_bridge.targets.base import Delivered, Outcome, TargetClient
from timeline_bridge.targets.http import (
    as_dict,
    as_list,
    as_str,
    capped_wait,
    json_body,
    redirect_error,
    retry_after,
)
from timeline_bridge.targets.spec import Contract, TargetSpec

if TYPE_CHECKING:
    from timeline_bridge.config import Secrets, Settings

EVENTS_PATH = "/v1/timeline_events"
CREDENTIAL = "MATTER_API_KEY"
DEFAULT_VERSION = "2026-06-10"
TEST_BASE_URL = "https://api.test.mattermode.com"
# The three names the docs give the same 409 (conventions, idempotency page, error catalog).
IDEMPOTENCY_CONFLICT_CODES = frozenset(
    {
        "idempotency_key_replay",
        "idempotency_key_reused_with_different_body",
        "validation_idempotency_key_conflict",
    }
)
# 401 codes that a retry cannot fix: the key's mode does not match the host.
PERMANENT_AUTH_CODES = frozenset({"auth_token_mode_mismatch"})


def matter_version(settings: Settings) -> str:
    """The Matter-Version header: MATTER_VERSION, else the version this client was written for."""
    return settings.matter_version or DEFAULT_VERSION


def base_url_for(api_key: str, settings: Settings) -> str | None:
    """A test key talks to the test host unless MATTER_BASE_URL says otherwise (a live key on the
    test host, or the reverse, is refused with 401 auth_token_mode_mismatch)."""
    if settings.base_url_override("matter"):
        return None  # the transport sends to it
    return TEST_BASE_URL if api_key.startswith("sk_test_") else None


def classify(response: requests.Response, *, now: float | None = None) -> Outcome:
    status = response.status_code
    body = as_dict(json_body(response))
    if 200 <= status < 300:  # documented: 200, 201, 202; any 2xx says Matter stored it
        return Delivered(as_str(body.get("id")), status)
    if 300 <= status < 400:
        return redirect_error(response, "matter")
    code = as_str(body.get("code"))
    fields: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": as_str(body.get("request_id")) or response.headers.get("Matter-Request-Id"),
        "details": [e for e in as_list(body.get("errors")) if isinstance(e, dict)],
        "message": as_str(body.get("detail")) or as_str(body.get("title")) or f"Matter answered {status}",
    }
    if status == 429:
        delay = retry_after(response, "matter", now=now)
        asked = body.get("retry_after")
        if delay is None and isinstance(asked, (int, float)) and not isinstance(asked, bool):
            delay = capped_wait("matter", max(float(asked), 0.0), throttled=True, source="retry_after")
        return RetryLaterError(**fields, retry_after=delay, throttled=True)
    if status >= 500:
        return RetryLaterError(**fields, retry_after=retry_after(response, "matter", now=now))
    if status == 401 and code not in PERMANENT_AUTH_CODES:
        return RetryLaterError(**fields)  # a revoked or rotated key: an operator fixes it
    if status == 409 and (code in IDEMPOTENCY_CONFLICT_CODES or "idempotency" in str(body.get("type", ""))):
        # Same key, different body: the job changed since Matter stored it under this key (a
        # mapping edit before a redrive, say). Matter keeps the first body; whether that one is
        # right is a person's call, so it is neither counted as delivered nor dropped.
        fields["message"] = (
            f"{fields['message']} (Matter already holds a different body under this idempotency key; "
            "the job changed after a first delivery. Check the timeline before redriving.)"
        )
    return PermanentDeliveryError(**fields)


class MatterClient(TargetClient):
    """Appends one Matter timeline event per job."""

    name = "matter"
    credential = CREDENTIAL

    def __init__(self, settings: Settings, secrets: Secrets, **options: Any) -> None:
        super().__init__(settings, secrets, **options)
        self._settings = settings
        self._version = matter_version(settings)

    def _send_one(self, job: DeliveryJob) -> Outcome:
        try:
            api_key = self._require_token()
            headers = {
                "Authorization": f"Bearer {api_key}",
                "Matter-Version": self._version,
                "Idempotency-Key": keys.job_uuid(job.key),
                "Accept": "application/json",
                "Content-Type": "application/json",
            }
            host = base_url_for(api_key, self._settings)
            response = self._transport.post(EVENTS_PATH, job.body, headers, base_url=host)
        except DeliveryFailure as failure:
            return failure
        outcome = classify(response, now=self._clock())
        if isinstance(outcome, Delivered) and outcome.provider_id is None:
            self._note_unexpected_success(response, "id", [job.key])
        return outcome


def build_client(settings: Settings, secrets: Secrets) -> MatterClient:
    return MatterClient(settings, secrets)


SPEC = TargetSpec(
    name="matter",
    base_url="https://api.mattermode.com",
    credential=CREDENTIAL,
    contracts=(Contract("matter", EVENTS_PATH),),
    build_client=build_client,
    rate_limits=((100, 1.0), (1000, 60.0)),
    configured_headers=frozenset({"matter-version"}),
)
