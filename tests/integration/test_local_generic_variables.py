"""A generic endpoint configured in the shell or `.env` (GENERIC_<NAME>_PRESET, GENERIC_<NAME>_SECRET)
under `bridge dev`: the template declares no such variable, yet the generic function reads them as a
deployed one reads the variables a deployer sets on it, and `bridge send` signs with the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from timeline_bridge_tools import signing
from timeline_bridge_tools.local.runtime import LocalRuntime

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {"GENERIC_CALENDLY_PRESET": "calendly", "GENERIC_CALENDLY_SECRET": "calendly-local-signing-key"}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    state = tmp_path_factory.mktemp("bridge-dev")
    with LocalRuntime(ROOT, port=0, state_dir=state, environ=dict(SETTINGS), log_level="WARNING") as local:
        yield local


def test_bridge_send_of_the_calendly_sample_is_accepted_when_the_preset_is_set_in_the_environment(runtime):
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("GENERIC_", "BRIDGE_GENERIC_"))}
    command = ["send", "generic", "events/generic/calendly.json", "--name", "calendly"]
    sent = subprocess.run(
        [
            sys.executable,
            "-m",
            "timeline_bridge_tools.cli",
            *command,
            "--url",
            f"{runtime.url}/generic/calendly",
        ],
        cwd=ROOT,
        env=shell | SETTINGS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stderr
    assert sent.stdout.startswith("200 ")
    assert json.loads(sent.stdout.splitlines()[1])["accepted"] == 1


def test_a_standard_webhooks_signature_is_refused_when_the_endpoint_is_set_to_a_preset(runtime):
    event = json.loads((ROOT / "events" / "generic" / "calendly.json").read_text())
    body = signing.body_bytes(event)
    url = f"{runtime.url}/generic/calendly"
    # Signed as Standard Webhooks (this process sets no preset): the function verifies as Calendly.
    headers = signing.sign_request("generic", body, "whsec_" + "A" * 32, url=url, name="calendly")
    answer = requests.post(url, data=body, headers=headers | {"content-type": "application/json"}, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"] == "signature_missing"
