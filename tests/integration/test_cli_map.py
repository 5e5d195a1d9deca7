"""`bridge map` of the HubSpot deal stage sample, with enrichment reading the local sandboxes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from timeline_bridge_tools.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_map_prints_stora_hubspot_and_matter_requests_when_a_deal_changes_stage(
    sandboxes, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(ROOT)

    code = main(["map", "hubspot", "events/hubspot/deal-stage-change.json"])

    out, err = capsys.readouterr()
    assert code == 0, err
    requests = {r["target"]: r for r in json.loads(out)}
    assert sorted(requests) == ["hubspot", "matter", "stora"]
    assert all(set(r) == {"mapping", "target", "key", "method", "url", "body"} for r in requests.values())
    stora = requests["stora"]
    assert stora["url"].endswith("/2025-09/timeline/events")
    assert stora["body"]["description"] == "CRM deal moved to Negotiation stage"
    assert stora["body"]["external"]["id"] == "deal_18147040851"
    assert set(stora["body"]["variables"]) == {"deal_name", "previous_state", "new_state"}
    assert requests["hubspot"]["body"]["id"] == requests["hubspot"]["key"]
    assert requests["hubspot"]["body"]["objectId"] == "18147040851"
    assert requests["matter"]["body"]["kind"] == "audit"
    assert requests["matter"]["url"].endswith("/v1/timeline_events")


def test_map_enriches_from_started_sandboxes_when_nothing_is_configured(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    # A fresh clone: no bridge dev state here, no enrichment URL or credential in the environment.
    for name in ("HUBSPOT", "SLACK_API", "STORA"):
        monkeypatch.delenv(f"{name}_BASE_URL", raising=False)
    for name in ("HUBSPOT_ACCESS_TOKEN", "SLACK_BOT_TOKEN", "STORA_TOKEN"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_SECRET_ID", raising=False)
    monkeypatch.chdir(tmp_path)
    mappings, sample = ROOT / "mappings", ROOT / "events/hubspot/deal-stage-change.json"

    code = main(["map", "hubspot", str(sample), "--mappings", str(mappings)])

    out, err = capsys.readouterr()
    assert code == 0, err
    assert "seeded local sandboxes" in err
    stora = next(r for r in json.loads(out) if r["target"] == "stora")
    assert stora["body"]["variables"] == {
        "deal_name": "Acme Storage - 3 units",
        "previous_state": "Qualified",
        "new_state": "Negotiation",
    }


def test_map_does_not_start_sandboxes_when_an_enrichment_api_is_configured(
    monkeypatch: pytest.MonkeyPatch, capsys, tmp_path: Path
) -> None:
    monkeypatch.setenv("HUBSPOT_BASE_URL", "http://127.0.0.1:9")  # nothing listens: the read fails
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "configured-token")
    monkeypatch.chdir(tmp_path)
    mappings, sample = ROOT / "mappings", ROOT / "events/hubspot/deal-stage-change.json"

    code = main(["map", "hubspot", str(sample), "--mappings", str(mappings)])

    _, err = capsys.readouterr()
    assert code == 1
    assert "seeded local sandboxes" not in err
