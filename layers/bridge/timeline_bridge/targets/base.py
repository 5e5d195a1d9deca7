"""The interface every target client implements: build the request, send it, classify the answer."""

from __future__ import annotations

import time
from abc import ABC
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from timeline_bridge.errors import DeliveryFailure, RetryLaterError
from timeline_bridge.models import DeliveryJob
from timeline_bridge.observability import logger
from timeline_bridge.targets.http import Clock, Transport, answer_excerpt

if TYPE_CHECKING:
    from timeline_bridge.config import Secrets, Settings


@dataclass(frozen=True, slots=True)
class Delivered:
    """The provider stored the event (or already had it: an idempotent replay)."""

    provider_id: str | None
    status: int
    replayed: bool = False


Outcome = Delivered | DeliveryFailure  # RetryLaterError or PermanentDeliveryError


class TargetClient(ABC):
    """One provider. `send` takes up to `max_batch_size` jobs and returns one outcome per job, in order.

    A client is built from one function's settings and secrets. It sends with its bearer token,
    read from the secrets on each send (cached there) so a rotated secret is picked up without a
    restart, through its own `Transport` (the settings' host, no redirects). `token` replaces the
    secrets' value, `timeout` the configured timeouts. Providers that take one event per request
    implement `_send_one`; batching ones override `send`.
    """

    name: str
    credential: str  # the environment variable (or `<name>_SECRET_ID` secret) holding the token
    max_batch_size: int = 1

    def __init__(
        self,
        settings: Settings,
        secrets: Secrets,
        *,
        token: Callable[[], str | None] | None = None,
        timeout: tuple[float, float] | None = None,
        clock: Clock = time.time,
    ) -> None:
        self._token = token or (lambda: secrets.get(self.credential))
        self._transport = Transport(self.name, settings, timeout=timeout)
        self._clock = clock

    def send(self, jobs: Sequence[DeliveryJob]) -> list[Outcome]:
        """Deliver `jobs`; never raises for a provider answer: every job gets an outcome."""
        return [self._send_one(job) for job in jobs]

    def _send_one(self, job: DeliveryJob) -> Outcome:
        raise NotImplementedError(f"{type(self).__name__} sends one job per request or overrides send")

    def _note_unexpected_success(
        self, response: requests.Response, expected: str, keys: Sequence[str]
    ) -> None:
        """A 2xx whose body is not the provider's success shape (an HTML page from a proxy, JSON
        without the id): the provider said it stored the event, so it counts as delivered; the
        warning quotes a bounded excerpt of the answer, the credential sent and anything that looks
        like a credential or an e-mail address replaced."""
        try:
            sent = self._token()
        except Exception:
            excerpt = "(not quoted: the credential could not be read to hide it)"
        else:
            excerpt = answer_excerpt(response, hide=[sent] if sent else [])
        logger.warning(
            "target answered 2xx without its success shape; counted as delivered",
            extra={
                "target": self.name,
                "status": response.status_code,
                "expected": expected,
                "content_type": response.headers.get("Content-Type"),
                "keys": list(keys),
                "answer_excerpt": excerpt,
            },
        )

    def _require_token(self) -> str:
        """The token, or RetryLaterError: a missing credential is the operator's to fix, not the job's."""
        token = self._token()
        if not token:
            raise RetryLaterError(f"{self.credential} is not configured", code="credentials_missing")
        return token
