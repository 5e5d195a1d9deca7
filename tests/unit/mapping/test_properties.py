"""Property tests over arbitrary JSON events: the engine only ever raises MappingError, always
terminates, and renders the same output for the same input."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from timeline_bridge import SOURCES
from timeline_bridge.config import Settings
from timeline_bridge.mapping import RenderFailure, load_mappings, no_enrichment
from timeline_bridge.models import DeliveryJob, Envelope
from timeline_bridge_tools.cli.map import requests_for

ROOT = Path(__file__).resolve().parents[3]
SETTINGS = Settings.from_environ({})
SHIPPED = load_mappings(ROOT / "mappings", settings=SETTINGS)

# Keys and values the shipped mappings look at, so generated events often get past `when`.
KEYS = st.sampled_from(
    [
        "subscriptionType", "eventType", "objectTypeId", "propertyName", "propertyValue", "objectId",
        "portalId", "occurredAt", "changeSource", "sourceId", "type", "user", "actions", "action_id",
        "action_ts", "value", "message", "text", "team", "container", "meta", "data", "previous",
        "version", "action", "entity", "stage_id", "person_id", "id", "title", "timestamp",
    ]
)  # fmt: skip
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**15), max_value=10**15)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(
        [
            "deal.propertyChange", "object.propertyChange", "0-3", "dealstage", "contractsent", "closedwon",
            "block_actions", "approve_button", "reject", "2.0", "change", "deal", "1548426417.840180",
            "2025-11-23T12:01:55Z", "1763899315724",
        ]
    )
)  # fmt: skip
JSON = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=5),
    max_leaves=25,
)
EVENTS = st.dictionaries(KEYS, JSON, max_size=8) | JSON


def envelope_for(source: str, event: object) -> Envelope:
    return Envelope(source, "any", "evt-1", None, "2026-01-01T00:00:00.000Z", event)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), event=EVENTS)
def test_engine_only_raises_mapping_errors_when_events_are_arbitrary_json(source, event) -> None:
    outcomes = SHIPPED.render_jobs(envelope_for(source, event), no_enrichment)

    for outcome in outcomes:
        assert isinstance(outcome, DeliveryJob | RenderFailure)
        if isinstance(outcome, DeliveryJob):
            json.dumps(outcome.body, allow_nan=False)  # a body is always sendable JSON


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), event=EVENTS)
def test_dry_run_output_is_identical_when_the_same_event_is_mapped_twice(source, event) -> None:
    first = requests_for([envelope_for(source, event)], SHIPPED, settings=SETTINGS)
    again = [envelope_for(source, json.loads(json.dumps(event)))]
    second = requests_for(again, SHIPPED, settings=SETTINGS)

    assert json.dumps(first[0], sort_keys=True) == json.dumps(second[0], sort_keys=True)
    assert [str(f.error) for f in first[1]] == [str(f.error) for f in second[1]]


@settings(max_examples=200, deadline=None)
@given(event=EVENTS)
def test_deep_or_odd_events_end_in_a_job_or_a_mapping_error_when_rendered(event) -> None:
    deep: object = event
    for _ in range(2000):  # deeper than any JSON parser allows by default
        deep = {"data": deep, "previous": {"stage_id": deep}}
    envelope = envelope_for(
        "pipedrive", {"meta": {"version": "2.0", "action": "change", "entity": "deal"}, **{"data": deep}}
    )

    for outcome in SHIPPED.render_jobs(envelope, no_enrichment):
        assert isinstance(outcome, DeliveryJob | RenderFailure)
