"""HubSpot's two timeline APIs side by side: each job goes to the API its body names (v3
`eventTemplateId`, 2026-03 `eventTypeName`), batched apart; a 2026-03 batch answer that reports
errors inside a 200 settles each input on its own; a 409 is a delivery only for the job's own key.
Client against the sandbox over real HTTP (the default API stays v3 here)."""

from __future__ import annotations

import pytest
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.targets.base import Delivered

V3_SINGLE = "/integrators/timeline/v3/events"
V3_BATCH = "/integrators/timeline/v3/events/batch/create"
APP_SINGLE = "/integrators/timeline/2026-03/events"
APP_BATCH = "/integrators/timeline/2026-03/events/batch"
DEAL_TYPE = "ae0000001_deal-stage-changed"
OCCURRENCE = {
    "eventTypeName": DEAL_TYPE,
    "objectId": "98442",
    "properties": {"stage": "closedwon", "changed_at": "1767225600000"},
}


@pytest.fixture(autouse=True)
def default_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUBSPOT_TIMELINE_API", raising=False)


def _occurrence(make_job, **body):
    return make_job("hubspot", {**OCCURRENCE, **body})


def _answer(results, errors, status="COMPLETE"):
    answer = {
        "status": status,
        "results": results,
        "startedAt": "2026-01-01T00:00:00Z",
        "completedAt": "2026-01-01T00:00:01Z",
    }
    if errors is not None:
        answer.update(numErrors=len(errors), errors=errors)
    return answer


def test_v3_and_app_event_jobs_go_in_batches_of_their_own_when_sent_together(
    hubspot, hubspot_client, make_job
):
    v3_jobs = [make_job("hubspot") for _ in range(3)]
    app_jobs = [_occurrence(make_job) for _ in range(3)]
    mixed = [v3_jobs[0], app_jobs[0], v3_jobs[1], app_jobs[1], app_jobs[2], v3_jobs[2]]

    outcomes = hubspot_client.send(mixed)

    assert all(isinstance(o, Delivered) for o in outcomes)
    assert [(r["path"], len(r["json"]["inputs"]), r["status"]) for r in hubspot.requests] == [
        (V3_BATCH, 3, 201),
        (APP_BATCH, 3, 200),
    ]
    assert all("eventTemplateId" in i for i in hubspot.requests[0]["json"]["inputs"])
    assert all("eventTypeName" in i for i in hubspot.requests[1]["json"]["inputs"])
    assert all(hubspot.event("1001298", j.key) for j in v3_jobs)
    assert all(hubspot.occurrence(DEAL_TYPE, j.key) for j in app_jobs)


def test_tokens_go_as_strings_when_a_job_holds_numbers_and_booleans(hubspot, hubspot_client, make_job):
    job = make_job("hubspot")  # the fixture body has changed_at and amount as JSON numbers
    job.body["tokens"].update(amount=1200.0, deal_name=True)

    [outcome] = hubspot_client.send([job])

    assert isinstance(outcome, Delivered)
    tokens = hubspot.requests[0]["json"]["tokens"]
    assert all(isinstance(v, str) for v in tokens.values())
    assert (tokens["changed_at"], tokens["amount"], tokens["deal_name"]) == ("1767225600000", "1200", "true")


def test_input_refused_inside_a_200_is_not_delivered_when_an_app_events_batch_reports_errors(
    hubspot, hubspot_client, make_job
):
    good, refused, unnamed = (_occurrence(make_job) for _ in range(3))
    errors = [
        {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": f"Occurrence {refused.key}: property 'stage' is not one of the option values",
            "context": {"id": [refused.key]},
            "errors": [],
            "links": {},
        },
        {"status": "error", "category": "INTERNAL_ERROR", "message": "try again", "context": {}},
    ]
    results = [{**OCCURRENCE, "id": good.key}]
    hubspot.inject("respond", status=200, json=_answer(results, errors))

    first, second, third = hubspot_client.send([good, refused, unnamed])

    assert isinstance(first, Delivered) and first.status == 200
    assert isinstance(second, PermanentDeliveryError)
    assert (second.status, second.code) == (200, "VALIDATION_ERROR") and refused.key in second.message
    assert isinstance(third, RetryLaterError) and third.code == "batch_result_unconfirmed"


def test_every_input_delivered_when_an_app_events_batch_answers_200_without_errors(
    hubspot, hubspot_client, make_job
):
    jobs = [_occurrence(make_job) for _ in range(2)]
    results = [{**OCCURRENCE, "id": j.key} for j in jobs]
    hubspot.inject("respond", status=200, json=_answer(results, [], status="COMPLETE"))

    assert all(isinstance(o, Delivered) for o in hubspot_client.send(jobs))


def test_unconfirmed_input_is_delivered_on_its_retry_when_hubspot_stored_it_after_all(
    hubspot, hubspot_client, make_job
):
    stored_meanwhile = _occurrence(make_job)
    hubspot_client.send([stored_meanwhile])  # HubSpot holds it; the 200 below does not say so
    other = _occurrence(make_job)
    hubspot.inject("respond", status=200, json=_answer([], [{"category": "INTERNAL_ERROR", "message": "x"}]))

    first = hubspot_client.send([stored_meanwhile, other])
    retried = hubspot_client.send([stored_meanwhile])

    assert all(isinstance(o, RetryLaterError) for o in first)
    [outcome] = retried
    assert isinstance(outcome, Delivered) and outcome.replayed and outcome.status == 409


def test_conflict_inside_a_200_is_a_delivery_only_for_the_job_key(hubspot, hubspot_client, make_job):
    own, foreign = _occurrence(make_job), _occurrence(make_job, id="deal-98442")
    errors = [
        {"status": "error", "category": "CONFLICT", "message": "exists", "context": {"id": [own.key]}},
        {"status": "error", "category": "CONFLICT", "message": "exists", "context": {"id": ["deal-98442"]}},
    ]
    hubspot.inject("respond", status=200, json=_answer([], errors))

    first, second = hubspot_client.send([own, foreign])

    assert isinstance(first, Delivered) and first.replayed
    assert isinstance(second, PermanentDeliveryError) and second.code == "CONFLICT"


def test_409_on_an_id_the_mapping_set_is_not_a_delivery_when_another_event_holds_it(
    hubspot, hubspot_client, make_job
):
    first_event = _occurrence(make_job, id="deal-98442")
    second_event = _occurrence(make_job, id="deal-98442", properties={"stage": "closedlost"})

    [stored] = hubspot_client.send([first_event])
    [refused] = hubspot_client.send([second_event])

    assert isinstance(stored, Delivered) and stored.provider_id == "deal-98442"
    assert isinstance(refused, PermanentDeliveryError)
    assert (refused.status, refused.code) == (409, "occurrence_id_taken")
    assert "not counted as delivered" in refused.message
    assert hubspot.occurrence(DEAL_TYPE, "deal-98442")["properties"]["stage"] == "closedwon"


def test_409_on_the_job_key_is_a_delivery_when_the_job_is_resent(hubspot, hubspot_client, make_job):
    job = _occurrence(make_job)
    hubspot_client.send([job])

    [outcome] = hubspot_client.send([job])

    assert isinstance(outcome, Delivered) and outcome.replayed and outcome.provider_id == job.key


def test_each_job_sent_alone_when_a_v3_batch_is_refused_whole_with_422(hubspot, hubspot_client, make_job):
    jobs = [make_job("hubspot") for _ in range(3)]
    hubspot.inject(
        "respond",
        status=422,
        json={"status": "error", "message": "Invalid input", "category": "VALIDATION_ERROR"},
    )

    outcomes = hubspot_client.send(jobs)

    assert [r["path"] for r in hubspot.requests] == [V3_BATCH, V3_SINGLE, V3_SINGLE, V3_SINGLE]
    assert all(isinstance(o, Delivered) for o in outcomes)


def test_throttle_on_one_api_holds_the_other_when_both_are_in_one_call(hubspot, hubspot_client, make_job):
    jobs = [make_job("hubspot"), make_job("hubspot"), _occurrence(make_job), _occurrence(make_job)]
    hubspot.inject("rate_limit")

    outcomes = hubspot_client.send(jobs)

    assert len(hubspot.requests) == 1  # one account, one limit
    assert all(isinstance(o, RetryLaterError) and o.throttled for o in outcomes)


def test_app_event_job_goes_to_the_app_events_api_when_sent_alone(hubspot, hubspot_client, make_job):
    job = _occurrence(make_job)

    [outcome] = hubspot_client.send([job])

    assert isinstance(outcome, Delivered) and outcome.status == 201
    assert [r["path"] for r in hubspot.requests] == [APP_SINGLE]


def test_sandbox_refuses_an_occurrence_field_of_the_wrong_spec_type_with_400_when_posted_directly(hubspot):
    import requests

    body = {**OCCURRENCE, "id": "o-1", "objectId": 98442}

    answer = requests.post(
        hubspot.url + APP_SINGLE,
        json=body,
        headers={"Authorization": "Bearer hubspot-sandbox-token"},
        timeout=5,
    )

    assert answer.status_code == 400 and "objectId must be a string, not a number" in answer.json()["message"]
    assert hubspot.events() == []
