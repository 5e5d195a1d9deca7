"""Every generic preset under `bridge dev`, configured as a deployed stack is (BRIDGE_GENERIC_SETTINGS
and BRIDGE_GENERIC_SECRETS): `bridge send` of its sample gets 2xx and its resend `"duplicates"`;
a one-byte change is 401, and so is a 10-minute-old timestamp for the schemes that sign one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from timeline_bridge.config import Settings
from timeline_bridge.sources.generic_presets import PRESETS
from timeline_bridge_tools import signing
from timeline_bridge_tools.local.runtime import LocalRuntime

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {preset: f"{preset}-dev-secret" for preset in PRESETS} | {"close": "ab" * 32}
SETTINGS = {
    "BRIDGE_GENERIC_SETTINGS": ",".join(f"GENERIC_{p.upper()}_PRESET={p}" for p in sorted(PRESETS)),
    "BRIDGE_GENERIC_SECRETS": json.dumps({f"GENERIC_{p.upper()}_SECRET": s for p, s in SECRETS.items()}),
}
TIMESTAMPED = sorted(p for p, s in PRESETS.items() if s.timestamp is not None)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    state = tmp_path_factory.mktemp("bridge-dev")
    with LocalRuntime(ROOT, port=0, state_dir=state, environ=dict(SETTINGS), log_level="WARNING") as local:
        yield local


def bridge_send(runtime: LocalRuntime, *args: str) -> subprocess.CompletedProcess[str]:
    """`bridge send` as a user runs it, from the folder whose `.bridge/` names the runtime, with
    the same two settings in its environment (.env) as the runtime."""
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("GENERIC_", "BRIDGE_GENERIC_"))}
    return subprocess.run(
        [sys.executable, "-m", "timeline_bridge_tools.cli", "send", *args],
        cwd=runtime.state_root,
        env=shell | SETTINGS,
        capture_output=True,
        text=True,
        timeout=60,
    )


def answer_of(sent: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    return json.loads(sent.stdout.splitlines()[1])


def sample(preset: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / "generic" / f"{preset}.json").read_text())


def post(
    runtime: LocalRuntime, preset: str, *, at: float | None = None, flip: bool = False
) -> requests.Response:
    """The sample posted as its sender would at `at` (now by default), one body byte changed
    after signing when `flip`."""
    event = sample(preset)
    now = time.time() if at is None else at
    settings = Settings.from_environ(SETTINGS)
    body = signing.fresh_body("generic", signing.body_bytes(event), now=now, name=preset, settings=settings)
    url = f"{runtime.url}/generic/{preset}"
    headers = {k: v for k, v in event["headers"].items() if k not in ("host", "content-length")}
    headers |= signing.sign_request(
        "generic", body, SECRETS[preset], url=url, now=now, name=preset, settings=settings
    )
    if flip:
        at_byte = body.index(b":") + 2  # inside the first value
        body = body[:at_byte] + bytes([body[at_byte] ^ 0x01]) + body[at_byte + 1 :]
    return requests.post(url, data=body, headers=headers, timeout=15)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_bridge_send_accepted_then_resend_is_a_duplicate(runtime: LocalRuntime, preset: str) -> None:
    sample_file = str(ROOT / "events" / "generic" / f"{preset}.json")
    first = bridge_send(runtime, "generic", sample_file, "--name", preset)
    assert first.returncode == 0 and first.stdout.startswith("200 "), first.stdout + first.stderr
    assert answer_of(first)["accepted"] >= 1
    again = bridge_send(runtime, "generic", sample_file, "--name", preset)
    assert again.returncode == 0, again.stdout + again.stderr
    answer = answer_of(again)
    assert (answer["accepted"], answer["duplicates"]) == (0, 2 if preset == "attio" else 1), answer


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_fresh_request_accepted_and_one_byte_change_refused(runtime: LocalRuntime, preset: str) -> None:
    assert post(runtime, preset).status_code == 200
    changed = post(runtime, preset, flip=True)
    assert changed.status_code == 401, changed.text


@pytest.mark.parametrize("preset", TIMESTAMPED)
def test_ten_minute_old_timestamp_refused(runtime: LocalRuntime, preset: str) -> None:
    old = post(runtime, preset, at=time.time() - 600)
    assert old.status_code == 401, old.text
    assert old.json()["error"] == "timestamp_expired"


def test_never_answers_410_when_the_endpoint_is_unknown_or_misconfigured(runtime: LocalRuntime) -> None:
    # Calendly deletes a subscription answered 410: no refusal of the bridge is one.
    answers = [
        requests.post(f"{runtime.url}/generic/Calendly", data=b"{}", timeout=15),
        requests.post(f"{runtime.url}/generic/calendly", data=b"{}", timeout=15),
        requests.post(f"{runtime.url}/generic/calendly", data=b"x" * (2 << 20), timeout=15),
    ]
    assert [a.status_code for a in answers] == [404, 401, 413]
