"""Generic endpoints as a deployed stack configures them, with no variable of their own: settings
from BRIDGE_GENERIC_SETTINGS (the GenericEndpointSettings parameter), each endpoint's secret from
the BRIDGE_GENERIC_SECRETS JSON object in Secrets Manager (moto), the generic handler in-process."""

from __future__ import annotations

import json

import pytest
from timeline_bridge_tools.signing import sign_event

SHARED = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STRIPE = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
GITHUB = "It's a Secret to Everybody"
FILE = "generic/standard-webhook.json"


@pytest.fixture
def handler(aws, monkeypatch, load_function, lambda_context, log_hygiene):
    for secret in (SHARED, STRIPE, GITHUB):
        log_hygiene.register(secret)
    aws.put_secret("GENERIC_WEBHOOK_SECRET", [SHARED], monkeypatch)
    bundle = {"GENERIC_STRIPE_SECRET": [STRIPE], "GENERIC_GITHUB_SECRET": GITHUB}
    aws.put_secret("BRIDGE_GENERIC_SECRETS", json.dumps(bundle), monkeypatch)
    monkeypatch.setenv(
        "BRIDGE_GENERIC_SETTINGS",
        "GENERIC_GITHUB_SCHEME=hmac,GENERIC_GITHUB_SIGNATURE_HEADER=X-Hub-Signature-256,"
        "GENERIC_GITHUB_PREFIX=sha256=,GENERIC_GITHUB_ID_HEADER=X-GitHub-Delivery,"
        "GENERIC_GITHUB_TYPE_FIELD=action",
    )
    module = load_function("generic")
    return lambda event: module.lambda_handler(event, lambda_context)


def at(load_event, path: str):
    event = load_event(FILE)
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    return event


def test_endpoint_accepts_only_its_own_secret_when_the_bundle_holds_one(handler, aws, load_event) -> None:
    own = sign_event("generic", at(load_event, "/generic/stripe"), STRIPE, webhook_id="msg_own")
    shared = sign_event("generic", at(load_event, "/generic/stripe"), SHARED, webhook_id="msg_shared")

    assert [handler(own)["statusCode"], handler(shared)["statusCode"]] == [200, 401]
    assert [(e["name"], e["event_id"]) for e in aws.receive()] == [("stripe", "msg_own")]


def test_endpoint_missing_from_the_bundle_uses_the_shared_secret(handler, aws, load_event) -> None:
    assert handler(sign_event("generic", load_event(FILE), SHARED))["statusCode"] == 200
    assert [e["name"] for e in aws.receive()] == ["billing"]


def test_hmac_endpoint_works_when_configured_only_by_the_stack_settings(handler, aws, load_event) -> None:
    event = at(load_event, "/generic/github")
    event["headers"] = {k: v for k, v in event["headers"].items() if k != "webhook-id"}
    event["body"] = json.dumps({"action": "opened", "issue": {"number": 7}})
    signed = sign_event("generic", event, GITHUB, webhook_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")

    assert signed["headers"]["x-hub-signature-256"].startswith("sha256=")
    assert handler(signed)["statusCode"] == 200
    [envelope] = aws.receive()
    assert (envelope["name"], envelope["event_type"], envelope["event_id"]) == (
        "github",
        "opened",
        "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    )


def test_every_endpoint_without_a_variable_is_refused_when_the_bundle_does_not_parse(
    aws, monkeypatch, load_function, lambda_context, load_event
) -> None:
    aws.put_secret("GENERIC_WEBHOOK_SECRET", [SHARED], monkeypatch)
    aws.put_secret("BRIDGE_GENERIC_SECRETS", '{"GENERIC_STRIPE_SECRET": ', monkeypatch)
    handler = load_function("generic").lambda_handler

    answer = handler(sign_event("generic", at(load_event, "/generic/stripe"), SHARED), lambda_context)

    assert answer["statusCode"] == 503
    assert aws.count() == 0
