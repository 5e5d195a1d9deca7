"""Figure 3: mapping cost. For every shipped mapping, the engine's per-event work (context,
`when`, render, required fields, target contract validation) against the same mapping done with
the libraries it is built on (`bench.libraries`: jmespath and fastjsonschema alone), asserted to
give the same body first. `vs_libraries` = engine cost / libraries cost; the goal is <= 1.0."""

from __future__ import annotations

import cProfile
import pstats
from pathlib import Path
from typing import Any

from bench.context import MAPPINGS_DIR, ROOT
from bench.libraries import library_mapping
from bench.report import Figure, Row
from bench.stats import calibrated_rate, first_difference, fmt_rate, ratio

GOAL = 1.0
ROUNDS = 3  # engine and libraries alternate, so drift hits both alike; the best round counts


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


def measured_case(cases: list[Any]) -> Any | None:
    """The case a mapping is measured on: its first with an expected body (output, else contains)."""
    for want in ("output", "contains"):
        for case in cases:
            if want in case.expect:
                return case
    return None


def measured_input(mapping: Any) -> tuple[Any, Any, dict[str, Any]] | None:
    """(case, envelope, enrichment) of the case `mapping` is measured on, from its cases file
    beside it; None when no case has an expected body. The mapping and route figures both use it."""
    from timeline_bridge_tools.mapping.cases import case_envelope, cases_path, load_cases

    case = measured_case(load_cases(cases_path(MAPPINGS_DIR / Path(mapping.file).name)))
    if case is None:
        return None
    return case, case_envelope(case, mapping, ROOT), dict(case.enrichment)


def run() -> Figure:
    fig = Figure("mapping", "3. Mapping (events/s per core)")
    try:
        from timeline_bridge.mapping import load_mappings
    except ImportError as exc:
        return fig.skip(f"mapping engine not importable ({exc})")
    if not any(MAPPINGS_DIR.glob("*.yaml")):
        return fig.skip("no shipped mappings (mappings/*.yaml)")
    mappings = load_mappings(MAPPINGS_DIR)
    for mapping in mappings:
        label = f"map {mapping.name}"
        measured = measured_input(mapping)
        if measured is None:
            fig.add(Row(label, "not measured: no case with an expected body"))
            continue
        case, envelope, enrichment = measured
        key = mapping.key(envelope)

        def engine(
            mapping: Any = mapping, envelope: Any = envelope, enrichment: Any = enrichment, key: str = key
        ) -> Any:
            context = mapping.context(envelope, enrichment, key)
            return mapping.render_body(context) if mapping.applies_to(context) else None

        try:
            expected = engine()
        except Exception as exc:  # one broken mapping must not hide the others
            fig.add(Row(label, f"not measured: engine failed: {exc}"))
            continue
        if expected is None:
            fig.add(Row(label, f"not measured: the mapping skips its own case {case.name!r}"))
            continue
        meta = mapping.context(envelope, enrichment, key)["meta"]
        baseline = library_mapping(mapping, expected)

        def libraries(
            baseline: Any = baseline,
            event: Any = envelope.event,
            meta: Any = meta,
            enrichment: Any = enrichment,
        ) -> Any:
            return baseline(event, dict(meta), enrichment)

        diff = first_difference(expected, libraries())
        if diff:
            fig.add(Row(label, f"not measured: the libraries' body differs at {diff}"))
            continue

        engine_rates, library_rates = [], []
        for _ in range(ROUNDS):
            engine_rates.append(calibrated_rate(engine, target_s=0.05, repeats=5))
            library_rates.append(calibrated_rate(libraries, target_s=0.05, repeats=5))
        eng, base = max(engine_rates), max(library_rates)
        vs_libraries = ratio(base, eng)
        met = vs_libraries is not None and vs_libraries <= GOAL
        row = fig.add(
            Row(
                label,
                f"{fmt_rate(eng)} ({1e6 / eng:.1f} µs/event)",
                f"libraries {fmt_rate(base)} ({1e6 / base:.1f} µs)",
                vs_libraries,
                f"<= {GOAL}x",
                met,
                data={
                    "engine_per_s": eng,
                    "libraries_per_s": base,
                    "engine_us": 1e6 / eng,
                    "libraries_us": 1e6 / base,
                    "vs_libraries": vs_libraries,
                    "target": mapping.target,
                    "case": case.name,
                },
            )
        )
        if not met:
            row.data["profile"] = profile_top(engine)
    fig.notes.append(
        "vs_libraries = engine cost / libraries cost (jmespath.compile'd expressions searched with the "
        "bridge's functions, body assembled, required checked, fastjsonschema validation); "
        f"best of {ROUNDS * 5} calibrated loops each, engine and libraries alternating"
    )
    return fig
