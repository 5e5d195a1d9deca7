"""Pacing a worker under a provider's rate limits: a sliding-window limiter per target, shared by
the worker threads of one process."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

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


_pacers: dict[tuple[str, tuple[tuple[int, float], ...]], Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(target: str) -> Pacer:
    """The process-wide pacer of `target` (shared by every worker thread of this process)."""
    limits = rate_limits(target)
    with _pacers_lock:
        return _pacers.setdefault((target, limits), Pacer(limits))
