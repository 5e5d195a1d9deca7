"""`bridge map` of the HubSpot deal stage sample, with enrichment reading the local sandboxes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from timeline_bridge.cli import main

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
