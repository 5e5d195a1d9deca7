"""The fuzz smoke run of `make test`: every harness for a few thousand inputs, zero findings.

The harnesses run in subprocesses (`python -m tests.fuzz`), because libFuzzer takes over the
process it runs in; the seed is fixed so the run is the same every time. `make fuzz` runs the same
harnesses for far longer with a random seed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .harnesses import HARNESSES

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
RUNS = 2000


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    artifacts = tmp_path_factory.mktemp("fuzz-artifacts")
    command = [sys.executable, "-m", "tests.fuzz", "--runs", str(RUNS), "--seed", "1"]
    command += ["--max-time", "120", "--json", "--artifacts", str(artifacts)]
    process = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=280, check=False)
    try:
        report = json.loads(process.stdout)
    except ValueError:
        pytest.fail(f"the fuzz runner did not report:\n{process.stdout[-3000:]}\n{process.stderr[-3000:]}")
    return {entry["harness"]: entry for entry in report}


@pytest.mark.parametrize("name", list(HARNESSES))
def test_no_unexpected_exception_when_fuzzed(results, name):
    result = results[name]
    assert result["ok"], f"{name} found something (input kept in {result['artifacts']}):\n{result['output']}"
    # libFuzzer counts the seed corpus it replays too, so a full run reports at least RUNS;
    # fewer means the time limit cut it short.
    assert result["runs"] >= RUNS
    assert result["coverage"] > 0  # the code under test was instrumented and reached
