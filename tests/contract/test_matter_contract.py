"""Matter (`POST /v1/timeline_events`): headers, idempotency (5xx not memoised, 409 on another body),
RFC 7807 problems and the test/live host rule, against the sandbox over real HTTP."""

from __future__ import annotations

import uuid

import pytest
import requests
from timeline_bridge import keys
from timeline_bridge.config import Settings
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.targets.base import Delivered
from timeline_bridge.targets.matter import TEST_BASE_URL, MatterClient, base_url_for

KEY = "sk_test_sandbox"
EVENTS = "/v1/timeline_events"


def _post(matter, body, **headers):
    sent = {
        "Authorization": f"Bearer {KEY}",
        "Matter-Version": "2026-06-10",
        "Idempotency-Key": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return requests.post(
        matter.url + EVENTS, json=body, headers={k: v for k, v in sent.items() if v is not None}, timeout=5
    )


def test_event_appended_with_matter_id_when_body_is_valid(matter, matter_client, make_job):
    [outcome] = matter_client.send([make_job("matter")])
    assert isinstance(outcome, Delivered) and outcome.status == 201
    [event] = matter.events()
    assert outcome.provider_id == event["id"]
    assert (event["object"], event["mode"], event["kind"]) == ("timeline_event", "test", "compliance")


def test_request_carries_version_and_uuid_key_from_job_when_sent(
    matter, client_from_environ, make_job, monkeypatch
):
    monkeypatch.setenv("MATTER_VERSION", "2026-05-01")
    job = make_job("matter")
    client_from_environ(MatterClient).send([job])
    [request] = matter.requests
    assert request["headers"]["matter-version"] == "2026-05-01"
    assert request["headers"]["idempotency-key"] == keys.job_uuid(job.key)
    assert str(uuid.UUID(request["headers"]["idempotency-key"])) == request["headers"]["idempotency-key"]
    assert request["headers"]["authorization"] == f"Bearer {KEY}"


def test_same_key_reused_and_retry_runs_fresh_when_matter_answered_5xx(matter, matter_client, make_job):
    job = make_job("matter")
    matter.inject("server_error", status=503)
    [first] = matter_client.send([job])
    assert isinstance(first, RetryLaterError) and (first.status, first.code) == (503, "internal_error")
    [second] = matter_client.send([job])
    assert isinstance(second, Delivered)
    assert {r["headers"]["idempotency-key"] for r in matter.requests} == {keys.job_uuid(job.key)}
    assert len(matter.events()) == 1


def test_one_event_when_job_is_retried_after_lost_response(matter, matter_client, make_job):
    job = make_job("matter")
    matter.inject("lose_response")
    [first] = matter_client.send([job])
    assert isinstance(first, RetryLaterError) and first.ambiguous
    [second] = matter_client.send([job])
    assert isinstance(second, Delivered)
    [event] = matter.events()
    assert second.provider_id == event["id"]


def test_replay_returns_original_request_id_when_key_and_body_repeat(matter, make_job):
    key = str(uuid.uuid4())
    first = _post(matter, make_job("matter").body, Idempotency_Key=key)
    again = _post(matter, make_job("matter").body, Idempotency_Key=key)
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert first.headers["Matter-Request-Id"] == again.headers["Matter-Request-Id"]


def test_conflict_is_permanent_with_matter_code_when_same_key_carries_another_body(
    matter, matter_client, make_job
):
    job = make_job("matter")
    assert isinstance(matter_client.send([job])[0], Delivered)
    job.body["title"] = "Edited after the first delivery"
    [outcome] = matter_client.send([job])
    assert isinstance(outcome, PermanentDeliveryError)
    assert (outcome.status, outcome.code) == (409, "validation_idempotency_key_conflict")
    assert "different body" in outcome.message
    assert len(matter.events()) == 1


def test_rejected_body_is_permanent_with_validation_failed_when_fields_are_wrong(
    matter, matter_client, make_job
):
    body = {"kind": "sales", "title": "", "occurred_at": "1 Jan 2026", "colour": "red"}
    [outcome] = matter_client.send([make_job("matter", body)])
    assert isinstance(outcome, PermanentDeliveryError)
    assert (outcome.status, outcome.code) == (422, "validation_failed")
    assert {e["field"] for e in outcome.details} == {"kind", "title", "occurred_at", "colour"}
    assert outcome.request_id and outcome.request_id.startswith("req_")


def test_mode_mismatch_is_permanent_when_live_key_meets_test_host(client_from_environ, matter, make_job):
    matter.add_key("sk_live_abc")
    [outcome] = client_from_environ(MatterClient, token=lambda: "sk_live_abc").send([make_job("matter")])
    assert isinstance(outcome, PermanentDeliveryError) and (outcome.status, outcome.code) == (
        401,
        "auth_token_mode_mismatch",
    )


def test_unknown_key_is_retry_later_when_matter_answers_auth_token_invalid(
    client_from_environ, matter, make_job
):
    [outcome] = client_from_environ(MatterClient, token=lambda: "sk_test_revoked").send([make_job("matter")])
    assert isinstance(outcome, RetryLaterError) and (outcome.status, outcome.code) == (
        401,
        "auth_token_invalid",
    )


def test_test_key_goes_to_test_host_when_no_base_url_is_configured(monkeypatch):
    monkeypatch.delenv("MATTER_BASE_URL", raising=False)
    settings = Settings.from_environ()
    assert base_url_for("sk_test_123", settings) == TEST_BASE_URL == "https://api.test.mattermode.com"
    assert base_url_for("sk_live_123", settings) is None  # settings.base_url("matter"): the live host
    monkeypatch.setenv("MATTER_BASE_URL", "https://matter.internal.example")
    assert base_url_for("sk_test_123", Settings.from_environ()) is None


@pytest.mark.parametrize(
    ("headers", "param"),
    [
        ({"Matter_Version": None}, "Matter-Version"),
        ({"Matter_Version": "2019-01-01"}, "Matter-Version"),
        ({"Idempotency_Key": None}, "Idempotency-Key"),
        ({"Idempotency_Key": "not-a-uuid"}, "Idempotency-Key"),
        ({"Idempotency_Key": "a" * 300}, "Idempotency-Key"),
        ({"Authorization": "Token sk_test_sandbox"}, "Authorization"),
    ],
)
def test_header_rule_enforced_when_header_is_missing_or_malformed(matter, make_job, headers, param):
    answer = _post(matter, make_job("matter").body, **headers)
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/problem+json"
    problem = answer.json()
    assert (problem["code"], problem["param"]) == ("validation_header_invalid", param)
    assert {"type", "title", "status", "detail", "code", "request_id"} <= set(problem)


def test_append_only_when_event_is_patched_or_deleted(matter):
    for method in ("PATCH", "PUT", "DELETE"):
        answer = requests.request(
            method,
            f"{matter.url}{EVENTS}/tle_1",
            json={},
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=5,
        )
        assert answer.status_code == 405 and answer.json()["code"] == "method_not_allowed"


def test_rate_limit_headers_on_every_answer_and_429_when_exceeded(matter, make_job):
    matter.set_rate_limits([(2, 3600.0)])
    answers = [_post(matter, make_job("matter").body) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert all("X-RateLimit-Limit" in a.headers and "X-RateLimit-Reset" in a.headers for a in answers)
    throttled = answers[-1]
    assert throttled.json()["code"] == "rate_limited"
    assert int(throttled.headers["Retry-After"]) == throttled.json()["retry_after"] > 0


def test_throttled_with_retry_after_when_matter_answers_429(matter, matter_client, make_job):
    matter.inject("rate_limit", retry_after=12)
    [outcome] = matter_client.send([make_job("matter")])
    assert isinstance(outcome, RetryLaterError) and outcome.throttled
    assert (outcome.status, outcome.code, outcome.retry_after) == (429, "rate_limited", 12.0)


def _problem(status, code, **extra):
    return {
        "type": f"https://mattermode.com/docs/errors/{code}",
        "title": "Problem",
        "status": status,
        "detail": f"detail of {code}",
        "instance": "/requests/req_Qw9xYz8A",
        "code": code,
        "request_id": "req_Qw9xYz8A",
        **extra,
    }


@pytest.mark.parametrize(
    ("status", "code", "extra", "headers", "expected", "delay"),
    [
        (400, "validation_header_invalid", {"param": "Matter-Version"}, {}, PermanentDeliveryError, None),
        (400, "validation_body_invalid", {}, {}, PermanentDeliveryError, None),
        (
            422,
            "validation_failed",
            {"errors": [{"field": "kind", "code": "invalid_enum", "message": "bad"}]},
            {},
            PermanentDeliveryError,
            None,
        ),
        (401, "auth_token_invalid", {}, {}, RetryLaterError, None),
        (401, "auth_token_mode_mismatch", {}, {}, PermanentDeliveryError, None),
        (409, "idempotency_key_replay", {}, {}, PermanentDeliveryError, None),
        (409, "idempotency_key_reused_with_different_body", {}, {}, PermanentDeliveryError, None),
        (409, "validation_idempotency_key_conflict", {}, {}, PermanentDeliveryError, None),
        (429, "rate_limited", {"retry_after": 30}, {"Retry-After": "30"}, RetryLaterError, 30.0),
        (429, "rate_limited", {"retry_after": 45}, {}, RetryLaterError, 45.0),
        (500, "internal_error", {}, {}, RetryLaterError, None),
    ],
)
def test_documented_problem_classified_when_matter_answers_it(
    matter, matter_client, make_job, status, code, extra, headers, expected, delay
):
    matter.inject(
        "respond",
        status=status,
        json=_problem(status, code, **extra),
        headers={"Content-Type": "application/problem+json", **headers},
    )
    [outcome] = matter_client.send([make_job("matter")])
    assert type(outcome) is expected
    assert (outcome.status, outcome.code, outcome.request_id) == (status, code, "req_Qw9xYz8A")
    assert outcome.message.startswith(f"detail of {code}")
    assert outcome.details == extra.get("errors", [])
    assert getattr(outcome, "retry_after", None) == delay
    if status == 409:
        assert "different body" in outcome.message


def test_problem_without_fields_tolerated_when_body_is_empty(matter, matter_client, make_job):
    matter.inject("respond", status=503, body=b"", headers={"Matter-Request-Id": "req_only_header"})
    [outcome] = matter_client.send([make_job("matter")])
    assert isinstance(outcome, RetryLaterError) and (outcome.code, outcome.request_id) == (
        None,
        "req_only_header",
    )
