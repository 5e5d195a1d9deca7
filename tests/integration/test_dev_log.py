"""`bridge dev`'s terminal: a dead letter of either stage is one readable line saying why (the
provider's details for a refusal, file:line: field for a mapping error), not a JSON log record."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from timeline_bridge_tools.local.runtime import LocalRuntime

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "events" / "hubspot" / "deal-stage-change.json"


def broken_mappings(folder: Path) -> Path:
    """A Stora mapping without the contact its template requires (refused at deliver) and a Matter
    mapping whose time is not a time (fails at route)."""
    folder.mkdir()
    stora = (ROOT / "mappings" / "hubspot-deal-stage-to-stora.yaml").read_text()
    stora = stora.replace('  contact: {id: "${{ enrichment.contact_id }}"}\n', "").replace(
        "  - contact.id\n", ""
    )
    (folder / "hubspot-deal-stage-to-stora.yaml").write_text(stora)
    matter = (ROOT / "mappings" / "hubspot-deal-stage-to-matter.yaml").read_text()
    matter = matter.replace("to_iso8601(event.occurredAt)", "to_iso8601(event.propertyName)")
    (folder / "hubspot-deal-stage-to-matter.yaml").write_text(matter)
    return folder


def test_dead_letters_of_both_stages_are_one_readable_line_each_when_bridge_dev_runs(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    said: list[str] = []
    mappings = broken_mappings(tmp_path / "mappings")
    runtime = LocalRuntime(
        ROOT,
        port=0,
        state_dir=tmp_path,
        environ={"BRIDGE_MAPPINGS_DIR": str(mappings)},
        log_level="WARNING",
        echo=said.append,
    )
    with runtime:
        sent = subprocess.run(
            [sys.executable, "-m", "timeline_bridge_tools.cli", "send", "hubspot", str(SAMPLE)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stdout + sent.stderr
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum("dead-lettered" in line for line in said) < 2:
            time.sleep(0.05)
        letters = runtime.dead_letters()

    lines = {line.split()[1]: line for line in said if line.strip().startswith("dead-lettered")}
    assert set(lines) == {"stora", "matter"}, said
    assert lines["stora"].endswith(
        "(permanent_failure · 422 · invalid_content · The request body content is not valid. · "
        "value at `/contact` is required by the template)"
    )
    assert "(mapping_error · " in lines["matter"]
    assert "hubspot-deal-stage-to-matter.yaml:20: body.occurred_at: " in lines["matter"]
    assert "not a time: 'dealstage'" in lines["matter"]
    # The functions' JSON records of those dead letters stay out of the terminal.
    out = capfd.readouterr().out
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert not [r for r in records if "dead-lettered" in str(r.get("message"))]
    # The console's dead letters carry the same details.
    [stora] = letters["stora"]["messages"]
    assert stora["details"] == "value at `/contact` is required by the template"
