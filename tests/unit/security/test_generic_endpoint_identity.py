"""A generic endpoint has one identity, and ingest dedupe, job keys and mappings all use it.

Found by review, each case failed before its fix:
- The job key hashed the source (`generic`), not the endpoint, while ingest dedupes per endpoint:
  the same `webhook-id` (or, on an HMAC endpoint without an id header, the same body) on
  `/generic/billing` and `/generic/crm` made two jobs with one key, and the second was lost
  (`payload_mismatch`, or skipped as already delivered).
- `/generic/acme`, `/generic/ACME` and `/generic/acme_eu` vs `/generic/acme-eu` read the same
  settings and secret but deduped apart, so a captured request could be replayed at another
  spelling. Only the canonical spelling (lowercase, `-`) is served now.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from timeline_bridge.errors import MappingLoadError, NotFoundError
from timeline_bridge.mapping import load_mappings
from timeline_bridge.mapping.loader import load_mapping
from timeline_bridge.models import Envelope
from timeline_bridge.sources import generic
from timeline_bridge_tools.cli import send
from timeline_bridge_tools.mapping.samples import SampleError, envelope_from_dict, envelopes_from_file

ROOT = Path(__file__).resolve().parents[3]
GENERIC_SAMPLE = ROOT / "events" / "generic" / "standard-webhook.json"

GENERIC_MAPPING = """\
name: invoice-to-matter
source: generic
when: "{when}"
target: matter
body:
  kind: banking
  title: "Invoice ${{{{ event.data.invoice_id }}}} paid"
  occurred_at: "2026-01-01T00:00:00Z"
"""


def generic_envelope(name: str, event_id: str = "msg_shared", invoice: str = "in_1") -> Envelope:
    return Envelope(
        source="generic",
        event_type="invoice.paid",
        event_id=event_id,
        occurred_at=None,
        received_at="2026-01-01T00:00:00.000Z",
        event={"type": "invoice.paid", "data": {"invoice_id": invoice}},
        name=name,
    )


# --- item 1: the job key names the endpoint -------------------------------------------------------


def test_job_keys_differ_when_two_generic_endpoints_share_an_event_id(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(GENERIC_MAPPING.format(when="event.type == 'invoice.paid'"))
    mapping = load_mapping(path)
    billing, crm = generic_envelope("billing"), generic_envelope("crm")

    assert mapping.key(billing) != mapping.key(crm)
    assert mapping.render(billing).key != mapping.render(crm).key
    assert mapping.context(crm)["meta"]["key"] == mapping.key(crm)


def test_job_key_is_the_same_when_an_envelope_is_routed_again() -> None:
    mappings = load_mappings(ROOT / "tests" / "integration" / "fault_mappings")
    first = [j.key for j in mappings.render_jobs(generic_envelope("billing"))]
    again = [j.key for j in mappings.render_jobs(Envelope.from_json(generic_envelope("billing").to_json()))]
    assert first == again and len(set(first)) == len(first) == 2


# Keys every shipped sample makes today: delivered-records and the providers' idempotency keys
# of hubspot, slack and pipedrive events stay valid across the change of generic keys.
PINNED_KEYS = {
    ("hubspot", "hubspot-deal-stage-to-hubspot-timeline"): "tb-abd6232345d14db3373408835ea252db85b751bd",
    ("hubspot", "hubspot-deal-stage-to-matter"): "tb-9485eab98264938641b87481b83420a23c08cb55",
    ("hubspot", "hubspot-deal-stage-to-stora"): "tb-f378ad37fd176a34baf1112e6e1a403959185211",
    ("slack", "slack-approval-to-matter"): "tb-a2f4797370d9253f7eabd298ac8205f1ca1c478a",
    ("pipedrive", "pipedrive-deal-stage-to-applied"): "tb-28bd9469e3ca9b1ffe9be564d693ad02c1c85b21",
    ("pipedrive", "pipedrive-deal-stage-to-stora"): "tb-ae04b4d696aa87c1ef4d0af03d08fa4cbc616373",
}
SAMPLES = {
    "hubspot": "hubspot/deal-stage-change.json",
    "slack": "slack/approve-button.json",
    "pipedrive": "pipedrive/deal-stage-change-v2.json",
}


def test_job_keys_of_other_sources_unchanged_when_generic_keys_name_their_endpoint() -> None:
    mappings = load_mappings(ROOT / "mappings")
    found = {}
    for source, name in PINNED_KEYS:
        mapping = mappings.get(name)
        assert mapping is not None and mapping.source == source
        found[(source, name)] = mapping.key(envelopes_from_file(source, ROOT / "events" / SAMPLES[source])[0])
    assert found == PINNED_KEYS


# --- item 3: one canonical spelling per endpoint --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/generic/ACME", "/generic/acme"),
        ("/generic/Acme", "/generic/acme"),
        ("/generic/acme_eu", "/generic/acme-eu"),
        ("/generic/ACME_EU/", "/generic/acme-eu"),
        ("/generic/DEFAULT", "/generic/default"),
    ],
)
def test_endpoint_refused_naming_its_canonical_path_when_spelled_another_way(
    path: str, canonical: str
) -> None:
    with pytest.raises(NotFoundError) as refused:
        generic.endpoint_name(path)
    assert f"use {canonical}" in str(refused.value)
    assert generic.endpoint_name(canonical) == canonical.removeprefix("/generic/")


def test_endpoint_settings_read_from_one_prefix_per_canonical_name() -> None:
    # Every accepted name has its own GENERIC_<NAME>_ prefix: no two URLs share settings.
    names = ["acme", "acme-eu", "a-b-9", "default", "x" * 64]
    assert len({generic.env_prefix(n) for n in names}) == len(names)
    assert [generic.endpoint_name(f"/generic/{n}") for n in names] == names


@pytest.mark.parametrize("literal", ["Billing", "billing_eu", "BILLING-EU"])
def test_mapping_refused_at_load_when_it_compares_meta_name_with_another_spelling(
    tmp_path: Path, literal: str
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(GENERIC_MAPPING.format(when=f"meta.name == '{literal}'"))
    with pytest.raises(MappingLoadError) as refused:
        load_mapping(path)
    assert f"'{literal.lower().replace('_', '-')}'" in str(refused.value)


def test_mapping_loaded_when_it_compares_meta_name_with_the_canonical_name(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(GENERIC_MAPPING.format(when="meta.name == 'billing-eu' || 'crm' != meta.name"))
    mapping = load_mapping(path)
    assert mapping.applies(generic_envelope("billing-eu"))


def test_mapping_case_refused_when_its_input_names_an_endpoint_spelled_another_way() -> None:
    with pytest.raises(SampleError, match="'billing-eu'"):
        envelope_from_dict({"event": {}, "name": "Billing_EU"}, source="generic", default_id="case-1")
    assert envelope_from_dict({"event": {}, "name": "billing-eu"}, source="generic", default_id="c").name == (
        "billing-eu"
    )


def test_bridge_send_refuses_a_name_spelled_another_way(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GENERIC_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    args = argparse.Namespace(
        source="generic", file=GENERIC_SAMPLE, url="http://127.0.0.1:9/generic/x", name="Billing", timeout=1.0
    )
    assert send.run(args) == 2
    assert "/generic/billing" in capsys.readouterr().err


def test_bridge_send_refuses_a_sample_posted_to_a_name_spelled_another_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GENERIC_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    sample = json.loads(GENERIC_SAMPLE.read_text())
    sample["rawPath"] = "/generic/Billing"
    path = tmp_path / "sample.json"
    path.write_text(json.dumps(sample))
    args = argparse.Namespace(source="generic", file=path, url="http://127.0.0.1:9/x", name=None, timeout=1.0)
    assert send.run(args) == 2
    assert "/generic/billing" in capsys.readouterr().err
