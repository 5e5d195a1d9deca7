"""The throttle pause of a target, shared by every worker: after a 429 (or a rejected credential)
no worker sends to the target until the pause is over."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from timeline_bridge.observability import logger


class ThrottleGate:
    """A per-target pause after a 429: item `throttle#<target>` (attribute `until`, epoch seconds)
    in the idempotency table, read before sending (cached briefly), only ever moved later."""

    def __init__(
        self,
        table: str,
        target: str,
        *,
        dynamodb: Any,
        clock: Callable[[], float] = time.time,
        cache_seconds: float = 1.0,
    ) -> None:
        self.table = table
        self.target = target
        self.dynamodb = dynamodb
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._local_until = 0.0
        self._read_at = -math.inf
        self._remote_until = 0.0
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        return f"throttle#{self.target}"

    def paused_until(self) -> float:
        """Epoch seconds until which the target is paused (in the past when it is not)."""
        now = self._clock()
        with self._lock:
            stale = now - self._read_at >= self._cache_seconds
        if stale and self.table:
            try:
                remote, _reason = self.shared_pause()
            except Exception:
                # The pause is an optimisation: the provider's next 429 re-establishes it.
                logger.warning("throttle pause unreadable", extra={"target": self.target}, exc_info=True)
                remote = self._remote_until
            with self._lock:
                self._remote_until, self._read_at = remote, now
        with self._lock:
            return max(self._local_until, self._remote_until)

    def shared_pause(self) -> tuple[float, str]:
        """The pause every worker sees, read now: (until, reason), `(0.0, "")` when none was set."""
        item = self.dynamodb.get_item(TableName=self.table, Key={"id": {"S": self.key}}).get("Item")
        if not item:
            return 0.0, ""
        return float(item["until"]["N"]), item.get("reason", {}).get("S", "")

    def pause(self, until: float, reason: str = "") -> None:
        """Pause the target until `until` (epoch seconds) for every worker."""
        with self._lock:
            self._local_until = max(self._local_until, until)
        if not self.table:
            return
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"id": {"S": self.key}},
                UpdateExpression="SET #until = :until, #expiration = :expiration, #reason = :reason",
                ConditionExpression="attribute_not_exists(#until) OR #until < :until",
                ExpressionAttributeNames={
                    "#until": "until",
                    "#expiration": "expiration",
                    "#reason": "reason",
                },
                ExpressionAttributeValues={
                    ":until": {"N": f"{until:.3f}"},
                    ":expiration": {"N": str(int(until) + 86_400)},
                    ":reason": {"S": reason[:200] or "throttled"},
                },
            )
        except Exception as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code != "ConditionalCheckFailedException":  # a later pause is already there
                logger.warning("throttle pause not shared", extra={"target": self.target}, exc_info=True)
