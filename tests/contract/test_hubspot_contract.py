"""HubSpot timeline v3: single and batch creates against the sandbox over
real HTTP, 207 correlation by our own id, chunking, and every error envelope classified."""

from __future__ import annotations

import time

import pytest
import requests
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.targets.base import Delivered
from timeline_bridge.targets.http import scalar_text, seconds_until_next_utc_midnight
from timeline_bridge.targets.hubspot import HubspotClient

TOKEN = "hubspot-sandbox-token"
BATCH = "/integrators/timeline/v3/events/batch/create"
SINGLE = "/integrators/timeline/v3/events"


def _as_sent(body):
    """A body posted straight to the sandbox, its token values strings as the client sends them
    (the spec's `tokens` is a map of strings: the sandbox refuses numbers with 422)."""
    return {**body, "tokens": {name: scalar_text(value) for name, value in body["tokens"].items()}}


def _bad(make_job, **tokens):
    job = make_job("hubspot")
    job.body["tokens"].update(tokens)
    return job


def test_single_job_uses_single_create_with_job_key_as_id_when_sent_alone(hubspot, hubspot_client, make_job):
    job = make_job("hubspot")
    [outcome] = hubspot_client.send([job])
    assert isinstance(outcome, Delivered) and (outcome.provider_id, outcome.status) == (job.key, 201)
    [request] = hubspot.requests
    assert request["path"] == SINGLE
    assert request["json"]["id"] == job.key
    assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
    stored = hubspot.event("1001298", job.key)
    assert stored["tokens"]["amount"] == "1200" and stored["objectType"] == "deals"


def test_mapping_id_kept_when_mapping_sets_a_deterministic_id(hubspot, hubspot_client, make_job):
    job = make_job("hubspot")
    job.body["id"] = "hubspot:deal:98442:closedwon"
    [outcome] = hubspot_client.send([job])
    assert isinstance(outcome, Delivered) and outcome.provider_id == "hubspot:deal:98442:closedwon"


def test_uuid_placeholder_refused_without_sending_when_id_is_not_deterministic(
    hubspot, hubspot_client, make_job
):
    job = make_job("hubspot")
    job.body["id"] = "deal-{{uuid}}"
    [outcome] = hubspot_client.send([job])
    assert isinstance(outcome, PermanentDeliveryError) and outcome.code == "nondeterministic_id"
    assert hubspot.requests == []


def test_batches_hold_one_template_and_at_most_100_inputs_when_many_jobs_arrive(
    client_from_environ, hubspot, make_job
):
    contact_template = {
        "eventTemplateId": "1001299",
        "email": "ada@example.com",
        "tokens": {"summary": "Approved", "happened_at": 1767225600000, "channel": "slack"},
    }
    jobs = [make_job("hubspot") for _ in range(150)] + [
        make_job("hubspot", contact_template) for _ in range(100)
    ]
    outcomes = client_from_environ(HubspotClient).send(jobs)
    assert all(isinstance(o, Delivered) for o in outcomes)
    batches = [r["json"]["inputs"] for r in hubspot.requests]
    assert [r["path"] for r in hubspot.requests] == [BATCH, BATCH, BATCH]
    assert [len(b) for b in batches] == [100, 50, 100]
    assert all(len({i["eventTemplateId"] for i in b}) == 1 for b in batches)
    assert len(hubspot.events()) == 250


def test_only_failed_jobs_fail_when_batch_answers_207(hubspot, hubspot_client, make_job):
    good = [make_job("hubspot") for _ in range(3)]
    seconds = _bad(make_job, changed_at=1767225600)  # epoch seconds: HubSpot wants milliseconds
    unknown = _bad(make_job, colour="blue")
    jobs = [good[0], seconds, good[1], unknown, good[2]]
    outcomes = hubspot_client.send(jobs)
    assert hubspot.requests[0]["path"] == BATCH
    assert [type(o).__name__ for o in outcomes] == [
        "Delivered",
        "PermanentDeliveryError",
        "Delivered",
        "PermanentDeliveryError",
        "Delivered",
    ]
    assert outcomes[1].code == outcomes[3].code == "VALIDATION_ERROR"
    assert "milliseconds" in outcomes[1].message and "colour" in outcomes[3].message
    assert {e["id"] for e in hubspot.events()} == {j.key for j in good}


def test_uncorrelated_errors_retry_unconfirmed_jobs_when_207_names_no_id(hubspot, hubspot_client, make_job):
    jobs = [make_job("hubspot") for _ in range(3)]
    answer = {
        "status": "COMPLETE",
        "results": [{"id": jobs[0].key, "eventTemplateId": "1001298", "tokens": {}, "objectType": "deals"}],
        "numErrors": 2,
        "errors": [
            {
                "status": "error",
                "category": "VALIDATION_ERROR",
                "message": "Something was wrong",
                "context": {},
            },
            {"status": "error", "category": "VALIDATION_ERROR", "message": f"Event {jobs[2].key} is invalid"},
        ],
        "startedAt": "2026-01-01T00:00:00Z",
        "completedAt": "2026-01-01T00:00:01Z",
    }
    hubspot.inject("respond", status=207, json=answer)
    first, second, third = hubspot_client.send(jobs)
    assert isinstance(first, Delivered)
    assert isinstance(second, RetryLaterError) and second.code == "batch_result_unconfirmed"
    assert isinstance(third, PermanentDeliveryError) and third.code == "VALIDATION_ERROR"


def test_each_job_sent_alone_when_whole_batch_is_refused_with_400(hubspot, hubspot_client, make_job):
    jobs = [make_job("hubspot"), _bad(make_job, changed_at="yesterday"), make_job("hubspot")]
    hubspot.inject(
        "respond",
        status=400,
        json={"status": "error", "message": "Invalid input", "category": "VALIDATION_ERROR"},
    )
    outcomes = hubspot_client.send(jobs)
    assert [r["path"] for r in hubspot.requests] == [BATCH, SINGLE, SINGLE, SINGLE]
    assert [type(o).__name__ for o in outcomes] == ["Delivered", "PermanentDeliveryError", "Delivered"]
    assert outcomes[1].status == 400 and outcomes[1].code == "VALIDATION_ERROR"
    assert len(hubspot.events()) == 2


def test_one_event_when_batch_is_retried_after_lost_response(hubspot, hubspot_client, make_job):
    jobs = [make_job("hubspot") for _ in range(5)]
    hubspot.inject("lose_response")
    first = hubspot_client.send(jobs)
    assert all(isinstance(o, RetryLaterError) and o.ambiguous for o in first)
    second = hubspot_client.send(jobs)
    assert all(isinstance(o, Delivered) for o in second)
    assert len(hubspot.events()) == 5  # same (template, id): upserted, not added


def test_one_event_when_single_job_is_retried_after_lost_response(hubspot, hubspot_client, make_job):
    job = make_job("hubspot")
    hubspot.inject("lose_response")
    assert isinstance(hubspot_client.send([job])[0], RetryLaterError)
    assert isinstance(hubspot_client.send([job])[0], Delivered)
    assert [e["id"] for e in hubspot.events()] == [job.key]


def test_rest_of_call_waits_when_first_batch_is_throttled(hubspot, hubspot_client, make_job):
    contact = {"eventTemplateId": "1001299", "email": "a@example.com", "tokens": {"summary": "x"}}
    jobs = [
        make_job("hubspot"),
        make_job("hubspot"),
        make_job("hubspot", contact),
        make_job("hubspot", contact),
    ]
    hubspot.inject("rate_limit")
    outcomes = hubspot_client.send(jobs)
    assert len(hubspot.requests) == 1
    assert all(isinstance(o, RetryLaterError) and o.throttled and o.retry_after == 10.0 for o in outcomes)


@pytest.mark.parametrize(
    ("params", "expected_delay"),
    [
        ({}, 10.0),  # X-HubSpot-RateLimit-Interval-Milliseconds: 10000
        ({"retry_after": 7}, 7.0),
        ({"interval_ms": 1000, "policy": "SECONDLY"}, 1.0),
    ],
)
def test_throttled_with_hubspot_delay_when_hubspot_answers_429(
    hubspot, hubspot_client, make_job, params, expected_delay
):
    hubspot.inject("rate_limit", **params)
    [outcome] = hubspot_client.send([make_job("hubspot")])
    assert isinstance(outcome, RetryLaterError) and outcome.throttled
    assert (outcome.status, outcome.code, outcome.retry_after) == (429, "RATE_LIMITS", expected_delay)
    assert outcome.request_id


def test_throttled_until_midnight_utc_when_daily_limit_is_reached(hubspot, hubspot_client, make_job):
    hubspot.inject("rate_limit", policy="DAILY")
    [outcome] = hubspot_client.send([make_job("hubspot")])
    assert isinstance(outcome, RetryLaterError) and outcome.throttled
    assert abs(outcome.retry_after - seconds_until_next_utc_midnight(time.time())) < 5


def test_documented_limit_answers_429_with_hubspot_headers_when_exceeded(hubspot, make_job):
    hubspot.set_rate_limits([(2, 3600.0)])
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answers = [
        requests.post(
            hubspot.url + SINGLE, json=_as_sent(make_job("hubspot").body), headers=headers, timeout=5
        )
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 201, 429]
    body = answers[-1].json()
    assert (body["errorType"], body["category"], body["policyName"]) == (
        "RATE_LIMIT",
        "RATE_LIMITS",
        "TEN_SECONDLY_ROLLING",
    )
    assert answers[-1].headers["X-HubSpot-RateLimit-Max"] == "2"
    assert answers[-1].headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert "X-HubSpot-RateLimit-Interval-Milliseconds" in answers[-1].headers


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (
            400,
            {
                "status": "error",
                "message": "Invalid input JSON on line 1, column 77: Cannot build TimelineEvent, some of required attributes are not set [eventTemplateId]",
                "correlationId": "aeb5f871-7f07-4993-9211-075dc63e7cbf",
                "category": "VALIDATION_ERROR",
                "links": {"knowledge-base": "https://www.hubspot.com/products/service/knowledge-base"},
            },
            PermanentDeliveryError,
            "VALIDATION_ERROR",
        ),
        (
            401,
            {
                "status": "error",
                "message": "Authentication credentials not found.",
                "correlationId": "c1",
                "category": "INVALID_AUTHENTICATION",
            },
            RetryLaterError,
            "INVALID_AUTHENTICATION",
        ),
        (
            403,
            {
                "status": "error",
                "message": "Missing scopes",
                "correlationId": "c2",
                "category": "MISSING_SCOPES",
                "context": {"missingScopes": ["timeline"]},
            },
            PermanentDeliveryError,
            "MISSING_SCOPES",
        ),
        (
            404,
            {
                "status": "error",
                "message": "Event template not found",
                "correlationId": "c3",
                "category": "OBJECT_NOT_FOUND",
            },
            PermanentDeliveryError,
            "OBJECT_NOT_FOUND",
        ),
        (414, {"message": "URI too long"}, PermanentDeliveryError, None),
        (
            429,
            {
                "status": "error",
                "message": "You have reached your secondly limit.",
                "errorType": "RATE_LIMIT",
                "correlationId": "c4",
                "policyName": "SECONDLY",
            },
            RetryLaterError,
            "RATE_LIMIT",
        ),
        (500, {"status": "error", "message": "internal error", "correlationId": "c5"}, RetryLaterError, None),
        (502, {}, RetryLaterError, None),
        (504, {"message": "gateway timeout"}, RetryLaterError, None),
    ],
)
def test_documented_error_envelope_classified_when_hubspot_answers_it(
    hubspot, hubspot_client, make_job, status, body, expected, code
):
    hubspot.inject("respond", status=status, json=body)
    [outcome] = hubspot_client.send([make_job("hubspot")])
    assert type(outcome) is expected
    assert (outcome.status, outcome.code) == (status, code)
    assert outcome.request_id == body.get("correlationId")
    if "message" in body:
        assert outcome.message == body["message"]
    if status == 403:
        assert {"context": {"missingScopes": ["timeline"]}} in outcome.details


def test_wrong_token_is_retry_later_when_hubspot_answers_invalid_authentication(
    client_from_environ, hubspot, make_job
):
    [outcome] = client_from_environ(HubspotClient, token=lambda: "revoked").send([make_job("hubspot")])
    assert isinstance(outcome, RetryLaterError) and (outcome.status, outcome.code) == (
        401,
        "INVALID_AUTHENTICATION",
    )


def test_missing_scope_is_permanent_when_app_lacks_timeline_scope(hubspot, hubspot_client, make_job):
    hubspot.missing_scopes = ["timeline"]
    [outcome] = hubspot_client.send([make_job("hubspot")])
    assert isinstance(outcome, PermanentDeliveryError) and outcome.status == 403
    assert {"context": {"missingScopes": ["timeline"]}} in outcome.details


def test_rejected_event_is_permanent_with_hubspot_code_when_sent_alone(hubspot, hubspot_client, make_job):
    [outcome] = hubspot_client.send([_bad(make_job, changed_at=1767225600)])
    assert isinstance(outcome, PermanentDeliveryError)
    assert (outcome.status, outcome.code) == (400, "VALIDATION_ERROR")
    assert outcome.request_id


def test_unknown_template_is_permanent_when_template_is_not_in_fixture(hubspot, hubspot_client, make_job):
    job = make_job("hubspot")
    job.body["eventTemplateId"] = "999"
    [outcome] = hubspot_client.send([job])
    assert isinstance(outcome, PermanentDeliveryError) and (outcome.status, outcome.code) == (
        404,
        "OBJECT_NOT_FOUND",
    )


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"tokens": {"amount": "lots"}}, "not a number"),
        ({"tokens": {"changed_at": "2026-01-01"}}, "epoch milliseconds"),
        ({"objectId": None}, "objectId is required"),
        ({"timestamp": "yesterday"}, "ISO 8601"),
        (
            {"timelineIFrame": {"linkLabel": "x", "headerLabel": "y", "url": "https://x", "width": 600}},
            "timelineIFrame",
        ),
        ({"event_template_id": "1001298"}, "camelCase"),
    ],
)
def test_event_rule_enforced_when_event_breaks_template_contract(
    hubspot, hubspot_client, make_job, change, fragment
):
    job = make_job("hubspot")
    for name, value in change.items():
        if name == "tokens":
            job.body["tokens"].update(value)
        elif value is None:
            job.body.pop(name)
        else:
            job.body[name] = value
    [outcome] = hubspot_client.send([job])
    assert isinstance(outcome, PermanentDeliveryError) and outcome.code == "VALIDATION_ERROR"
    assert fragment in outcome.message


def test_enumeration_and_contact_identity_enforced_when_template_is_for_contacts(
    hubspot, hubspot_client, make_job
):
    base = {
        "eventTemplateId": "1001299",
        "tokens": {"summary": "x", "channel": "Slack"},
        "email": "a@example.com",
    }
    [label] = hubspot_client.send([make_job("hubspot", base)])
    assert isinstance(label, PermanentDeliveryError) and "option values" in label.message
    anonymous = {"eventTemplateId": "1001299", "tokens": {"channel": "slack"}}
    [nobody] = hubspot_client.send([make_job("hubspot", anonymous)])
    assert isinstance(nobody, PermanentDeliveryError) and "objectId, email or utk" in nobody.message


def test_sandbox_refuses_more_than_100_inputs_when_batch_is_too_big(hubspot, make_job):
    inputs = [{**make_job("hubspot").body, "id": f"e{i}"} for i in range(101)]
    answer = requests.post(
        hubspot.url + BATCH, json={"inputs": inputs}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"
    assert hubspot.events() == []


def test_sandbox_last_write_wins_when_same_template_and_id_are_sent_twice(hubspot, make_job):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    first = {**_as_sent(make_job("hubspot").body), "id": "same"}
    second = {**first, "objectId": "555", "tokens": {**first["tokens"], "stage": "closedlost"}}
    for body in (first, second):
        assert requests.post(hubspot.url + SINGLE, json=body, headers=headers, timeout=5).status_code == 201
    [event] = hubspot.events()
    assert (event["objectId"], event["tokens"]["stage"]) == ("555", "closedlost")
    fetched = requests.get(f"{hubspot.url}{SINGLE}/1001298/same", headers=headers, timeout=5)
    assert fetched.status_code == 200 and fetched.json()["objectId"] == "555"


def test_sandbox_generates_ids_when_id_is_missing_or_a_uuid_placeholder(hubspot, make_job):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for body in (
        {**_as_sent(make_job("hubspot").body), "id": "x-{{uuid}}"},
        _as_sent(make_job("hubspot").body),
        _as_sent(make_job("hubspot").body),
    ):
        requests.post(hubspot.url + SINGLE, json=body, headers=headers, timeout=5)
    ids = [e["id"] for e in hubspot.events()]
    assert len(set(ids)) == 3 and ids[0].startswith("x-") and "{{uuid}}" not in ids[0]


def test_all_invalid_batch_answers_configured_status_when_no_input_is_valid(hubspot, make_job):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    inputs = [{**make_job("hubspot").body, "id": f"bad{i}", "tokens": {"nope": "x"}} for i in range(2)]
    partial = requests.post(hubspot.url + BATCH, json={"inputs": inputs}, headers=headers, timeout=5)
    assert partial.status_code == 207
    assert partial.json()["results"] == [] and partial.json()["numErrors"] == 2
    assert [e["context"]["id"] for e in partial.json()["errors"]] == [["bad0"], ["bad1"]]
    hubspot.all_invalid_status = 400
    refused = requests.post(hubspot.url + BATCH, json={"inputs": inputs}, headers=headers, timeout=5)
    assert refused.status_code == 400


def test_sandbox_refuses_a_numeric_token_with_422_when_posted_like_a_validating_hubspot(hubspot, make_job):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    numeric = {**make_job("hubspot").body, "id": "n-1"}  # changed_at and amount are JSON numbers

    single = requests.post(hubspot.url + SINGLE, json=numeric, headers=headers, timeout=5)
    batch = requests.post(
        hubspot.url + BATCH, json={"inputs": [_as_sent(numeric), numeric]}, headers=headers, timeout=5
    )

    for answer in (single, batch):
        assert answer.status_code == 422
        body = answer.json()
        assert (body["status"], body["category"]) == ("error", "VALIDATION_ERROR")
        assert body["correlationId"] and "must be a string, not a number" in body["message"]
    assert {e["in"] for e in single.json()["errors"]} == {"tokens.changed_at", "tokens.amount"}
    assert {e["in"] for e in batch.json()["errors"]} == {
        "inputs[1].tokens.changed_at",
        "inputs[1].tokens.amount",
    }
    assert hubspot.events() == []  # the whole request was refused


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"objectId": 98442}, "objectId"),
        ({"eventTemplateId": 1001298}, "eventTemplateId"),
        ({"tokens": {"stage": True}}, "tokens.stage"),
        ({"extraData": "x"}, "extraData"),
        ({"timelineIFrame": {"linkLabel": "l", "headerLabel": "h", "url": "u", "width": "600", "height": 400}}, "timelineIFrame.width"),
    ],
)  # fmt: skip
def test_sandbox_refuses_a_field_of_the_wrong_spec_type_with_422_when_posted_directly(
    hubspot, make_job, change, field
):
    body = {**_as_sent(make_job("hubspot").body), "id": "t-1", **change}

    answer = requests.post(
        hubspot.url + SINGLE, json=body, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )

    assert answer.status_code == 422 and [e["in"] for e in answer.json()["errors"]] == [field]
    assert hubspot.events() == []
