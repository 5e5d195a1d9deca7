"""Per-cold-start caches for enrichment results.

Reference data (pipeline stage labels, Slack users, identity map entries) changes rarely and is
read on almost every event, so the route function's `Enrichment` keeps it for a TTL (it lives as
long as the Lambda container). Record data (a deal, its contacts, a permalink) is only shared
within one envelope, through `Memo`, so two mappings that fan out from the same event fetch the
deal once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

_MISSING = object()


class TTLCache:
    """A small LRU map whose entries expire `ttl` seconds after they were stored."""

    def __init__(self, *, max_entries: int = 2048, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._max = max_entries
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The live value stored under `key`, or `default` when absent or expired."""
        with self._lock:
            item = self._entries.get(key)
            if item is None:
                return default
            expires, value = item
            if expires <= self._clock():
                del self._entries[key]
                return default
            self._entries.move_to_end(key)
            return value

    def put(self, key: Hashable, value: Any, ttl: float) -> None:
        """Keep `value` for `ttl` seconds (a ttl of 0 or less stores nothing)."""
        if ttl <= 0:
            return
        with self._lock:
            self._entries[key] = (self._clock() + ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class Memo(dict):
    """Results of one envelope's fetches, keyed by (fetch kind, arguments): shared by every mapping
    that matches the event, dropped when the envelope is done."""


def cached(
    cache: TTLCache, key: Hashable, ttl: float, produce: Callable[[], Any], memo: Memo | None = None
) -> Any:
    """`produce()` once per `key`: served from `memo` (this envelope), then `cache` (this cold
    start, when `ttl` > 0), else computed and stored in both."""
    if memo is not None:
        hit = memo.get(key, _MISSING)
        if hit is not _MISSING:
            return hit
    if ttl > 0:
        hit = cache.get(key, _MISSING)
        if hit is not _MISSING:
            if memo is not None:
                memo[key] = hit
            return hit
    value = produce()
    if memo is not None:
        memo[key] = value
    cache.put(key, value, ttl)
    return value
