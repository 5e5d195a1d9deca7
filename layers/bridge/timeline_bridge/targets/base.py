"""The interface every target client implements: build the request, send it, classify the answer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from timeline_bridge.errors import DeliveryFailure
from timeline_bridge.models import DeliveryJob


@dataclass(frozen=True, slots=True)
class Delivered:
    """The provider stored the event (or already had it: an idempotent replay)."""

    provider_id: str | None
    status: int
    replayed: bool = False


Outcome = Delivered | DeliveryFailure  # RetryLaterError or PermanentDeliveryError


class TargetClient(ABC):
    """One provider. `send` takes up to `max_batch_size` jobs and returns one outcome per job, in order."""

    name: str
    max_batch_size: int = 1

    @abstractmethod
    def send(self, jobs: Sequence[DeliveryJob]) -> list[Outcome]:
        """Deliver `jobs`; never raises for a provider answer: every job gets an outcome."""
