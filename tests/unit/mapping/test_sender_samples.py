"""The shipped mappings of senders that post to a generic endpoint set to their preset read the
sender's sample as the preset parses it: the sample, sent to `/generic/<sender>` with
`GENERIC_<SENDER>_PRESET=<sender>`, renders exactly the body of the mapping's first case.

Mapping cases read a sample with no endpoint settings, where a Calendly or Typeform body has no
type (theirs is `event` or `event_type`, not `type`), so those cases hold a copy of the sample's
body; this keeps each copy equal to its sample, event identity and job key included."""

from __future__ import annotations

from pathlib import Path

import pytest
from timeline_bridge.mapping import load_mapping
from timeline_bridge_tools.mapping.cases import cases_path, load_cases
from timeline_bridge_tools.mapping.samples import envelopes_from_file

ROOT = Path(__file__).resolve().parents[3]

SENDERS = [
    ("stripe", "stripe-invoice-paid-to-matter"),
    ("calendly", "calendly-invitee-created-to-hubspot"),
    ("typeform", "typeform-form-response-to-applied"),
]


@pytest.mark.parametrize(("sender", "mapping_name"), SENDERS, ids=[s for s, _ in SENDERS])
def test_sample_renders_the_first_case_when_sent_to_the_endpoint_of_its_preset(
    monkeypatch: pytest.MonkeyPatch, sender: str, mapping_name: str
) -> None:
    monkeypatch.setenv(f"GENERIC_{sender.upper()}_PRESET", sender)
    path = ROOT / "mappings" / f"{mapping_name}.yaml"
    mapping = load_mapping(path)
    first = load_cases(cases_path(path))[0]
    [envelope] = envelopes_from_file("generic", ROOT / "events" / "generic" / f"{sender}.json")

    assert envelope.name == sender and envelope.event_id  # the preset's event identity
    assert mapping.render(envelope, first.enrichment).body == first.expect["output"]
