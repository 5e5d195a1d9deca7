"""Stripe, Calendly and Typeform under `bridge dev`: each sample, signed by `bridge send` as its
sender (the endpoint set to the sender's preset), is verified, parsed with the sender's event id and
type, enriched from its mapping's identity table, and becomes one event in its target's sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_local_runtime import ROOT, bridge_send, wait_for
from timeline_bridge_tools.local.runtime import LocalRuntime
from timeline_bridge_tools.mapping.cases import differences

# sender → (its mapping, target, the event id its preset reads, what the target got from the identity map)
SENDERS: dict[str, tuple[str, str, str, dict[str, Any]]] = {
    "stripe": (
        "stripe-invoice-paid-to-matter",
        "matter",
        "evt_1SWbXcLkdIwHu7ixQ8pN3rTq",
        {"actor": "usr_4Hq7Lm2Xv9Bn3KcW"},
    ),
    "calendly": (
        "calendly-invitee-created-to-hubspot",
        "hubspot",
        "https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/AAAAAAAAAAAAAAAA"
        ":invitee.created:2025-11-23T12:04:18.000000Z",
        {"objectId": "18147040901"},
    ),
    "typeform": (
        "typeform-form-response-to-applied",
        "applied",
        "01KAQ7ZP3M8X4R2T6V9B1C5D7F",
        {"contact": {"remote_id": "pipedrive-person-77"}},
    ),
}
# Each endpoint set to its sender's preset, as the GenericEndpointSettings parameter (or .env) sets it.
GENERIC_SETTINGS = ",".join(f"GENERIC_{sender.upper()}_PRESET={sender}" for sender in SENDERS)


@pytest.fixture
def runtime(tmp_path: Path, shipped_mappings: Any) -> Any:
    """`bridge dev` with the three mappings only, each sender's endpoint set to its preset."""
    mappings = shipped_mappings(*(mapping for mapping, *_ in SENDERS.values()))
    environ = {"BRIDGE_MAPPINGS_DIR": str(mappings), "BRIDGE_GENERIC_SETTINGS": GENERIC_SETTINGS}
    started = LocalRuntime(ROOT, port=0, state_dir=tmp_path, environ=environ, log_level="WARNING").start()
    try:
        yield started
    finally:
        started.stop()


@pytest.mark.parametrize("sender", sorted(SENDERS))
def test_sample_becomes_one_event_in_the_target_sandbox_when_signed_as_its_sender(
    runtime: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sender: str
) -> None:
    mapping, target, event_id, identified = SENDERS[sender]
    monkeypatch.setenv("BRIDGE_GENERIC_SETTINGS", GENERIC_SETTINGS)  # `bridge send` signs as the preset
    sent = bridge_send(tmp_path, "generic", str(ROOT / "events" / "generic" / f"{sender}.json"))

    assert sent.returncode == 0, sent.stdout + sent.stderr
    [webhook] = runtime.console_state()["webhooks"]
    assert (webhook["source"], webhook["status"], webhook["outcome"]) == ("generic", 200, "accepted")
    assert webhook["events"] == [event_id]
    sandbox = runtime.sandboxes[target]
    assert wait_for(lambda: sandbox.events(), timeout=10), runtime.console_state()["jobs"]
    runtime.wait_idle()
    [event] = sandbox.events()
    assert not differences(identified, event, exact=False), event
    assert [(j["mapping"], j["target"]) for j in runtime.console_state()["jobs"]] == [(mapping, target)]
