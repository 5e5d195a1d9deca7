"""HubSpot mappings choose their API by their body (v3 `eventTemplateId`, 2026-03 app events
`eventTypeName`), are checked against that API's contract, and render token and property values
as text, as both of HubSpot's specs take them. HUBSPOT_TIMELINE_API only decides for a body that
names neither."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from timeline_bridge import config
from timeline_bridge.errors import MappingError, MappingLoadError
from timeline_bridge.mapping import load_mappings
from timeline_bridge.mapping.contracts import contract_name
from timeline_bridge.mapping.expressions import to_text
from timeline_bridge.models import Envelope
from timeline_bridge.target_registry import endpoints
from timeline_bridge.targets.hubspot import APIS, api_for, default_api
from timeline_bridge_tools.cli import main

ENDPOINTS = endpoints()

ROOT = Path(__file__).resolve().parents[3]
HEAD = """\
name: playground
source: hubspot
target: hubspot
"""
V3_BODY = """\
body:
  eventTemplateId: "1001298"
  objectId: "${{ to_string(event.objectId) }}"
  tokens:
"""
APP_BODY = """\
body:
  eventTypeName: ae0000001_deal-stage-changed
  objectId: "${{ to_string(event.objectId) }}"
  properties:
"""


def envelope(event: dict) -> Envelope:
    return Envelope("hubspot", "deal.propertyChange", "evt-1", None, "2026-01-01T00:00:00.000Z", event)


EVENT = {"objectId": 98442, "n": 3, "f": 2.5, "whole": 1200.0, "yes": True, "s": "x", "o": {"a": 1}}


@pytest.fixture(autouse=True)
def _default_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBSPOT_TIMELINE_API", raising=False)


def _values(lines: str) -> str:
    return "".join(f"    {line.strip()}\n" for line in lines.strip().splitlines())


@pytest.mark.parametrize(
    ("head", "field"), [(V3_BODY, "tokens"), (APP_BODY, "properties")], ids=["v3", "2026-03"]
)
def test_values_render_as_text_when_expressions_and_constants_are_numbers_or_booleans(
    compile_mapping, head, field
) -> None:
    values = """
    number: "${{ event.n }}"
    float: "${{ event.f }}"
    whole: "${{ event.whole }}"
    flag: "${{ event.yes }}"
    text: "${{ event.s }}"
    missing: "${{ event.nope }}"
    inside: "n=${{ event.n }}"
    constant: 7
    constant_flag: false
    """
    mapping = compile_mapping(HEAD + head + _values(values))

    body = mapping.render(envelope(EVENT)).body

    assert body[field] == {
        "number": "3",
        "float": "2.5",
        "whole": "1200",
        "flag": "true",
        "text": "x",
        "inside": "n=3",
        "constant": "7",
        "constant_flag": "false",
    }


@pytest.mark.parametrize(
    ("head", "field"), [(V3_BODY, "tokens"), (APP_BODY, "properties")], ids=["v3", "2026-03"]
)
def test_object_value_breaks_the_contract_when_an_expression_gives_one(compile_mapping, head, field) -> None:
    mapping = compile_mapping(HEAD + head + _values('nested: "${{ event.o }}"'))

    with pytest.raises(MappingError) as error:
        mapping.render(envelope(EVENT))

    assert error.value.field == f"body.{field}.nested"
    assert "must be string" in error.value.reason


def test_to_text_spells_scalars_and_leaves_everything_else_when_called() -> None:
    assert [to_text(v) for v in (3, -0.0, 2.5, 1e16, True, False, "3", None)] == [
        "3",
        "0",
        "2.5",
        "10000000000000000",
        "true",
        "false",
        "3",
        None,
    ]
    assert to_text({"a": 1}) == {"a": 1} and to_text([1]) == [1]
    assert math.isnan(to_text(math.nan)) and to_text(math.inf) == math.inf


@pytest.mark.parametrize(
    ("body", "contract", "path"),
    [
        ({"eventTemplateId": "1"}, "hubspot", "/integrators/timeline/v3/events"),
        ({"eventTypeName": "t"}, "hubspot-2026-03", "/integrators/timeline/2026-03/events"),
    ],
    ids=["v3", "2026-03"],
)
def test_contract_and_client_agree_on_the_api_when_a_body_names_one(body, contract, path) -> None:
    for default in ("v3", "2026-03"):
        settings = config.Settings.from_environ({"HUBSPOT_TIMELINE_API": default})
        assert contract_name("hubspot", body, settings) == contract
        assert ENDPOINTS[contract] == ("POST", path)
        assert api_for(body, default_api(settings)).single == path
    assert {api.type_field for api in APIS.values()} == {"eventTemplateId", "eventTypeName"}


def test_body_naming_neither_api_follows_the_default_when_checked(monkeypatch) -> None:
    monkeypatch.delenv("HUBSPOT_TIMELINE_API", raising=False)
    settings = config.Settings.from_environ()
    assert contract_name("hubspot", {"objectId": "1"}, settings) == "hubspot"
    assert api_for({"objectId": "1"}, default_api(settings)).name == "v3"
    monkeypatch.setenv("HUBSPOT_TIMELINE_API", "2026-03")
    settings = config.Settings.from_environ()
    assert contract_name("hubspot", {"objectId": "1"}, settings) == "hubspot-2026-03"
    assert api_for({"objectId": "1"}, default_api(settings)).name == "2026-03"


def test_v3_field_refused_on_an_app_events_body_when_the_mapping_loads(compile_mapping) -> None:
    with pytest.raises(MappingLoadError) as error:
        compile_mapping(HEAD + APP_BODY + _values('stage: "${{ event.s }}"') + "  tokens: {stage: x}\n")

    [problem] = error.value.errors
    assert problem.field == "body.tokens" and "unknown field for target hubspot" in problem.reason


def test_body_naming_both_apis_refused_when_the_mapping_loads(compile_mapping) -> None:
    text = (
        HEAD
        + V3_BODY
        + _values('stage: "${{ event.s }}"')
        + "  eventTypeName: ae0000001_deal-stage-changed\n"
    )

    with pytest.raises(MappingLoadError) as error:
        compile_mapping(text)

    assert any(
        e.field == "body.eventTypeName" and "name different hubspot APIs" in e.reason
        for e in error.value.errors
    )


@pytest.mark.parametrize("own_id", ["deal-${{ event.objectId }}", "${{ to_string(event.objectId) }}"])
def test_app_events_mapping_with_an_id_of_its_own_refused_when_it_loads(compile_mapping, own_id) -> None:
    text = HEAD + APP_BODY + _values('stage: "${{ event.s }}"') + f'  id: "{own_id}"\n'

    with pytest.raises(MappingLoadError) as error:
        compile_mapping(text)

    [problem] = error.value.errors
    assert problem.field == "body.id" and "409" in problem.reason


def test_app_events_mapping_may_name_the_job_key_as_its_id_when_it_loads(compile_mapping) -> None:
    mapping = compile_mapping(
        HEAD + APP_BODY + _values('stage: "${{ event.s }}"') + '  id: "${{ meta.key }}"\n'
    )

    body = mapping.render(envelope(EVENT)).body

    assert body["id"] == mapping.key(envelope(EVENT))


def test_v3_mapping_keeps_an_id_of_its_own_when_it_loads(compile_mapping) -> None:
    mapping = compile_mapping(
        HEAD + V3_BODY + _values('stage: "${{ event.s }}"') + '  id: "deal-${{ event.objectId }}"\n'
    )

    assert mapping.render(envelope(EVENT)).body["id"] == "deal-98442"


def test_shipped_mappings_load_side_by_side_whatever_the_default_api(monkeypatch) -> None:
    for default in ("v3", "2026-03"):
        monkeypatch.setenv("HUBSPOT_TIMELINE_API", default)
        settings = config.Settings.from_environ()
        mappings = load_mappings(ROOT / "mappings", settings=settings)
        hubspot = {
            m.name: contract_name("hubspot", m.raw["body"], settings)
            for m in mappings
            if m.target == "hubspot"
        }
        # Each body's own API, whatever the default (other HubSpot mappings may ship beside these).
        assert hubspot.items() >= {
            ("hubspot-deal-stage-to-hubspot-timeline", "hubspot"),
            ("hubspot-deal-stage-to-hubspot-app-events", "hubspot-2026-03"),
        }


def test_bridge_map_yields_every_target_request_when_the_default_api_is_2026_03(
    monkeypatch, capsys, shipped_mappings
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("HUBSPOT_TIMELINE_API", "2026-03")
    # Shipped mappings that need no enrichment, in a folder of their own: one a user adds changes nothing.
    folder = shipped_mappings(
        "pipedrive-deal-stage-to-stora",
        "pipedrive-deal-stage-to-applied",
        "hubspot-deal-stage-to-hubspot-timeline",
        "hubspot-deal-stage-to-hubspot-app-events",
    )
    mapped = ["--no-enrich", "--mappings", str(folder)]

    code = main(["map", "pipedrive", "events/pipedrive/deal-stage-change-v2.json", *mapped])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert {r["target"] for r in json.loads(out)} == {"stora", "applied"}

    code = main(["map", "hubspot", "events/hubspot/deal-stage-change.json", *mapped])
    out, err = capsys.readouterr()
    assert code == 0, err
    urls = {r["mapping"]: r["url"] for r in json.loads(out) if r["target"] == "hubspot"}
    assert urls == {
        "hubspot-deal-stage-to-hubspot-timeline": "https://api.hubapi.com/integrators/timeline/v3/events",
        "hubspot-deal-stage-to-hubspot-app-events": "https://api.hubapi.com/integrators/timeline/2026-03/events",
    }
