"""`make bench`: take every figure, write bench/results.json, print the table.

.venv/bin/python -m bench                      # everything
.venv/bin/python -m bench --only mapping,package
.venv/bin/python -m bench --markdown           # also print the README table
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.context import ROOT
from bench.report import Figure, markdown_table, table, write_json

# figure key -> module with `run() -> Figure`, in the order of the table
FIGURES = {
    "ingest_cold_start": "bench.cold_start",
    "ingest_warm": "bench.ingest_warm",
    "mapping": "bench.mapping",
    "route": "bench.route",
    "delivery": "bench.delivery",
    "e2e": "bench.e2e",
    "package": "bench.package",
    "cost": "bench.cost",
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_figure(key: str) -> Figure:
    """One figure; a figure that breaks says why instead of stopping the others."""
    t0 = time.perf_counter()
    try:
        fig: Figure = importlib.import_module(FIGURES[key]).run()
    except Exception as exc:  # a missing or broken piece must not hide the other figures
        fig = Figure(key, key).skip(f"error: {type(exc).__name__}: {exc}")
        fig.details["traceback"] = traceback.format_exc()
    fig.seconds = round(time.perf_counter() - t0, 2)
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated figure keys: " + ", ".join(FIGURES))
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args(argv)
    keys = list(FIGURES)
    if args.only:
        keys = [k.strip() for k in args.only.split(",") if k.strip()]
        unknown = [k for k in keys if k not in FIGURES]
        if unknown:
            parser.error(f"unknown figure(s): {', '.join(unknown)}")

    started = time.perf_counter()
    figures = []
    for key in keys:
        print(f"bench: {key} ...", file=sys.stderr, flush=True)
        fig = run_figure(key)
        print(f"bench: {key} done in {fig.seconds:.1f} s", file=sys.stderr, flush=True)
        figures.append(fig)
    meta = {
        "taken_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "seconds": round(time.perf_counter() - started, 1),
    }
    write_json(args.output, meta, figures)
    print(table(figures))
    for fig in figures:
        for note in fig.notes:
            print(f"  {fig.title}: {note}")
    print(
        f"\n{meta['cpu']} x {meta['cpus']}, Python {meta['python']}, {meta['seconds']} s; wrote {args.output}"
    )
    if args.markdown:
        print()
        print(markdown_table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
