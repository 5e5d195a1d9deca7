"""Applied Labs (v2026-04): route with trailing slash, X-Shop-Id, metric dedupe by
`deduping_key`, and no blind retry of a contact activity after an ambiguous answer."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import requests
import yaml
from timeline_bridge.delivery import failure_category, stops_target
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.targets.applied import AppliedClient, check_shop_id, classify
from timeline_bridge.targets.base import Delivered
from timeline_bridge_tools.sandboxes import DEFAULT_SHOP_ID

ROOT = Path(__file__).resolve().parents[2]
KEY = "AL_sandbox_key"
CONTACT_BODY = {
    "name": "Deal won",
    "description": "Acme renewal moved to Closed won",
    "event_time": "2026-01-01T00:00:00Z",
    "contact": {"email": "ada@example.com", "name": "Ada Lovelace", "remote_id": "hubspot-51"},
}


def _post(applied, body, path="/v2026-04/events/", **headers):
    sent = {"Authorization": f"Bearer {KEY}", "X-Shop-Id": DEFAULT_SHOP_ID}
    sent.update({k.replace("_", "-"): v for k, v in headers.items()})
    return requests.post(applied.url + path, json=body, headers=sent, timeout=5, allow_redirects=False)


def test_request_uses_trailing_slash_shop_and_job_key_as_deduping_key_when_sent(
    applied, applied_client, make_job
):
    job = make_job("applied")
    [outcome] = applied_client.send([job])
    assert isinstance(outcome, Delivered) and outcome.status == 201
    [request] = applied.requests
    assert request["path"] == "/v2026-04/events/"
    assert request["headers"]["x-shop-id"] == DEFAULT_SHOP_ID
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    assert request["json"]["metric"]["deduping_key"] == job.key
    assert job.body["metric"].get("deduping_key") is None  # the job itself is left as routed
    [event] = applied.events()
    assert outcome.provider_id == event["id"]


def test_deduping_key_forced_to_job_key_when_mapping_set_another(applied, applied_client, make_job):
    job = make_job("applied")
    job.body["metric"]["deduping_key"] = "something-else"
    applied_client.send([job])
    assert applied.requests[0]["json"]["metric"]["deduping_key"] == job.key


def test_metric_counted_once_when_metric_only_job_is_retried_after_lost_response(
    applied, applied_client, make_job
):
    job = make_job("applied")
    applied.inject("lose_response")
    [first] = applied_client.send([job])
    assert isinstance(first, RetryLaterError) and first.ambiguous
    [second] = applied_client.send([job])
    assert isinstance(second, Delivered)
    assert len(applied.requests) == 2
    assert len(applied.events()) == 1 and len(applied.metrics()) == 1


def test_contact_job_dead_lettered_not_retried_when_answer_is_lost(applied, applied_client, make_job):
    job = make_job("applied", CONTACT_BODY)
    applied.inject("lose_response")
    [outcome] = applied_client.send([job])
    assert isinstance(outcome, PermanentDeliveryError) and outcome.code == "ambiguous_timeout"
    assert "does not dedupe contact activities" in outcome.message and "redrive" in outcome.message
    assert len(applied.activities()) == 1  # stored once; the client did not post it again


def test_contact_job_dead_lettered_when_read_times_out(applied, short_timeouts, applied_client, make_job):
    applied.inject("slow", delay=short_timeouts + 0.5)
    [outcome] = applied_client.send(
        [make_job("applied", {**CONTACT_BODY, "metric": {"metric_name": "won", "value": 1}})]
    )
    assert isinstance(outcome, PermanentDeliveryError) and outcome.code == "ambiguous_timeout"
    assert outcome.details == [{"transport": "read_timeout"}]


def test_metric_only_job_retried_when_read_times_out(applied, short_timeouts, applied_client, make_job):
    applied.inject("slow", delay=short_timeouts + 0.5)
    [outcome] = applied_client.send([make_job("applied")])
    assert isinstance(outcome, RetryLaterError) and outcome.ambiguous and outcome.code == "read_timeout"


def test_contact_job_retried_when_connection_was_never_made(
    client_from_environ, applied, make_job, monkeypatch
):
    applied.stop()  # nothing listens on that port any more
    [outcome] = client_from_environ(AppliedClient).send([make_job("applied", CONTACT_BODY)])
    assert isinstance(outcome, RetryLaterError) and not outcome.ambiguous and outcome.code == "connect_error"


def test_sandbox_doubles_contact_activity_when_contact_request_is_repeated(applied):
    for _ in range(2):
        assert (
            _post(
                applied, {**CONTACT_BODY, "metric": {"metric_name": "won", "value": 1, "deduping_key": "k"}}
            ).status_code
            == 201
        )
    assert len(applied.activities()) == 2  # what a blind retry would do
    assert len(applied.metrics()) == 1


def test_rejected_body_is_permanent_with_applied_code_when_metric_ids_are_not_uuids(
    applied, applied_client, make_job
):
    job = make_job("applied")
    job.body["metric"]["metric_object_id"] = "deal-98442"
    [outcome] = applied_client.send([job])
    assert isinstance(outcome, PermanentDeliveryError)
    assert (outcome.status, outcome.code) == (400, "invalid")
    assert outcome.details == [
        {"code": "invalid", "detail": "Must be a valid UUID.", "attr": "metric.metric_object_id"}
    ]


def test_job_without_contact_or_metric_refused_before_sending(applied, applied_client, make_job):
    [outcome] = applied_client.send([make_job("applied", {"name": "Nothing to record"})])
    assert isinstance(outcome, PermanentDeliveryError) and outcome.code == "missing_contact_or_metric"
    assert applied.requests == []
    answer = _post(applied, {"name": "Nothing to record"})
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["detail"] == "At least one of contact or metric must be provided."


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"contact": {"email": "a@example.com"}}, "name"),
        ({"name": "x", "contact": {"email": 5}}, "contact.email"),
        ({"name": "x", "contact": {"email": "a@example.com"}, "event_time": "noon"}, "event_time"),
        ({"name": "x", "metric": {"metric_name": "m", "value": "one"}}, "metric.value"),
        (
            {"name": "x", "metric": {"metric_name": "m", "context_object_id": "ctx"}},
            "metric.context_object_id",
        ),
        (
            {"name": "x", "metric": {"metric_name": "m", "additional_properties": {"n": 1}}},
            "metric.additional_properties",
        ),
    ],
)
def test_body_rule_enforced_when_field_breaks_contract(applied, body, attr):
    answer = _post(applied, body)
    assert answer.status_code == 400
    assert attr in {e["attr"] for e in answer.json()["errors"]}


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"X_Shop_Id": ""}, 400),
        ({"X_Shop_Id": "shop-1"}, 400),
        ({"X_Shop_Id": str(uuid.uuid4())}, 403),
        ({"Authorization": "Bearer wrong"}, 401),
        ({"Authorization": ""}, 401),
    ],
)
def test_headers_enforced_when_key_or_shop_is_wrong(applied, make_job, headers, status):
    assert _post(applied, make_job("applied").body, **headers).status_code == status


def test_route_without_trailing_slash_refused_when_called(applied, make_job):
    assert _post(applied, make_job("applied").body, path="/v2026-04/events").status_code == 404
    applied.missing_slash_status = 301
    moved = _post(applied, make_job("applied").body, path="/v2026-04/events")
    assert moved.status_code == 301 and moved.headers["Location"] == "/v2026-04/events/"
    assert applied.events() == []


def test_wrong_key_and_unknown_shop_wait_for_the_operator_when_applied_refuses(
    client_from_environ, applied, make_job
):
    [auth] = client_from_environ(AppliedClient, token=lambda: "AL_revoked").send([make_job("applied")])
    assert isinstance(auth, RetryLaterError) and (auth.status, auth.code) == (401, "authentication_failed")
    [shop] = client_from_environ(AppliedClient, shop_id=lambda: str(uuid.uuid4())).send([make_job("applied")])
    # The shop is a setting every job shares: a configuration pause, not a dead letter per job.
    assert isinstance(shop, RetryLaterError) and (shop.status, shop.code) == (403, "target_misconfigured")
    assert "APPLIED_SHOP_ID" in shop.message and "permission_denied" in shop.message
    assert failure_category(shop) == "credentials" and stops_target(shop)


def test_unknown_shop_pauses_the_target_when_applied_answers_404(client_from_environ, applied, make_job):
    applied.unknown_shop_status = 404
    [shop] = client_from_environ(AppliedClient, shop_id=lambda: str(uuid.uuid4())).send([make_job("applied")])
    assert isinstance(shop, RetryLaterError) and (shop.status, shop.code) == (404, "target_misconfigured")
    assert stops_target(shop)


def test_shop_id_that_is_not_a_uuid_waits_unsent_when_configured(client_from_environ, applied, make_job):
    [outcome] = client_from_environ(AppliedClient, shop_id=lambda: "shop-1").send([make_job("applied")])
    assert isinstance(outcome, RetryLaterError) and outcome.code == "target_misconfigured"
    assert "APPLIED_SHOP_ID is not a UUID" in outcome.message and stops_target(outcome)
    assert applied.requests == []


@pytest.mark.parametrize("value", ["shop-1", "0f8fad5b-d9cb-469f-a165", "0f8fad5bd9cb469fa16570867728950e0"])
def test_check_shop_id_names_the_setting_when_it_is_not_a_uuid(value):
    with pytest.raises(ValueError, match="APPLIED_SHOP_ID must be a UUID"):
        check_shop_id(value)
    check_shop_id("0f8fad5b-d9cb-469f-a165-70867728950e")
    check_shop_id(None)


def test_template_refuses_a_shop_id_that_is_not_a_uuid_when_deployed():
    class _Loader(yaml.SafeLoader):
        pass

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=_Loader)  # noqa: S506
    pattern = re.compile(template["Parameters"]["AppliedShopId"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("0f8fad5b-d9cb-469f-a165-70867728950e")
    assert not pattern.fullmatch("shop-1") and not pattern.fullmatch("0f8fad5b-d9cb-469f-a165-70867728950e\n")


def test_provider_id_read_from_the_contact_when_applied_answers_a_contact(make_job):
    answer = requests.Response()
    answer.status_code = 201
    answer._content = b'{"contact": {"id": "con_42"}}'
    answer.headers["Content-Type"] = "application/json"
    outcome = classify(answer, make_job("applied"))
    assert outcome == Delivered("con_42", 201)


@pytest.mark.parametrize(
    ("status", "body", "expected", "code", "message"),
    [
        (
            400,
            {
                "type": "validation_error",
                "errors": [{"code": "required", "detail": "This field is required.", "attr": "name"}],
            },
            PermanentDeliveryError,
            "required",
            "This field is required.",
        ),
        (
            400,
            {"name": ["This field is required."]},
            PermanentDeliveryError,
            None,
            "Applied Labs answered 400",
        ),
        (
            422,
            {"detail": "Unprocessable", "code": "invalid"},
            PermanentDeliveryError,
            "invalid",
            "Unprocessable",
        ),
        (
            401,
            {"detail": "Authentication credentials were not provided."},
            RetryLaterError,
            None,
            "Authentication credentials were not provided.",
        ),
        # The shop (or the key's access to it) is refused: the operator's to fix, the target waits.
        (
            403,
            {"detail": "You do not have permission to perform this action.", "code": "permission_denied"},
            RetryLaterError,
            "target_misconfigured",
            "Applied Labs refused the shop in APPLIED_SHOP_ID (permission_denied): "
            "You do not have permission to perform this action.",
        ),
        (
            404,
            {"detail": "Not found."},
            RetryLaterError,
            "target_misconfigured",
            "Applied Labs refused the shop in APPLIED_SHOP_ID (404): Not found.",
        ),
        (
            400,
            {
                "type": "validation_error",
                "errors": [
                    {"code": "invalid", "detail": "X-Shop-Id must be a valid UUID.", "attr": "X-Shop-Id"}
                ],
            },
            RetryLaterError,
            "target_misconfigured",
            "Applied Labs refused the shop in APPLIED_SHOP_ID (invalid): X-Shop-Id must be a valid UUID.",
        ),
        (500, {"detail": "A server error occurred."}, RetryLaterError, None, "A server error occurred."),
    ],
)
def test_error_body_classified_when_applied_answers_it(
    applied, applied_client, make_job, status, body, expected, code, message
):
    applied.inject("respond", status=status, json=body)
    [outcome] = applied_client.send([make_job("applied")])
    assert type(outcome) is expected
    assert (outcome.status, outcome.code, outcome.message) == (status, code, message)
    if body == {"name": ["This field is required."]}:
        assert outcome.details == [{"field": "name", "messages": ["This field is required."]}]


def test_drf_error_style_parsed_when_sandbox_answers_plain_drf(applied, applied_client, make_job):
    applied.error_style = "drf"
    job = make_job("applied")
    job.body["metric"]["value"] = "one"
    [outcome] = applied_client.send([job])
    assert isinstance(outcome, PermanentDeliveryError) and outcome.status == 400
    assert outcome.details == [{"field": "metric.value", "messages": ["A valid number is required."]}]


def test_throttled_with_retry_after_when_applied_answers_429(applied, applied_client, make_job):
    applied.inject("rate_limit", retry_after=9)
    [outcome] = applied_client.send([make_job("applied")])
    assert isinstance(outcome, RetryLaterError) and outcome.throttled
    assert (outcome.status, outcome.code, outcome.retry_after) == (429, "throttled", 9.0)


def test_gateway_timeout_dead_letters_contact_job_but_retries_metric_job(applied, applied_client, make_job):
    applied.inject("respond", status=504, body="Gateway Timeout", count=2)
    [contact] = applied_client.send([make_job("applied", CONTACT_BODY)])
    [metric] = applied_client.send([make_job("applied")])
    assert isinstance(contact, PermanentDeliveryError) and contact.code == "ambiguous_timeout"
    assert isinstance(metric, RetryLaterError) and metric.status == 504
