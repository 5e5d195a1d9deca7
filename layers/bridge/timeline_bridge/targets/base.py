"""The interface every target client implements: build the request, send it, classify the answer."""

from __future__ import annotations

import time
from abc import ABC
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from timeline_bridge import config
from timeline_bridge.errors import DeliveryFailure, RetryLaterError
from timeline_bridge.models import DeliveryJob
from timeline_bridge.targets.http import Clock, Transport


@dataclass(frozen=True, slots=True)
class Delivered:
    """The provider stored the event (or already had it: an idempotent replay)."""

    provider_id: str | None
    status: int
    replayed: bool = False


Outcome = Delivered | DeliveryFailure  # RetryLaterError or PermanentDeliveryError


class TargetClient(ABC):
    """One provider. `send` takes up to `max_batch_size` jobs and returns one outcome per job, in order.

    A client sends with its bearer token, read on each send (env or Secrets Manager, cached) so a
    rotated secret is picked up without a restart, through its own `Transport` (fixed host, no
    redirects). Providers that take one event per request implement `_send_one`; batching ones
    override `send`.
    """

    name: str
    credential: str  # the environment variable (or `<name>_SECRET_ID` secret) holding the token
    max_batch_size: int = 1

    def __init__(
        self,
        *,
        token: Callable[[], str | None] | None = None,
        timeout: tuple[float, float] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._token = token or (lambda: config.secret(self.credential))
        self._transport = Transport(self.name, timeout=timeout)
        self._clock = clock

    def send(self, jobs: Sequence[DeliveryJob]) -> list[Outcome]:
        """Deliver `jobs`; never raises for a provider answer: every job gets an outcome."""
        return [self._send_one(job) for job in jobs]

    def _send_one(self, job: DeliveryJob) -> Outcome:
        raise NotImplementedError(f"{type(self).__name__} sends one job per request or overrides send")

    def _require_token(self) -> str:
        """The token, or RetryLaterError: a missing credential is the operator's to fix, not the job's."""
        token = self._token()
        if not token:
            raise RetryLaterError(f"{self.credential} is not configured", code="credentials_missing")
        return token
