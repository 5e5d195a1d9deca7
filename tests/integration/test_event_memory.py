"""Event memory end to end under `bridge dev`: an event no mapping wants is accepted and archived,
a mapping file dropped into the folder is picked up, and a replay of the last minutes sends what
the new mapping makes of it exactly once.

The flow a user follows after fixing a mapping (README, "I fixed a mapping: replay what it
missed"), through the real CLI against the real local stack (moto's SQS, DynamoDB and S3, the
provider sandboxes).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
from test_local_runtime import ROOT, bridge_send, wait_for
from timeline_bridge_tools.cli import main
from timeline_bridge_tools.local.runtime import LocalRuntime

GENERIC_SAMPLE = ROOT / "events" / "generic" / "standard-webhook.json"
NEW_MAPPING = ROOT / "tests" / "integration" / "fault_mappings" / "fault-generic-invoice-to-matter.yaml"
NEW_NAME = "fault-generic-invoice-to-matter"


@pytest.fixture
def project(tmp_path: Path, shipped_mappings: Any) -> Any:
    """`bridge dev` of a project whose mappings folder holds shipped mappings none of which takes
    the generic sample (a user's generic mapping under mappings/ would)."""
    mappings = shipped_mappings("hubspot-deal-stage-to-matter", "pipedrive-deal-stage-to-stora")
    runtime = LocalRuntime(
        ROOT,
        port=0,
        state_dir=tmp_path,
        environ={"BRIDGE_MAPPINGS_DIR": str(mappings)},
        log_level="WARNING",
    )
    runtime.start()
    try:
        yield runtime, mappings
    finally:
        runtime.stop()


def bridge(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """Run a `bridge` command in-process; its JSON answer."""
    capsys.readouterr()
    assert main([*args, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_an_unmatched_event_is_replayed_once_through_a_mapping_added_later(
    project: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runtime, mappings = project
    monkeypatch.chdir(tmp_path)  # the CLI finds `bridge dev` from the project folder
    sent = bridge_send(tmp_path, "generic", str(GENERIC_SAMPLE))
    assert sent.returncode == 0 and sent.stdout.startswith("200 "), sent.stdout + sent.stderr
    folder = ("--mappings", str(mappings))

    def listed(*filters: str) -> list[dict[str, Any]]:
        return list(bridge(capsys, "events", "list", "--since", "10m", *folder, *filters))

    assert wait_for(lambda: listed("--status", "unmatched"), timeout=10.0)
    [event] = listed("--status", "unmatched")
    assert (event["source"], event["jobs"]) == ("generic", [])

    shutil.copy(NEW_MAPPING, mappings)
    loaded = wait_for(lambda: NEW_NAME in json.dumps(runtime.console_state().get("mappings")), timeout=10.0)
    assert loaded, runtime.console_state().get("mappings")

    matter = runtime.sandboxes["matter"]
    before = len(matter.events())
    dry = bridge(capsys, "replay", "--since", "10m", "--dry-run", *folder)
    assert dry["mappings"][NEW_NAME]["new"] == 1
    assert len(matter.events()) == before  # a dry run sends nothing

    bridge(capsys, "replay", "--since", "10m", *folder)
    assert wait_for(lambda: len(matter.events()) == before + 1, timeout=15.0)
    again = bridge(capsys, "replay", "--since", "10m", "--dry-run", *folder)
    assert (again["mappings"][NEW_NAME]["new"], again["mappings"][NEW_NAME]["delivered"]) == (0, 1)
    bridge(capsys, "replay", "--since", "10m", *folder)
    runtime.wait_idle(timeout=15.0)
    assert len(matter.events()) == before + 1  # the second replay delivers nothing new

    [shown] = bridge(capsys, "events", "show", event["event_id"], *folder)
    [job] = [j for j in shown["jobs"] if j["mapping"] == NEW_NAME]
    assert (shown["status"], job["state"]) == ("delivered", "delivered")

    # The console's event history says the same.
    page = requests.get(f"{runtime.url}/events.json", params={"q": event["event_id"]}, timeout=10)
    assert page.status_code == 200
    [listed_event] = page.json()["events"]
    assert (listed_event["event_id"], listed_event["status"]) == (event["event_id"], "delivered")
