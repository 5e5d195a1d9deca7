"""Stora (Public API 2025-09): our requests against the sandbox over real HTTP, and every
documented error envelope classified into the right outcome."""

from __future__ import annotations

import json
import time

import pytest
import requests
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.targets.base import Delivered
from timeline_bridge.targets.stora import EVENTS_PATH, StoraClient, idempotency_key
from timeline_bridge_tools.sandboxes.stora import ERRORS, LINKS

TOKEN = "stora-sandbox-token"


def _post(stora, body, *, token=TOKEN, key=None, headers=None, path=EVENTS_PATH):
    sent = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **(headers or {})}
    if key:
        sent["Idempotency-Key"] = key
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(stora.url + path, data=data, headers=sent, timeout=5)


def test_event_delivered_with_stora_event_id_when_body_is_valid(stora, stora_client, make_job):
    job = make_job("stora")
    [outcome] = stora_client.send([job])
    assert isinstance(outcome, Delivered)
    assert outcome.status == 201
    [event] = stora.events()
    assert outcome.provider_id == event["id"] and event["id"].startswith("aevt_")
    assert event["variables"] == {"new_state": "Closed won"}
    assert event["unit"] is None and event["contact"] == {"id": "con_8d0b2a1c3e4f5a6b"}


def test_request_carries_bearer_json_headers_and_job_key_when_sent(stora, stora_client, make_job):
    job = make_job("stora")
    stora_client.send([job])
    [request] = stora.requests
    assert request["method"] == "POST" and request["path"] == "/2025-09/timeline/events"
    assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["accept"] == "application/json"
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["idempotency-key"] == job.key
    assert request["json"] == job.body


def test_rejected_body_is_permanent_with_invalid_content_and_pointers_when_ids_are_malformed(
    stora, stora_client, make_job
):
    body = {**make_job("stora").body, "contact": {"id": "98442"}, "variables": {"new_state": 3}}
    [outcome] = stora_client.send([make_job("stora", body)])
    assert isinstance(outcome, PermanentDeliveryError)
    assert (outcome.status, outcome.code) == (422, "invalid_content")
    assert {d["pointer"] for d in outcome.details} == {"/contact/id", "/variables/new_state"}
    assert outcome.request_id
    assert stora.events() == []


@pytest.mark.parametrize(
    ("field", "value", "pointer"),
    [
        ("source", {"id": "src_1"}, "/source/id"),
        ("template", {"id": "tpl_1"}, "/template/id"),
        ("site", {"id": "location_1"}, "/site/id"),
        ("external", {"id": "deal_1", "title": "x"}, "/external/title"),
        ("occurred_at", "2026-01-01", "/occurred_at"),
    ],
)
def test_body_rule_enforced_when_field_breaks_contract(stora, stora_client, make_job, field, value, pointer):
    body = {**make_job("stora").body, field: value}
    [outcome] = stora_client.send([make_job("stora", body)])
    assert isinstance(outcome, PermanentDeliveryError) and outcome.code == "invalid_content"
    assert pointer in {d["pointer"] for d in outcome.details}


def test_custom_variables_not_enforced_but_predefined_are_when_template_needs_contact(
    stora, stora_client, make_job
):
    without_custom = {k: v for k, v in make_job("stora").body.items() if k != "variables"}
    [delivered] = stora_client.send([make_job("stora", without_custom)])
    assert isinstance(delivered, Delivered)
    without_contact = {k: v for k, v in make_job("stora").body.items() if k != "contact"}
    [refused] = stora_client.send([make_job("stora", without_contact)])
    assert isinstance(refused, PermanentDeliveryError) and refused.code == "invalid_content"
    assert refused.details[0]["pointer"] == "/contact"


@pytest.mark.parametrize(("status", "code"), [(404, "resource_not_found"), (422, "invalid_content")])
def test_unknown_template_refused_with_configured_status_when_template_not_in_fixture(
    client_from_environ, open_sandboxes, make_job, status, code
):
    stora = open_sandboxes["stora"]
    stora.unknown_reference_status = status
    body = {**make_job("stora").body, "template": {"id": "aetpl_ffffffffffffffff"}}
    [outcome] = client_from_environ(StoraClient).send([make_job("stora", body)])
    assert isinstance(outcome, PermanentDeliveryError)
    assert (outcome.status, outcome.code) == (status, code)
    assert outcome.details[0]["pointer"] == "/template/id"


def test_wrong_token_is_retry_later_when_stora_answers_invalid_token(client_from_environ, stora, make_job):
    [outcome] = client_from_environ(StoraClient, token=lambda: "expired").send([make_job("stora")])
    assert isinstance(outcome, RetryLaterError)
    assert (outcome.status, outcome.code) == (401, "invalid_token")
    assert stora.events() == []


def test_missing_scope_is_permanent_forbidden_when_token_cannot_write(client_from_environ, stora, make_job):
    stora.add_token("read-only", scopes=["public.timeline_source:read"])
    [outcome] = client_from_environ(StoraClient, token=lambda: "read-only").send([make_job("stora")])
    assert isinstance(outcome, PermanentDeliveryError) and (outcome.status, outcome.code) == (
        403,
        "forbidden",
    )


def test_missing_token_is_retry_later_when_no_credential_is_configured(
    client_from_environ, stora, make_job, monkeypatch
):
    monkeypatch.delenv("STORA_TOKEN")
    [outcome] = client_from_environ(StoraClient).send([make_job("stora")])
    assert isinstance(outcome, RetryLaterError) and outcome.code == "credentials_missing"
    assert stora.requests == []


def test_throttled_with_delay_from_ratelimit_reset_when_stora_answers_429(stora, stora_client, make_job):
    stora.inject("rate_limit", reset_in=30)
    [outcome] = stora_client.send([make_job("stora")])
    assert isinstance(outcome, RetryLaterError) and outcome.throttled
    assert (outcome.status, outcome.code) == (429, "too_many_requests")
    assert 28 <= outcome.retry_after <= 31


def test_documented_limit_answers_429_with_ratelimit_headers_and_no_retry_after_when_exceeded(
    stora, make_job
):
    stora.set_rate_limits([(3, 3600.0)])
    answers = [_post(stora, make_job("stora").body) for _ in range(4)]
    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    throttled = answers[-1]
    assert throttled.json()["error"]["code"] == "too_many_requests"
    assert throttled.headers["RateLimit-Limit"] == "3"
    assert throttled.headers["RateLimit-Remaining"] == "0"
    assert int(throttled.headers["RateLimit-Reset"]) > time.time()
    assert "Retry-After" not in throttled.headers


def test_default_limits_are_ten_per_second_and_sixty_per_minute_when_not_configured(sandboxes):
    from timeline_bridge_tools.sandboxes import StoraSandbox

    assert StoraSandbox.default_rate_limits == ((10, 1.0), (60, 60.0))


def test_one_event_when_job_is_retried_after_lost_response(stora, stora_client, make_job):
    job = make_job("stora")
    stora.inject("lose_response")
    [first] = stora_client.send([job])
    assert isinstance(first, RetryLaterError) and first.ambiguous
    [second] = stora_client.send([job])
    assert isinstance(second, Delivered)
    [event] = stora.events()
    assert second.provider_id == event["id"]
    assert [r["headers"]["idempotency-key"] for r in stora.requests] == [job.key, job.key]


def test_retry_uses_derived_key_and_succeeds_when_stora_memoised_a_5xx(stora, stora_client, make_job):
    job = make_job("stora")
    stora.inject("server_error")
    [first] = stora_client.send([job])
    assert isinstance(first, RetryLaterError) and (first.status, first.code) == (500, "internal_server_error")
    assert job.key_generation == 1 and idempotency_key(job) == f"{job.key}-r1"
    # The old key now replays the stored 5xx, byte for byte.
    replay = _post(stora, job.body, key=job.key)
    assert replay.status_code == 500
    assert replay.json()["error"]["request_id"] == first.request_id  # the stored answer, not a new one
    [second] = stora_client.send([job])
    assert isinstance(second, Delivered)
    assert stora.requests[-1]["headers"]["idempotency-key"] == f"{job.key}-r1"
    assert len(stora.events()) == 1


def test_stored_answer_replayed_byte_for_byte_when_key_is_reused(stora, make_job):
    stora.inject("server_error")
    first = _post(stora, make_job("stora").body, key="k-500")
    again = _post(stora, make_job("stora").body, key="k-500")
    assert first.status_code == again.status_code == 500
    assert first.content == again.content
    refused = _post(stora, {"source": {"id": "x"}}, key="k-422")
    assert refused.status_code == 422
    assert _post(stora, make_job("stora").body, key="k-422").content == refused.content
    created = _post(stora, make_job("stora").body, key="k-201")
    assert _post(stora, make_job("stora").body, key="k-201").content == created.content
    assert len(stora.events()) == 1


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("invalid_request", PermanentDeliveryError),
        ("api_error", PermanentDeliveryError),
        ("invalid_token", RetryLaterError),
        ("forbidden", PermanentDeliveryError),
        ("resource_not_found", PermanentDeliveryError),
        ("invalid_endpoint", PermanentDeliveryError),
        ("invalid_format", PermanentDeliveryError),
        ("conflict", PermanentDeliveryError),
        ("invalid_url_param", PermanentDeliveryError),
        ("invalid_content", PermanentDeliveryError),
        ("too_many_requests", RetryLaterError),
        ("internal_server_error", RetryLaterError),
    ],
)
def test_documented_error_envelope_classified_when_stora_answers_it(
    stora, stora_client, make_job, code, expected
):
    status, kind, message = ERRORS[code]
    envelope = {
        "error": {
            "code": code,
            "details": [{"message": "value at `/email` does not match format: email", "pointer": "/email"}],
            "links": LINKS,
            "message": message,
            "request_id": "01563646-58c1-4607-8fe0-cae3e92c4477",
            "type": kind,
        }
    }
    headers = {"RateLimit-Reset": str(int(time.time()) + 20)} if status == 429 else {}
    stora.inject("respond", status=status, json=envelope, headers=headers)
    job = make_job("stora")
    [outcome] = stora_client.send([job])
    assert type(outcome) is expected
    assert (outcome.status, outcome.code, outcome.message) == (status, code, message)
    assert outcome.request_id == "01563646-58c1-4607-8fe0-cae3e92c4477"
    assert outcome.details == [
        {"message": "value at `/email` does not match format: email", "pointer": "/email"}
    ]
    if status == 429:
        assert outcome.throttled and 18 <= outcome.retry_after <= 21
    assert job.key_generation == (1 if status >= 500 else 0)


@pytest.mark.parametrize("answer", [b"", b"<html>Bad gateway</html>", b'{"error": "boom"}', b"[1, 2]"])
def test_unexpected_error_body_tolerated_when_fields_are_missing(stora, stora_client, make_job, answer):
    stora.inject("respond", status=502, body=answer, headers={"Content-Type": "text/html"})
    [outcome] = stora_client.send([make_job("stora")])
    assert isinstance(outcome, RetryLaterError) and outcome.status == 502 and outcome.code is None


@pytest.mark.parametrize(
    ("path", "method", "status", "code"),
    [
        ("/2025-09/timeline/event", "POST", 404, "invalid_endpoint"),
        ("/2024-01/timeline/events", "POST", 404, "invalid_endpoint"),
        ("/2025-09/timeline/events/aevt_0000000000000000", "PATCH", 404, "resource_not_found"),
    ],
)
def test_routes_enforced_when_path_or_event_is_unknown(stora, make_job, path, method, status, code):
    answer = requests.request(
        method,
        stora.url + path,
        json=make_job("stora").body,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)


def test_headers_enforced_when_accept_or_content_type_or_json_is_wrong(stora, make_job):
    body = make_job("stora").body
    assert _post(stora, body, headers={"Accept": "text/html"}).json()["error"]["code"] == "invalid_format"
    assert _post(stora, body, headers={"Accept": "text/html"}).status_code == 406
    wrong_type = _post(stora, body, headers={"Content-Type": "text/plain"})
    assert (wrong_type.status_code, wrong_type.json()["error"]["code"]) == (400, "invalid_request")
    malformed = _post(stora, b"{not json")
    assert (malformed.status_code, malformed.json()["error"]["code"]) == (400, "invalid_request")
    assert _post(stora, body, token="").json()["error"]["code"] == "invalid_token"


def test_patch_updates_event_when_event_exists(stora, stora_client, make_job):
    [created] = stora_client.send([make_job("stora")])
    answer = requests.patch(
        f"{stora.url}{EVENTS_PATH}/{created.provider_id}",
        json={"description": "Updated", "variables": {"new_state": "Lost"}},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    assert answer.status_code == 200
    [event] = stora.events()
    assert (event["description"], event["variables"]) == ("Updated", {"new_state": "Lost"})
