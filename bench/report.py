"""Figures and their rows, the printed table and `bench/results.json`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One line of the table: what was measured, against what, and whether the goal holds."""

    name: str
    value: str
    baseline: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None  # None: no goal, or not measured
    data: dict[str, Any] = field(default_factory=dict)
    unit: str = "x"  # how the ratio reads: "x" (times the baseline) or "%" (a share)


@dataclass
class Figure:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    not_measured: str | None = None  # why, when the figure could not be taken
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def skip(self, reason: str) -> Figure:
        self.not_measured = reason
        return self

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row


def fmt_ratio(value: float | None, unit: str = "x") -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.0%}"
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}x"


def table(figures: list[Figure]) -> str:
    """A fixed-width text table of every figure, goals and verdicts included."""
    header = ("figure", "measured", "baseline", "ratio", "goal", "met")
    lines: list[tuple[str, ...]] = [header]
    for fig in figures:
        if fig.not_measured:
            lines.append((fig.title, f"not measured: {fig.not_measured}", "", "", "", ""))
            continue
        for row in fig.rows:
            met = "" if row.met is None else ("yes" if row.met else "NO")
            lines.append((row.name, row.value, row.baseline, fmt_ratio(row.ratio, row.unit), row.goal, met))
    widths = [min(max(len(line[i]) for line in lines), 60) for i in range(len(header))]
    out = []
    for n, line in enumerate(lines):
        cells = [cell.ljust(widths[i]) if i < len(line) - 1 else cell for i, cell in enumerate(line)]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def markdown_table(figures: list[Figure]) -> str:
    """The same table in Markdown, for the README's performance section."""
    out = ["| figure | measured | baseline | ratio | goal | met |", "|---|---|---|---:|---|---|"]
    for fig in figures:
        if fig.not_measured:
            out.append(f"| {fig.title} | not measured: {fig.not_measured} | | | | |")
            continue
        for row in fig.rows:
            met = "" if row.met is None else ("yes" if row.met else "**no**")
            out.append(
                f"| {row.name} | {row.value} | {row.baseline} | {fmt_ratio(row.ratio, row.unit)} | {row.goal} | {met} |"
            )
    return "\n".join(out)


def write_json(path: Path, meta: dict[str, Any], figures: list[Figure]) -> None:
    payload = {"meta": meta, "figures": {f.key: asdict(f) for f in figures}}
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
