"""Calls to the source APIs enrichment reads (HubSpot CRM, Slack Web API, Stora contacts).

They ride on the target clients' transport (`targets.http`: one pooled session, capped timeouts,
a total deadline and a cap on the answer read, no redirects, HTTPS or loopback only) and answer
with the same two exception types as target calls: `RetryLaterError` (429, 5xx, timeouts,
expired credentials) or `PermanentDeliveryError`.
A 429 also closes a per-API gate for the delay the provider asked for, so the events behind the
throttled one wait instead of hammering the API; so does an answer saying the quota is used up
(HubSpot's `X-HubSpot-RateLimit-Remaining: 0`), before any 429.

Each API client is built on one function's settings (its host, the HTTP deadline) and secrets (its
token, read at each request so a rotation shows), and shares the gate of its `Enrichment`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import requests

from timeline_bridge.errors import DeliveryFailure, PermanentDeliveryError, RetryLaterError
from timeline_bridge.targets import http

if TYPE_CHECKING:
    from timeline_bridge.config import Secrets, Settings

Clock = Callable[[], float]
DEFAULT_THROTTLE_SECONDS = 10.0


class NotFoundError(PermanentDeliveryError):
    """The record a fetch asked for does not exist (404, `user_not_found`, no identity). A fetch
    marked `optional: true` turns this into a null result instead of a failure."""


class RateGate:
    """Remembers, per API, until when the provider asked us to stay away."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._until: dict[str, float] = {}
        self._clock = clock
        self._lock = threading.Lock()

    def check(self, api: str) -> None:
        """Raise RetryLaterError while `api` is throttled, without calling it."""
        with self._lock:
            until = self._until.get(api, 0.0)
        wait = until - self._clock()
        if wait > 0:
            raise RetryLaterError(
                f"{api}: rate limited; waiting {wait:.1f}s before the next call",
                code="rate_limited",
                retry_after=wait,
                throttled=True,
            )

    def block(self, api: str, seconds: float | None) -> None:
        """Keep `api` closed for `seconds` (the provider's Retry-After or window)."""
        delay = DEFAULT_THROTTLE_SECONDS if seconds is None else max(seconds, 0.0)
        with self._lock:
            self._until[api] = max(self._until.get(api, 0.0), self._clock() + delay)


class SourceApi:
    """One API: where it lives, its bearer token, and how its answers are classified."""

    name: str = ""
    credential: str = ""  # the secret holding the bearer token

    def __init__(self, settings: Settings, secrets: Secrets, gate: RateGate | None = None) -> None:
        self.settings = settings
        self.secrets = secrets
        self.gate = gate or RateGate()

    def base_url(self) -> str:
        raise NotImplementedError

    def classify(self, response: requests.Response) -> Any:
        """The parsed answer, or raise the failure it stands for."""
        raise NotImplementedError

    def quota_wait(self, response: requests.Response) -> float | None:
        """Seconds to stay away when this answer says no calls are left in the current window
        (None: some are, or the API does not say)."""
        return None

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body=body)

    def gate_key(self) -> str:
        """Throttling is per API and host (a sandbox and the real API never share a gate)."""
        return f"{self.name} {self.base_url()}"

    def request(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None
    ) -> Any:
        self.gate.check(self.gate_key())
        token = self.secrets.get(self.credential)
        if not token:
            # Configuration, not the event: wait for the operator rather than drop the event.
            raise RetryLaterError(f"{self.credential} is not configured", code="credentials_missing")
        settings = self.settings
        try:
            url = http.check_base_url(self.base_url(), allow_http=settings.allow_http_targets) + path
        except http.InsecureTargetError as exc:
            raise RetryLaterError(str(exc), code="source_misconfigured") from None
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = http.encode_json(body)
        timeout = http.bounded_timeouts(http.timeouts(settings), settings.http_deadline)
        try:
            response = http.exchange(
                self.name,
                lambda: http.session().request(
                    method,
                    url,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    stream=True,
                ),
                deadline=settings.http_deadline,
                max_bytes=settings.http_max_answer_bytes,
            )
        except RetryLaterError as failure:
            # A read stores nothing: never ambiguous, whatever the transport saw.
            raise RetryLaterError(
                failure.message, status=failure.status, code=failure.code, details=failure.details
            ) from None
        if 300 <= response.status_code < 400:
            raise http.redirect_error(response, self.name)
        # A 429 closes the gate by its own delay (Retry-After first), in classify.
        wait = self.quota_wait(response) if response.status_code != 429 else None
        if wait is not None:
            self.gate.block(self.gate_key(), wait)
        return self.classify(response)

    def throttled(self, failure: DeliveryFailure) -> DeliveryFailure:
        """Close the gate for a throttling failure; returns it for raising."""
        if isinstance(failure, RetryLaterError) and failure.throttled:
            self.gate.block(self.gate_key(), failure.retry_after)
        return failure
