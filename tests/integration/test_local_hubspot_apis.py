"""`bridge dev` with both shipped HubSpot mappings: one signed deal stage change becomes a v3
timeline event and an app event occurrence (2026-03) on the same deal, delivered side by side by
one HubSpot deliverer, each request on its own API's path."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import requests
from timeline_bridge.keys import job_key
from timeline_bridge_tools import signing
from timeline_bridge_tools.local.runtime import LocalRuntime
from timeline_bridge_tools.mapping.samples import envelopes_from_file

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "events" / "hubspot" / "deal-stage-change.json"
V3_MAPPING = "hubspot-deal-stage-to-hubspot-timeline"
APP_MAPPING = "hubspot-deal-stage-to-hubspot-app-events"


def _wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def test_v3_and_app_events_mappings_deliver_side_by_side_when_a_deal_stage_change_is_sent(
    local_runtime: LocalRuntime,
) -> None:
    body = signing.body_bytes(json.loads(SAMPLE.read_text()))
    url = local_runtime.webhook_urls["hubspot"]
    secret = local_runtime.secret_values["HUBSPOT_CLIENT_SECRET"]
    headers = signing.sign_request("hubspot", body, secret, url=url)
    [envelope] = envelopes_from_file("hubspot", SAMPLE)
    v3_key = job_key("hubspot", envelope.event_id, V3_MAPPING)
    app_key = job_key("hubspot", envelope.event_id, APP_MAPPING)
    hubspot = local_runtime.sandboxes["hubspot"]

    answer = requests.post(
        url, data=body, headers={"content-type": "application/json", **headers}, timeout=10
    )

    assert answer.status_code == 200, answer.text
    both = _wait_for(
        lambda: (
            hubspot.event("1001298", v3_key) and hubspot.occurrence("ae0000001_deal-stage-changed", app_key)
        ),
        timeout=10,
    )
    assert both, local_runtime.console_state()["jobs"]
    event = hubspot.event("1001298", v3_key)
    occurrence = hubspot.occurrence("ae0000001_deal-stage-changed", app_key)
    deal = str(envelope.event["objectId"])
    assert event["objectId"] == occurrence["objectId"] == deal
    assert (
        event["tokens"]["changed_at"]
        == occurrence["properties"]["changed_at"]
        == str(envelope.event["occurredAt"])
    )
    paths = {r["path"] for r in hubspot.requests if r["method"] == "POST" and "/timeline/" in r["path"]}
    assert paths == {"/integrators/timeline/v3/events", "/integrators/timeline/2026-03/events"}
    local_runtime.wait_idle()
    jobs = [j for j in local_runtime.console_state()["jobs"] if j["target"] == "hubspot"]
    assert {j["mapping"] for j in jobs} == {V3_MAPPING, APP_MAPPING}
