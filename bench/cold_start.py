"""Figure 1: ingest cold start. Each source handler imported by path in a fresh interpreter, as Lambda
does (function folder first on the path, then the layer), against bare boto3 + an SQS client."""

from __future__ import annotations

from pathlib import Path

from timeline_bridge import SOURCES

from bench.context import FUNCTIONS_DIR, LAYER_DIR, ImportRun, lambda_like_env, measure_import
from bench.report import Figure, Row
from bench.stats import fmt_ms, median, ratio, self_time_by_package

GOAL = 1.3
BASELINE_CODE = "import boto3\nboto3.client('sqs')"
# Modules the ingest path should not load at import (reliability.md §5, goal 10).
HEAVY = (
    "aws_xray_sdk",
    "jsonschema",
    "requests",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.tracing",
    "yaml",
    "jmespath",
    "fastjsonschema",
    "boto3",
)


def handler_code() -> str:
    return "import app"


def _median_packages(runs: list[ImportRun], top: int = 8) -> dict[str, float]:
    per_run = [self_time_by_package(r.entries) for r in runs]
    names = {name for totals in per_run for name in totals}
    med = {name: median([totals.get(name, 0) for totals in per_run]) for name in names}
    return dict(sorted(med.items(), key=lambda kv: kv[1], reverse=True)[:top])


def run(runs: int = 11) -> Figure:
    fig = Figure("ingest_cold_start", "1. Ingest cold start (import)")
    env = lambda_like_env()
    variants: dict[str, tuple[str, list[Path]]] = {"boto3+sqs": (BASELINE_CODE, [])}
    missing = []
    for source in SOURCES:
        folder = FUNCTIONS_DIR / source
        if (folder / "app.py").is_file():
            variants[source] = (handler_code(), [folder, LAYER_DIR])
        else:
            missing.append(source)
    if len(variants) == 1:
        return fig.skip("no ingest handler yet (functions/<source>/app.py absent)")

    failed: dict[str, str] = {}
    for name, (code, path) in list(variants.items()):  # warm-up: writes valid .pyc, checks it imports
        try:
            measure_import(code, pythonpath=path, env=env)
        except RuntimeError as exc:
            failed[name] = str(exc)
            del variants[name]
    if "boto3+sqs" in failed:
        return fig.skip(f"baseline failed: {failed['boto3+sqs']}")

    results: dict[str, list[ImportRun]] = {name: [] for name in variants}
    for _ in range(runs):  # round-robin, so drift on a noisy machine hits every variant alike
        for name, (code, path) in variants.items():
            results[name].append(measure_import(code, pythonpath=path, env=env))

    base = median([r.total_us for r in results["boto3+sqs"]])
    base_wall = median([r.wall_us for r in results["boto3+sqs"]])
    fig.details["baseline"] = {
        "code": BASELINE_CODE,
        "import_us_median": base,
        "wall_us_median": base_wall,
        "runs": [r.total_us for r in results["boto3+sqs"]],
        "packages_self_us": _median_packages(results["boto3+sqs"]),
    }
    for source in SOURCES:
        if source in missing:
            fig.add(Row(f"cold import {source}", f"not measured: functions/{source}/app.py absent"))
            continue
        if source in failed:
            fig.add(Row(f"cold import {source}", f"not measured: import failed: {failed[source]}"))
            continue
        rs = results[source]
        value = median([r.total_us for r in rs])
        wall = median([r.wall_us for r in rs])
        loaded = sorted({h for r in rs for e in r.entries for h in HEAVY if e.module == h})
        r = ratio(value, base)
        fig.add(
            Row(
                f"cold import {source}",
                f"{fmt_ms(value)} (wall {fmt_ms(wall)})",
                f"boto3+SQS client {fmt_ms(base)} (wall {fmt_ms(base_wall)})",
                r,
                f"≤ {GOAL}x",
                r is not None and r <= GOAL,
                data={
                    "import_us_median": value,
                    "wall_us_median": wall,
                    "wall_ratio": ratio(wall, base_wall),
                    "runs": [x.total_us for x in rs],
                    "heavy_modules_loaded": loaded,
                    "packages_self_us": _median_packages(rs),
                },
            )
        )
    fig.notes.append(f"median of {runs} fresh interpreters each, after a warm-up run that writes .pyc")
    return fig
