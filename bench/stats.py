"""Arithmetic and parsing shared by the figures: percentiles, `-X importtime` output, formatting."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# Written to stderr right before the measured import, so interpreter start-up imports are not counted.
IMPORT_MARKER = "--bench-import-start--"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(ordered[lo])
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


@dataclass(frozen=True, slots=True)
class ImportEntry:
    """One line of `-X importtime`: self and cumulative microseconds, nesting depth, module name."""

    self_us: int
    cumulative_us: int
    depth: int
    module: str


def parse_importtime(stderr: str, *, marker: str | None = IMPORT_MARKER) -> list[ImportEntry]:
    """Parse `python -X importtime` stderr. With `marker`, only lines after the marker line count.

    Lines look like `import time:       412 |       1234 |   json.decoder`; the module name is
    indented two spaces per nesting level after the single separating space.
    """
    lines = stderr.splitlines()
    if marker is not None:
        try:
            start = next(i for i, line in enumerate(lines) if line.strip() == marker)
        except StopIteration:
            raise ValueError(f"marker {marker!r} not found in importtime output") from None
        lines = lines[start + 1 :]
    entries = []
    for line in lines:
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|", 2)
        if len(parts) != 3:
            continue
        self_text, cum_text, name_part = parts
        if not self_text.strip().isdigit():  # the header line: "self [us] | cumulative | imported package"
            continue
        name = name_part.rstrip()
        indent = len(name) - len(name.lstrip(" "))
        entries.append(
            ImportEntry(
                self_us=int(self_text.strip()),
                cumulative_us=int(cum_text.strip()),
                depth=max(0, (indent - 1) // 2),
                module=name.strip(),
            )
        )
    return entries


def top_level_total_us(entries: Iterable[ImportEntry]) -> int:
    """Sum of cumulative time of top-level imports: the whole import cost of what was measured."""
    return sum(e.cumulative_us for e in entries if e.depth == 0)


def self_time_by_package(entries: Iterable[ImportEntry]) -> dict[str, int]:
    """Self time summed per root package (`botocore.client` counts for `botocore`), largest first."""
    totals: dict[str, int] = {}
    for e in entries:
        root = e.module.split(".", 1)[0]
        totals[root] = totals.get(root, 0) + e.self_us
    return dict(sorted(totals.items(), key=lambda kv: kv[1], reverse=True))


def ratio(value: float | None, baseline: float | None) -> float | None:
    if value is None or not baseline:
        return None
    return value / baseline


def fmt_ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.1f} ms"


def fmt_us(us: float | None) -> str:
    return "-" if us is None else f"{us:.1f} µs"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def fmt_rate(per_s: float | None) -> str:
    if per_s is None:
        return "-"
    return f"{per_s / 1000:.1f}k/s" if per_s >= 10_000 else f"{per_s:.0f}/s"


def calibrated_rate(fn: Callable[[], object], *, target_s: float = 0.3, repeats: int = 5) -> float:
    """Calls per second of `fn`: a loop calibrated to about `target_s`, the best of `repeats` runs
    (the least disturbed one: on a shared machine other work only ever slows a loop down)."""
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - t0
        if elapsed >= target_s / 5 or n >= 1 << 24:
            break
        n *= 4
    loops = max(1, int(n * target_s / max(elapsed, 1e-9)))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(loops):
            fn()
        rates.append(loops / (time.perf_counter() - t0))
    return max(rates)


def timed_samples_us(fn: Callable[[], object], count: int) -> list[float]:
    """Per-call wall time of `count` calls, in microseconds."""
    out = []
    clock = time.perf_counter_ns
    for _ in range(count):
        t0 = clock()
        fn()
        out.append((clock() - t0) / 1000)
    return out


def first_difference(expected: object, actual: object, path: str = "body") -> str | None:
    """Where two JSON-like values first differ (`body.variables.deal_name: 'A' != 'B'`), or None."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in list(expected) + [k for k in actual if k not in expected]:
            if key not in actual or key not in expected:
                return f"{path}.{key}: only in {'expected' if key in expected else 'actual'}"
            found = first_difference(expected[key], actual[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return f"{path}: {len(expected)} items != {len(actual)}"
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            found = first_difference(e, a, f"{path}[{i}]")
            if found:
                return found
        return None
    if expected != actual or type(expected) is not type(actual):
        return f"{path}: {expected!r:.60} != {actual!r:.60}"
    return None
