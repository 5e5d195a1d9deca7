"""Pacing a worker under a provider's rate limits: a sliding-window limiter per deliverer, shared
by its threads."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from timeline_bridge.config import PacingSettings
from timeline_bridge.delivery.policy import rate_limits


class Pacer:
    """A sliding-window limiter: at most `count` sends in any `window` seconds, for every pair."""

    def __init__(
        self, limits: Sequence[tuple[int, float]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = tuple(limits)
        self._clock = clock
        self._sent: deque[float] = deque(maxlen=max((c for c, _ in self.limits), default=1))
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """0.0 after counting one send that may go now; else the seconds until one may."""
        if not self.limits:
            return 0.0
        with self._lock:
            now = self._clock()
            wait = 0.0
            for count, window in self.limits:
                if len(self._sent) >= count and self._sent[-count] > now - window:
                    wait = max(wait, self._sent[-count] + window - now)
            if wait <= 0.0:
                self._sent.append(now)
            return wait


def pacer_for(target: str, pacing: PacingSettings) -> Pacer:
    """The pacer of a deliverer of `target` (its threads share it; each worker paces its share)."""
    return Pacer(rate_limits(target, pacing))
