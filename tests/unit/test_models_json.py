"""Messages serialise field by field: the same JSON as the dataclass's own view, in field order."""

from __future__ import annotations

import json
from dataclasses import asdict

from timeline_bridge.models import DeliveryJob, Envelope


def test_envelope_json_holds_every_field_in_order_when_event_is_nested():
    event = {"data": {"id": 42, "tags": ["a", "é"], "nested": [{"x": None}]}, "previous": {"stage_id": 3}}
    envelope = Envelope("pipedrive", "change.deal", "e-1", None, "2025-11-23T12:01:57.000Z", event, name=None)
    text = envelope.to_json()
    assert text == json.dumps(asdict(envelope), separators=(",", ":"), ensure_ascii=False)
    assert list(json.loads(text)) == [
        "source", "event_type", "event_id", "occurred_at", "received_at", "event", "name", "replay"
    ]  # fmt: skip
    assert Envelope.from_json(text) == envelope


def test_delivery_job_json_round_trips_when_dead_lettered():
    job = DeliveryJob(
        key="tb-1", target="stora", mapping="m", mapping_file="mappings/m.yaml", source="hubspot",
        event_id="e-1", event_type="deal.propertyChange", occurred_at=None, body={"contact": {"id": "con_1"}},
        attempts=2, dead_letter={"reason": "permanent_failure", "details": [{"pointer": "/contact"}]},
    )  # fmt: skip
    text = job.to_json()
    assert text == json.dumps(asdict(job), separators=(",", ":"), ensure_ascii=False)
    assert DeliveryJob.from_json(text) == job
