"""The target registry: a target registered in-process is used by the config, the contracts, the
mapping engine, the transport and the delivery pacing, with no other edit."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from timeline_bridge import config, delivery, target_registry
from timeline_bridge.config import Settings
from timeline_bridge.errors import MappingError, MappingLoadError, PermanentDeliveryError, RetryLaterError
from timeline_bridge.mapping import contracts, load_mapping
from timeline_bridge.models import Envelope
from timeline_bridge.target_registry import (
    default_base_urls,
    documented_rate_limits,
    endpoints,
    max_throttle_waits,
    register_target,
    target_names,
    target_spec,
    unregister_target,
)
from timeline_bridge.targets import TargetClient, client_for, http
from timeline_bridge.targets.spec import Contract, KeyField, TargetSpec
from timeline_bridge.wiring import Dependencies

NAME = "beacon"
SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "beacon",
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "dedupe_key"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "count": {"type": "integer"},
        "dedupe_key": {"type": "string"},
    },
}


class BeaconClient(TargetClient):
    name = NAME
    credential = "BEACON_TOKEN"


@pytest.fixture
def beacon(tmp_path: Path) -> Iterator[TargetSpec]:
    """A throwaway target, registered for one test and removed after it."""
    schema_file = tmp_path / "beacon.schema.json"
    schema_file.write_text(json.dumps(SCHEMA))
    spec = TargetSpec(
        name=NAME,
        base_url="https://api.beacon.example.test",
        credential="BEACON_TOKEN",
        contracts=(Contract(NAME, "/v1/beacons", schema_file=schema_file),),
        build_client=BeaconClient,
        rate_limits=((10, 1.0), (100, 30.0)),
        configured_headers=frozenset({"x-beacon-tenant"}),
        key_fields=(KeyField(("dedupe_key",)),),
    )
    register_target(spec)
    try:
        yield spec
    finally:
        unregister_target(NAME)
        contracts.contract_schema.cache_clear()


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "beacon.yaml"
    text = f"name: to-beacon\nsource: hubspot\ntarget: {NAME}\nbody:\n" + textwrap.indent(
        textwrap.dedent(body), "  "
    )
    path.write_text(text)
    return path


ENVELOPE = Envelope(
    source="hubspot",
    event_type="deal.propertyChange",
    event_id="evt-1",
    occurred_at=None,
    received_at="2026-01-01T00:00:00.000Z",
    event={"title": "Deal won", "count": 3},
)


def test_every_list_of_targets_names_a_registered_target_when_it_is_registered(beacon) -> None:
    import timeline_bridge

    assert target_names()[-1] == NAME
    assert NAME in timeline_bridge.TARGETS
    assert target_spec(NAME) is beacon
    assert endpoints()[NAME] == ("POST", "/v1/beacons")
    assert default_base_urls()[NAME] == "https://api.beacon.example.test"
    assert documented_rate_limits()[NAME] == ((10, 1.0), (100, 30.0))
    assert max_throttle_waits()[NAME] == 30.0
    assert "x-beacon-tenant" in target_registry.configured_headers()
    deps = Dependencies.from_environ()
    assert isinstance(client_for(NAME, deps.settings, deps.secrets), BeaconClient)


def test_registered_target_is_gone_when_unregistered(tmp_path) -> None:
    spec = TargetSpec(NAME, "https://x.example.test", "BEACON_TOKEN", (Contract(NAME, "/"),), BeaconClient)
    register_target(spec)
    with pytest.raises(ValueError, match="already registered"):
        register_target(spec)
    unregister_target(NAME)

    assert NAME not in target_names()
    with pytest.raises(ValueError, match="unknown target"):
        target_spec(NAME)
    with pytest.raises(ValueError, match="ships with the bridge"):
        unregister_target(target_names()[0])


def test_config_reads_base_url_and_queues_of_a_registered_target_when_asked(beacon, monkeypatch) -> None:
    assert config.Settings.from_environ().base_url(NAME) == "https://api.beacon.example.test"
    monkeypatch.setenv("BEACON_BASE_URL", "https://other.example.test/")
    monkeypatch.setenv("BEACON_QUEUE_URL", "https://sqs.example.test/beacon")
    settings = config.Settings.from_environ()
    assert settings.base_url(NAME) == "https://other.example.test"
    assert settings.queue_url(NAME) == "https://sqs.example.test/beacon"


def test_contracts_check_bodies_of_a_registered_target_against_its_schema_when_validated(beacon) -> None:
    settings = config.Settings.from_environ()
    assert contracts.contract_name(NAME, {"title": "x"}, settings) == NAME
    contracts.validate_body(NAME, {"title": "x", "dedupe_key": "k"}, settings)
    with pytest.raises(contracts.ContractViolation, match="title"):
        contracts.validate_body(NAME, {"title": "", "dedupe_key": "k"}, settings)
    assert contracts.top_level_fields(NAME, None, settings) == frozenset({"title", "count", "dedupe_key"})


def test_engine_renders_a_registered_target_with_its_key_field_when_a_mapping_targets_it(
    beacon, tmp_path
) -> None:
    mapping = load_mapping(write(tmp_path, 'title: "${{ event.title }}"\ncount: "${{ event.count }}"\n'))

    job = mapping.render(ENVELOPE)

    assert job.target == NAME
    assert job.body == {"title": "Deal won", "count": 3, "dedupe_key": job.key}


def test_engine_refuses_a_mapping_that_sets_the_bridge_key_field_when_loaded(beacon, tmp_path) -> None:
    with pytest.raises(MappingLoadError, match="dedupe_key is set by the bridge from the job key"):
        load_mapping(write(tmp_path, 'title: "x"\ndedupe_key: "${{ event.title }}"\n'))
    with pytest.raises(MappingLoadError, match="unknown field for target beacon"):
        load_mapping(write(tmp_path, 'title: "x"\nother: 1\n'))


def test_engine_reports_contract_breaks_of_a_registered_target_when_an_event_renders(
    beacon, tmp_path
) -> None:
    mapping = load_mapping(write(tmp_path, 'title: "${{ event.title }}"\n'))

    with pytest.raises(MappingError, match="breaks the beacon contract"):
        mapping.render(dataclasses.replace(ENVELOPE, event={"title": ""}))


def test_transport_and_pacing_use_the_registered_spec_when_a_target_is_registered(beacon) -> None:
    assert http.max_wait(NAME, throttled=True) == 30.0
    assert http.max_wait(NAME, throttled=False) == http.MAX_ASKED_WAIT
    with pytest.raises(RetryLaterError, match="control character"):
        http.check_headers({"X-Beacon-Tenant": "a\r\nb"}, NAME)
    with pytest.raises(PermanentDeliveryError):
        http.check_headers({"Idempotency-Key": "a\r\nb"}, NAME)
    # Paced at 80 % of each documented limit.
    assert delivery.rate_limits(NAME, Settings.from_environ().pacing) == ((8, 1.0), (80, 30.0))


def test_mapping_for_an_unregistered_target_is_refused_when_loaded(tmp_path) -> None:
    with pytest.raises(MappingLoadError, match="must be one of"):
        load_mapping(write(tmp_path, 'title: "x"\n'))
