"""How long and how often a delivery is retried, and the rate limits a worker paces itself under:
both derived from the settings (`config.RetrySettings`, `config.PacingSettings`)."""

from __future__ import annotations

import random
from dataclasses import dataclass, fields

from timeline_bridge import config, target_registry
from timeline_bridge.errors import RetryLaterError
from timeline_bridge.models import DeliveryJob


@dataclass(frozen=True, slots=True)
class RetryPolicy(config.RetrySettings):
    """How long and how often a job is retried: `config.RetrySettings` (every knob an environment
    variable, parsed once) and the delays it implies."""

    @classmethod
    def from_settings(cls, retry: config.RetrySettings) -> RetryPolicy:
        """The policy of `retry` (a function's `Settings.retry`)."""
        return cls(**{f.name: getattr(retry, f.name) for f in fields(retry)})

    def backoff(self, retries: int, rng: random.Random) -> float:
        """Full jitter: uniform(0, min(cap, base * 2^(retries-1)))."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** min(max(retries - 1, 0), 30))
        return rng.uniform(0.0, ceiling)

    def retry_delay(self, failure: RetryLaterError, retries: int, rng: random.Random) -> float:
        """The provider's requested delay (plus a little spread so workers do not wake together),
        else the throttle pause for a bare 429, else backoff."""
        if failure.retry_after is not None:
            wait = min(max(float(failure.retry_after), 0.0), self.max_delay)
            return wait + rng.uniform(0.0, min(1.0, 0.1 * wait))
        if failure.throttled:
            return self.throttle_pause + rng.uniform(0.0, min(1.0, 0.1 * self.throttle_pause))
        return self.backoff(retries, rng)

    def exhausted(self, job: DeliveryJob) -> bool:
        return job.retries >= self.max_attempts or job.throttled >= self.max_throttled


def _documented_rate_limits(target: str) -> tuple[tuple[int, float], ...]:
    """The target's documented limits (`TargetSpec.rate_limits`), paced at DELIVERY_PACE_FRACTION
    of each and split across DELIVER_MAX_CONCURRENCY workers."""
    return target_registry.target_spec(target).rate_limits if target_registry.is_target(target) else ()


def rate_limits(target: str, pacing: config.PacingSettings) -> tuple[tuple[int, float], ...]:
    """The limits the worker paces itself under: the documented ones (or `<TARGET>_RATE_LIMITS`
    "count/seconds,..."; `<TARGET>_MAX_REQUESTS_PER_SECOND`/`_PER_MINUTE` replace one window),
    windows scaled by DELIVERY_RATE_TIME_SCALE, counts by DELIVERY_PACE_FRACTION (0.8) and divided
    by DELIVER_MAX_CONCURRENCY (the workers sharing the provider's limit)."""
    configured = pacing.rate_limits.get(target, _documented_rate_limits(target))
    limits: dict[float, int] = {window: count for count, window in configured}
    limits.update(pacing.max_requests.get(target, {}))
    scale, fraction, workers = pacing.time_scale, pacing.fraction, pacing.workers
    return tuple(
        (max(1, int(count * fraction / workers)), window * scale) for window, count in sorted(limits.items())
    )
