"""Figure 1: ingest cold start. Each source handler imported by path in a fresh interpreter, as Lambda
does (function folder first on the path, then the layer), against bare boto3 + an SQS client.

Two rows per source:
- cold import: `-X importtime` of `import app` (the sum of top-level cumulative times), the
  figure the goal is set on;
- cold first answer: `import app` plus the first request, as deployed (the secret read through
  Secrets Manager, the dedupe claim in DynamoDB, the SendMessageBatch), against a loopback stub of
  those APIs, timed inside the interpreter. Lazy imports move cost from the import to the first
  request; this row shows whether they removed it or only moved it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from timeline_bridge import SOURCES

from bench.awsstub import AwsStub
from bench.context import FUNCTIONS_DIR, LAYER_DIR, ImportRun, lambda_like_env, measure_import
from bench.report import Figure, Row
from bench.stats import fmt_ms, median, ratio, self_time_by_package
from bench.webhooks import BODIES, SECRET_NAMES, SECRETS, local_settings, sign

GOAL = 1.3
BASELINE = "boto3+sqs"
BASELINE_CODE = "import boto3\nboto3.client('sqs')"
FIRST_REQUEST_CODE = """import json, os
import app
class _Context:
    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:bench"
    aws_request_id = "bench-request"
    def get_remaining_time_in_millis(self):
        return 3000
_answer = app.lambda_handler(json.loads(os.environ["BENCH_EVENT"]), _Context())
sys.stderr.write("--bench-answer " + json.dumps(_answer) + "\\n")"""
# Modules the ingest path should not load (docs/architecture.md, FM-03), and boto3 itself.
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


def _median_packages(runs: list[ImportRun], top: int = 8) -> dict[str, float]:
    per_run = [self_time_by_package(r.entries) for r in runs]
    names = {name for totals in per_run for name in totals}
    med = {name: median([totals.get(name, 0) for totals in per_run]) for name in names}
    return dict(sorted(med.items(), key=lambda kv: kv[1], reverse=True)[:top])


def _answer(run: ImportRun) -> dict[str, Any]:
    line = next((m for m in run.messages if m.startswith("--bench-answer ")), None)
    return json.loads(line.removeprefix("--bench-answer ")) if line else {}


def _reached_queue(answer: dict[str, Any]) -> bool:
    """The stub fails every SendMessageBatch entry: ingest answers 503, or for a Slack click the
    200 that asks the user to click again (Slack never retries interactivity)."""
    return answer.get("statusCode") == 503 or "try again" in str(answer.get("body", ""))


class _Variant:
    def __init__(self, code: str, path: list[Path], env: dict[str, str], source: str | None = None) -> None:
        self.code, self.path, self.env, self.source = code, path, env, source

    def measure(self) -> ImportRun:
        env = self.env
        if self.source:  # signed now: the timestamp window is 5 minutes
            body = BODIES[self.source](0)
            event = sign(self.source, body, timestamp=int(time.time())).function_url_event()
            env = dict(env, BENCH_EVENT=json.dumps(event))
        return measure_import(self.code, pythonpath=self.path, env=env)


def run(runs: int = 10, first_request_runs: int = 3) -> Figure:
    fig = Figure("ingest_cold_start", "1. Ingest cold start")
    missing = [s for s in SOURCES if not (FUNCTIONS_DIR / s / "app.py").is_file()]
    if len(missing) == len(SOURCES):
        return fig.skip("no ingest handler yet (functions/<source>/app.py absent)")
    with AwsStub({f"bench/{name}": value for name, value in SECRETS.items()}) as stub:
        deployed = lambda_like_env(
            AWS_ENDPOINT_URL=stub.url,
            EVENTS_QUEUE_URL=f"{stub.url}/123456789012/events",
            **{f"{name}_SECRET_ID": f"bench/{name}" for name in SECRET_NAMES.values()},
            **local_settings(),
        )
        variants: dict[str, _Variant] = {BASELINE: _Variant(BASELINE_CODE, [], lambda_like_env())}
        for source in SOURCES:
            if source in missing:
                continue
            path = [FUNCTIONS_DIR / source, LAYER_DIR]
            variants[f"import {source}"] = _Variant("import app", path, lambda_like_env())
            variants[f"first {source}"] = _Variant(FIRST_REQUEST_CODE, path, deployed, source)

        failed: dict[str, str] = {}
        for name, variant in list(variants.items()):  # warm-up: writes valid .pyc, checks it works
            try:
                first = variant.measure()
                if variant.source and not _reached_queue(_answer(first)):
                    raise RuntimeError(f"the first request did not reach the queue: {_answer(first)}")
            except RuntimeError as exc:
                failed[name] = str(exc)
                del variants[name]
        if BASELINE in failed:
            return fig.skip(f"baseline failed: {failed[BASELINE]}")

        results: dict[str, list[ImportRun]] = {name: [] for name in variants}
        for n in range(runs):  # round-robin, so drift on a noisy machine hits every variant alike
            for name, variant in variants.items():
                if name.startswith("first ") and n >= first_request_runs:
                    continue
                results[name].append(variant.measure())

    base_runs = results[BASELINE]
    base = median([r.total_us for r in base_runs])
    base_inproc = median([r.inproc_us for r in base_runs])
    fig.details["baseline"] = {
        "code": BASELINE_CODE,
        "import_us_median": base,
        "inproc_us_median": base_inproc,
        "runs": [r.total_us for r in base_runs],
        "packages_self_us": _median_packages(base_runs),
    }
    for source in SOURCES:
        for kind in ("import", "first"):
            name = f"{kind} {source}"
            label = f"cold {'import' if kind == 'import' else 'first answer'} {source}"
            if source in missing:
                fig.add(Row(label, f"not measured: functions/{source}/app.py absent"))
                continue
            if name in failed:
                fig.add(Row(label, f"not measured: {failed[name]}"))
                continue
            rs = results[name]
            loaded = sorted({h for r in rs for e in r.entries for h in HEAVY if e.module == h})
            data = {
                "import_us_median": median([r.total_us for r in rs]),
                "inproc_us_median": median([r.inproc_us for r in rs]),
                "wall_us_median": median([r.wall_us for r in rs]),
                "runs": [r.total_us for r in rs],
                "heavy_modules_loaded": loaded,
                "packages_self_us": _median_packages(rs),
            }
            if kind == "import":
                value, baseline, text = data["import_us_median"], base, "imports"
            else:
                value, baseline, text = data["inproc_us_median"], base_inproc, "import + first request"
            r = ratio(value, baseline)
            goal = kind == "import"  # the first answer is shown next to the same baseline, for scale
            fig.add(
                Row(
                    label,
                    f"{fmt_ms(value)} {text}",
                    f"boto3 + SQS client {fmt_ms(baseline)}",
                    r,
                    f"<= {GOAL}x" if goal else "",
                    (r is not None and r <= GOAL) if goal else None,
                    data=data,
                )
            )
    fig.notes.append(
        f"import: -X importtime sums, median of {runs} fresh interpreters (valid .pyc written first); "
        f"first answer: timed in-process, median of {first_request_runs}, AWS APIs on a loopback stub"
    )
    return fig
