"""Where things are, and the environment every measured subprocess gets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.stats import IMPORT_MARKER, ImportEntry, parse_importtime, top_level_total_us

ROOT = Path(__file__).resolve().parent.parent
LAYER_DIR = ROOT / "layers" / "bridge"
FUNCTIONS_DIR = ROOT / "functions"
MAPPINGS_DIR = ROOT / "mappings"


def lambda_like_env(**extra: str) -> dict[str, str]:
    """What a Lambda function sees: region, dummy credentials, Powertools names; nothing reaches AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "POWERTOOLS_"))}
    env.update(
        AWS_DEFAULT_REGION="eu-west-1",
        AWS_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",  # noqa: S106 - dummy credentials, never used on a network
        AWS_LAMBDA_FUNCTION_NAME="bench",
        POWERTOOLS_SERVICE_NAME="timeline-bridge",
        POWERTOOLS_METRICS_NAMESPACE="TimelineBridge",
        EVENTS_QUEUE_URL="https://sqs.eu-west-1.amazonaws.com/123456789012/events",
        IDEMPOTENCY_TABLE="idempotency",
    )
    env.update(extra)
    return env


INPROC_PREFIX = "--bench-inproc-us "


@dataclass(frozen=True, slots=True)
class ImportRun:
    total_us: int  # summed top-level cumulative import time after the marker
    wall_us: int  # the whole process, interpreter start included
    inproc_us: int  # the measured code alone, timed inside the interpreter (imports and all)
    entries: list[ImportEntry]
    messages: list[str]  # stderr lines that are not importtime output


def measure_import(
    code: str,
    *,
    pythonpath: list[Path],
    env: dict[str, str],
    cwd: Path = ROOT,
    extra_flags: tuple[str, ...] = (),
    python: str = sys.executable,
) -> ImportRun:
    """Run `code` in a fresh interpreter under `-X importtime`; raise with the error if it fails."""
    script = (
        f"import sys, time\nsys.stderr.write({IMPORT_MARKER!r} + '\\n')\nsys.stderr.flush()\n"
        f"_bench_t0 = time.perf_counter_ns()\n{code}\n"
        f"sys.stderr.write({INPROC_PREFIX!r} + str((time.perf_counter_ns() - _bench_t0) // 1000) + '\\n')\n"
    )
    run_env = dict(env, PYTHONPATH=os.pathsep.join(str(p) for p in pythonpath))
    t0 = time.perf_counter_ns()
    proc = subprocess.run(  # noqa: S603 - our own interpreter, our own code
        [python, *extra_flags, "-X", "importtime", "-c", script],
        cwd=cwd,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    wall = (time.perf_counter_ns() - t0) // 1000
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
        raise RuntimeError(errors[-1] if errors else f"exit status {proc.returncode}")
    entries = parse_importtime(proc.stderr)
    inproc = next(
        (
            int(line[len(INPROC_PREFIX) :])
            for line in proc.stderr.splitlines()
            if line.startswith(INPROC_PREFIX)
        ),
        0,
    )
    messages = [line for line in proc.stderr.splitlines() if not line.startswith("import time:")]
    return ImportRun(
        total_us=top_level_total_us(entries),
        wall_us=wall,
        inproc_us=inproc,
        entries=entries,
        messages=messages,
    )


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for in-process figures, and put everything back afterwards (a
    stage built inside reads them: its dependencies come from the environment it starts in)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextmanager
def quiet_logs() -> Iterator[None]:
    """Send Powertools log lines and EMF metric blobs to /dev/null while measuring: the cost of
    writing them stays in the figure, the terminal stays readable."""
    import contextlib

    from timeline_bridge.observability import logger

    handler = logger.registered_handler
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        old = handler.setStream(sink)
        try:
            yield
        finally:
            handler.setStream(old)
