"""Figure 3: mapping throughput. For every shipped mapping, the engine's per-event work (context,
`when`, render, required fields, target contract validation) in events per second on one core,
against the same mapping written by hand (`bench.handwritten`), asserted equal first."""

from __future__ import annotations

import cProfile
import pstats
from pathlib import Path
from typing import Any

from bench.context import MAPPINGS_DIR, ROOT
from bench.handwritten import HANDWRITTEN
from bench.report import Figure, Row
from bench.stats import calibrated_rate, first_difference, fmt_rate, ratio

GOAL = 3.0
ROUNDS = 3  # engine and hand-written alternate, so drift hits both alike; the best round counts


def profile_top(fn: Any, calls: int = 3000, top: int = 8) -> list[str]:
    """The functions `fn` spends its own time in, largest first (cProfile, tottime)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:top]  # type: ignore[attr-defined]
    total = sum(v[2] for v in stats.stats.values()) or 1  # type: ignore[attr-defined]
    out = []
    for (file, line, name), (_, ncalls, tottime, _, _) in rows:
        out.append(
            f"{100 * tottime / total:5.1f}%  {ncalls / calls:4.1f}/event  {Path(file).name}:{line} {name}"
        )
    return out


def _pick_case(cases: list[Any]) -> Any | None:
    for want in ("output", "contains"):
        for case in cases:
            if want in case.expect:
                return case
    return None


def run() -> Figure:
    fig = Figure("mapping", "3. Mapping (events/s per core)")
    try:
        from timeline_bridge.mapping import load_mappings
        from timeline_bridge_tools.mapping.cases import case_envelope, cases_path, load_cases
    except ImportError as exc:
        return fig.skip(f"mapping engine not importable ({exc})")
    if not any(MAPPINGS_DIR.glob("*.yaml")):
        return fig.skip("no shipped mappings (mappings/*.yaml)")
    mappings = load_mappings(MAPPINGS_DIR)
    for mapping in mappings:
        label = f"map {mapping.name}"
        hand = HANDWRITTEN.get(mapping.name)
        if hand is None:
            fig.add(Row(label, "not measured: no hand-written baseline in bench/handwritten.py"))
            continue
        case = _pick_case(load_cases(cases_path(MAPPINGS_DIR / Path(mapping.file).name)))
        if case is None:
            fig.add(Row(label, "not measured: no case with an expected body"))
            continue
        envelope = case_envelope(case, mapping, ROOT)
        enrichment = dict(case.enrichment)
        key = mapping.key(envelope)
        meta = {"key": key}

        def engine(
            mapping: Any = mapping, envelope: Any = envelope, enrichment: Any = enrichment, key: str = key
        ) -> Any:
            context = mapping.context(envelope, enrichment, key)
            return mapping.render_body(context) if mapping.applies_to(context) else None

        def written(
            hand: Any = hand, event: Any = envelope.event, meta: Any = meta, enrichment: Any = enrichment
        ) -> Any:
            return hand(event, meta, enrichment)

        try:
            expected = engine()
        except Exception as exc:  # one broken mapping must not hide the others
            fig.add(Row(label, f"not measured: engine failed: {exc}"))
            continue
        got = written()
        if expected is None:
            fig.add(Row(label, f"not measured: the mapping skips its own case {case.name!r}"))
            continue
        diff = first_difference(expected, got)
        if diff:
            fig.add(Row(label, f"not measured: hand-written body differs at {diff}"))
            continue

        # The check of a body rendered elsewhere (`required:` + the target contract, planned at
        # load): what the engine runs when its one-function render and check steps aside. On the
        # fast path the same checks run inside the render, on the values as they are made.
        def validate(check: Any = mapping.check_body, body: Any = expected) -> None:
            check(body)

        engine_rates, hand_rates = [], []
        for _ in range(ROUNDS):
            engine_rates.append(calibrated_rate(engine, target_s=0.05, repeats=5))
            hand_rates.append(calibrated_rate(written, target_s=0.05, repeats=5))
        validate_rate = calibrated_rate(validate, target_s=0.05, repeats=5)
        eng, base = max(engine_rates), max(hand_rates)
        cost_ratio = ratio(base, eng)
        met = cost_ratio is not None and cost_ratio <= GOAL
        row = fig.add(
            Row(
                label,
                f"{fmt_rate(eng)} ({1e6 / eng:.1f} µs/event; check alone {1e6 / validate_rate:.1f} µs)",
                f"hand-written {fmt_rate(base)} ({1e6 / base:.1f} µs)",
                cost_ratio,
                f"<= {GOAL}x",
                met,
                data={
                    "engine_per_s": eng,
                    "handwritten_per_s": base,
                    "validate_per_s": validate_rate,
                    "engine_us": 1e6 / eng,
                    "handwritten_us": 1e6 / base,
                    "validate_us": 1e6 / validate_rate,
                    "target": mapping.target,
                    "case": case.name,
                },
            )
        )
        if not met:
            row.data["profile"] = profile_top(engine)
    fig.notes.append(
        "ratio = engine cost / hand-written cost (when + render + required + contract check); "
        f"best of {ROUNDS * 5} calibrated loops each, engine and hand-written alternating"
    )
    return fig
