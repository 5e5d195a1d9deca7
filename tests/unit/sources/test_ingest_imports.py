"""Cold start: loading an ingest handler must not pull in what only the workers need."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]

HEAVY = (
    "requests",
    "jsonschema",
    "fastjsonschema",
    "yaml",
    "aws_xray_sdk",
    "aws_lambda_powertools.utilities.idempotency",
    "timeline_bridge.mapping",
    "timeline_bridge.targets",
)

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("source", ["hubspot", "slack", "pipedrive", "salesforce", "generic"])
def test_handler_import_stays_light_when_cold(source):
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / source / "app.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    loaded = set(json.loads(done.stdout))
    heavy = sorted(m for m in loaded if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []
    assert "timeline_bridge.ingest" in loaded
    # Source modules load on the first request, and only the function's own.
    assert (
        not {
            f"timeline_bridge.sources.{s}" for s in ("hubspot", "slack", "pipedrive", "salesforce", "generic")
        }
        & loaded
    )
