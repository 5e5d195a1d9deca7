"""HubSpot's 2026-03 app events API, chosen per mapping by its body (`eventTypeName`; the tests
here also make it the default, HUBSPOT_TIMELINE_API=2026-03): occurrences are immutable, a known
id is a 409, a batch is atomic. Client against the sandbox over real HTTP, and mappings checked
against the 2026-03 contract by `bridge validate` / `bridge map`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
from timeline_bridge import config
from timeline_bridge.errors import PermanentDeliveryError
from timeline_bridge.mapping.contracts import ContractViolation, validate_body
from timeline_bridge.targets.base import Delivered
from timeline_bridge.targets.hubspot import APIS, HubspotClient, build_client
from timeline_bridge.wiring import Dependencies
from timeline_bridge_tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hubspot-sandbox-token"
SINGLE = "/integrators/timeline/2026-03/events"
BATCH = "/integrators/timeline/2026-03/events/batch"
DEAL_TYPE = "ae0000001_deal-stage-changed"
OCCURRENCE = {
    "eventTypeName": DEAL_TYPE,
    "objectId": "98442",
    "properties": {"stage": "closedwon", "changed_at": 1767225600000, "amount": 1200.0, "deal_name": "Acme"},
}
APP_EVENTS_MAPPING = """\
name: hubspot-deal-stage-to-hubspot-app-events
source: hubspot
when: event.propertyName == 'dealstage'
target: hubspot
body:
  eventTypeName: ae0000001_deal-stage-changed
  objectId: "${{ to_string(event.objectId) }}"
  timestamp: "${{ to_iso8601(event.occurredAt) }}"
  properties:
    stage: "${{ event.propertyValue }}"
    changed_at: "${{ to_epoch_ms(event.occurredAt) }}"
required: [objectId, properties.stage]
"""


@pytest.fixture(autouse=True)
def app_events(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_TIMELINE_API", "2026-03")


def _job(make_job, **properties):
    body = json.loads(json.dumps(OCCURRENCE))
    body["properties"].update(properties)
    return make_job("hubspot", body)


def test_single_job_posts_one_occurrence_with_string_properties_when_sent_alone(
    client_from_environ, hubspot, make_job
):
    job = _job(make_job)

    [outcome] = client_from_environ(HubspotClient).send([job])

    assert isinstance(outcome, Delivered) and (outcome.provider_id, outcome.status) == (job.key, 201)
    [request] = hubspot.requests
    assert request["path"] == SINGLE
    assert request["json"]["id"] == job.key
    assert request["json"]["properties"] == {
        "stage": "closedwon",
        "changed_at": "1767225600000",
        "amount": "1200",
        "deal_name": "Acme",
    }
    assert hubspot.occurrence(DEAL_TYPE, job.key)["objectType"] == "deals"


def test_resent_job_counts_as_delivered_once_when_hubspot_answers_409(client_from_environ, hubspot, make_job):
    job = _job(make_job)
    client_from_environ(HubspotClient).send([job])

    again = client_from_environ(HubspotClient)  # the first answer was lost; SQS delivers again
    [outcome] = again.send([job])

    assert [r["status"] for r in hubspot.requests] == [201, 409]
    assert isinstance(outcome, Delivered) and outcome.replayed and outcome.provider_id == job.key
    assert len(hubspot.events()) == 1


def test_jobs_go_in_batches_of_at_most_100_when_many_arrive(client_from_environ, hubspot, make_job):
    jobs = [_job(make_job) for _ in range(150)]

    outcomes = client_from_environ(HubspotClient).send(jobs)

    assert all(isinstance(o, Delivered) for o in outcomes)
    assert [(r["path"], len(r["json"]["inputs"]), r["status"]) for r in hubspot.requests] == [
        (BATCH, 100, 200),
        (BATCH, 50, 200),
    ]
    assert len(hubspot.events()) == 150


def test_batch_holding_a_stored_occurrence_is_resent_one_by_one_when_hubspot_refuses_it_whole(
    client_from_environ, hubspot, make_job
):
    stored, *fresh = [_job(make_job) for _ in range(3)]
    client_from_environ(HubspotClient).send([stored])

    outcomes = client_from_environ(HubspotClient).send([stored, *fresh])

    assert [(r["path"], r["status"]) for r in hubspot.requests] == [
        (SINGLE, 201),
        (BATCH, 409),
        (SINGLE, 409),
        (SINGLE, 201),
        (SINGLE, 201),
    ]
    assert [type(o).__name__ for o in outcomes] == ["Delivered"] * 3
    assert [o.replayed for o in outcomes if isinstance(o, Delivered)] == [True, False, False]
    assert len(hubspot.events()) == 3


def test_only_the_bad_occurrence_dead_letters_when_one_input_sinks_the_atomic_batch(
    client_from_environ, hubspot, make_job
):
    good, bad, other = _job(make_job), _job(make_job, nope="x"), _job(make_job)

    outcomes = client_from_environ(HubspotClient).send([good, bad, other])

    assert [(r["path"], r["status"]) for r in hubspot.requests][:2] == [(BATCH, 400), (SINGLE, 201)]
    assert isinstance(outcomes[0], Delivered) and isinstance(outcomes[2], Delivered)
    failure = outcomes[1]
    assert isinstance(failure, PermanentDeliveryError)
    assert (failure.status, failure.code) == (400, "VALIDATION_ERROR")
    assert "'nope'" in failure.message
    assert {e["id"] for e in hubspot.events()} == {good.key, other.key}


def test_v3_body_goes_to_v3_when_the_default_api_is_2026_03(client_from_environ, hubspot, make_job):
    job = make_job("hubspot")  # names an eventTemplateId: a v3 event, whatever the default

    [outcome] = client_from_environ(HubspotClient).send([job])

    assert isinstance(outcome, Delivered)
    assert [r["path"] for r in hubspot.requests] == ["/integrators/timeline/v3/events"]
    assert hubspot.event("1001298", job.key) is not None


def test_body_naming_neither_api_refused_unsent_when_the_default_is_2026_03(
    client_from_environ, hubspot, make_job
):
    [outcome] = client_from_environ(HubspotClient).send(
        [make_job("hubspot", {"objectId": "98442", "properties": {}})]
    )

    assert isinstance(outcome, PermanentDeliveryError) and outcome.code == "missing_event_type_name"
    assert hubspot.requests == []


def test_sandbox_refuses_non_string_properties_and_repeated_ids_when_posted_directly(hubspot):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    numeric = {**OCCURRENCE, "id": "n-1"}
    answer = requests.post(hubspot.url + SINGLE, json=numeric, headers=headers, timeout=5)
    assert answer.status_code == 400 and "values are strings" in answer.json()["message"]
    twice = {**OCCURRENCE, "id": "t-1", "properties": {"stage": "closedwon"}}
    answer = requests.post(hubspot.url + BATCH, json={"inputs": [twice, twice]}, headers=headers, timeout=5)
    assert answer.status_code == 409 and hubspot.events() == []


def test_contract_follows_the_api_the_body_names_when_bodies_are_checked(monkeypatch):
    occurrence = {**OCCURRENCE, "id": "o-1", "properties": {"stage": "closedwon"}}
    v3_event = {"eventTemplateId": "1001298", "id": "e-1", "objectId": "1", "tokens": {}}
    settings = config.Settings.from_environ()
    validate_body("hubspot", occurrence, settings)
    validate_body("hubspot", v3_event, settings)
    with pytest.raises(ContractViolation, match="tokens"):
        validate_body("hubspot", {**occurrence, "tokens": {}}, settings)
    with pytest.raises(ContractViolation, match="eventTypeName"):
        neither = {"objectId": "1", "id": "x", "properties": {}}
        validate_body("hubspot", neither, settings)  # neither: the default

    monkeypatch.setenv("HUBSPOT_TIMELINE_API", "v3")
    settings = config.Settings.from_environ()  # another function's settings: another default
    validate_body("hubspot", occurrence, settings)
    with pytest.raises(ContractViolation, match="eventTemplateId"):
        validate_body("hubspot", {"objectId": "1", "id": "x", "tokens": {}}, settings)


def test_every_api_the_setting_accepts_has_its_paths_and_contract_when_listed():
    from timeline_bridge.target_registry import endpoints

    ENDPOINTS = endpoints()

    assert set(APIS) == set(config.HUBSPOT_TIMELINE_APIS)
    for name, api in APIS.items():
        contract = "hubspot" if name == "v3" else f"hubspot-{name}"
        assert ENDPOINTS[contract] == ("POST", api.single)


def test_unknown_timeline_api_refused_when_the_client_is_built(monkeypatch):
    monkeypatch.setenv("HUBSPOT_TIMELINE_API", "v4")
    deps = Dependencies.from_environ()
    with pytest.raises(ValueError, match="not supported"):
        build_client(deps.settings, deps.secrets)
    with pytest.raises(ValueError, match="v3, 2026-03"):
        deps.settings.hubspot_api()


def test_mapping_for_app_events_validates_maps_and_delivers_when_2026_03_is_configured(
    client_from_environ, hubspot, tmp_path, monkeypatch, capsys, make_job
):
    monkeypatch.chdir(ROOT)
    (tmp_path / "app-events.yaml").write_text(APP_EVENTS_MAPPING)

    assert main(["validate", str(tmp_path)]) == 0
    assert main(["validate", "mappings/"]) == 0  # the shipped v3 mapping keeps its own contract
    assert "hubspot-deal-stage-to-hubspot-timeline" in capsys.readouterr().out

    code = main(["map", "hubspot", "events/hubspot/deal-stage-change.json", "--mappings", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    [request] = json.loads(out)
    assert request["url"].endswith(SINGLE)
    [outcome] = client_from_environ(HubspotClient).send(
        [make_job("hubspot", request["body"], key=request["key"])]
    )
    assert isinstance(outcome, Delivered)
    stored = hubspot.occurrence(DEAL_TYPE, request["key"])
    assert stored["properties"]["stage"] == request["body"]["properties"]["stage"]
    assert stored["properties"]["changed_at"].isdigit()
