"""Secret rotation without a deploy (FM-13), through the real handlers and moto Secrets Manager.

Each source verifies with every value of its secret (a JSON list). The operator's rotation is
`put-secret-value [new, old]`, then, once senders use the new secret, `put-secret-value [new]`: after
the cache age (`SECRETS_MAX_AGE`, zero here unless a test says otherwise) the old one is refused.
Targets send with the first value of theirs.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import pytest
from timeline_bridge.models import DeliveryJob
from timeline_bridge.targets.base import Delivered
from timeline_bridge.targets.stora import StoraClient
from timeline_bridge.wiring import Dependencies
from timeline_bridge_tools.signing import sign_event

# source -> (secret variable, sample event, old value, new value)
SOURCES = {
    "hubspot": (
        "HUBSPOT_CLIENT_SECRET",
        "hubspot/deal-stage-change.json",
        "hs-client-secret-old-1",
        "hs-client-secret-new-2",
    ),
    "slack": (
        "SLACK_SIGNING_SECRET",
        "slack/approve-button.json",
        "8f742231b10e8888abcd99yyyzzz85a5",
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    ),
    "pipedrive": (
        "PIPEDRIVE_BASIC_AUTH",
        "pipedrive/deal-stage-change-v2.json",
        "hook:Zk3pL9qW2xV7nB4m-old",
        "hook:Qm8rT2yU6iO0pA1s-new",
    ),
    "generic": (
        "GENERIC_WEBHOOK_SECRET",
        "generic/standard-webhook.json",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
    ),
}
STRANGER = {"pipedrive": "hook:someone-else", "generic": "whsec_dGhpcmQtc2VjcmV0LXZhbHVlLTEyMzQ="}


@pytest.fixture
def ingest(aws, monkeypatch, load_function, load_event, lambda_context) -> Any:
    """`ingest(source, secret)`: the source's handler answer to its sample, signed with `secret`."""
    monkeypatch.delenv("HUBSPOT_WEBHOOK_URL", raising=False)
    monkeypatch.delenv("HUBSPOT_SIGNATURE_VERSIONS", raising=False)

    def run(source: str, secret: str) -> int:
        _, sample, _, _ = SOURCES[source]
        event = sign_event(source, load_event(sample), secret)
        return load_function(source).lambda_handler(event, lambda_context)["statusCode"]

    return run


def _rotate(aws, arn: str, values: list[str]) -> None:
    aws.secretsmanager.put_secret_value(SecretId=arn, SecretString=json.dumps(values))


@pytest.mark.parametrize("source", SOURCES)
def test_old_secret_refused_without_a_deploy_when_rotation_ends(aws, ingest, monkeypatch, source):
    name, _, old, new = SOURCES[source]
    monkeypatch.setenv("SECRETS_MAX_AGE", "0")
    arn = aws.put_secret(name, [old, new], monkeypatch)

    # During the rotation both are active; anything else is refused.
    assert ingest(source, old) == 200
    assert ingest(source, new) == 200
    assert ingest(source, STRANGER.get(source, "not-a-configured-secret")) == 401

    _rotate(aws, arn, [new])

    assert ingest(source, old) == 401
    assert ingest(source, new) == 200


def test_old_secret_accepted_until_the_cache_age_passes_when_rotation_ends(aws, ingest, monkeypatch):
    name, _, old, new = SOURCES["slack"]
    monkeypatch.setenv("SECRETS_MAX_AGE", "1")
    arn = aws.put_secret(name, [old, new], monkeypatch)
    assert ingest("slack", old) == 200

    _rotate(aws, arn, [new])
    assert ingest("slack", old) == 200  # still the cached list

    time.sleep(1.1)
    assert ingest("slack", old) == 401
    assert ingest("slack", new) == 200


def test_every_request_refused_when_the_rotation_list_is_emptied(aws, ingest, monkeypatch):
    # "[]" is what the template stores for an unset secret: fail closed (503, the sender retries).
    name, _, old, _ = SOURCES["hubspot"]
    monkeypatch.setenv("SECRETS_MAX_AGE", "0")
    arn = aws.put_secret(name, [old], monkeypatch)
    assert ingest("hubspot", old) == 200

    _rotate(aws, arn, [])

    assert ingest("hubspot", old) == 503


def _stora_job() -> DeliveryJob:
    return DeliveryJob(
        key="tb-" + "0" * 40,
        target="stora",
        mapping="rotation-check",
        mapping_file="mappings/rotation-check.yaml",
        source="hubspot",
        event_id="evt-rotation",
        event_type="deal.propertyChange",
        occurred_at="2026-01-01T00:00:00Z",
        body={
            "source": {"id": "tsrc_126b43585fea94ad"},
            "template": {"id": "aetpl_6b92d7693eb7e8e9"},
            "contact": {"id": "con_8d0b2a1c3e4f5a6b"},
            "description": "CRM deal moved to Closed won stage",
            "variables": {"new_state": "Closed won"},
        },
    )


def test_target_sends_the_first_token_without_a_deploy_when_its_secret_is_rotated(
    aws, sandboxes, monkeypatch
):
    sandboxes["stora"].set_rate_limits(())
    accepted = os.environ["STORA_TOKEN"]  # the token the Stora sandbox accepts
    assert accepted
    monkeypatch.setenv("SECRETS_MAX_AGE", "0")
    arn = aws.put_secret("STORA_TOKEN", ["stora-token-revoked"], monkeypatch)
    deps = Dependencies.from_environ()
    client = StoraClient(deps.settings, deps.secrets)

    (refused,) = client.send([_stora_job()])
    assert refused.status == 401

    # The new token first, the old one kept while other readers switch over.
    _rotate(aws, arn, [accepted, "stora-token-revoked"])

    (delivered,) = client.send([_stora_job()])
    assert isinstance(delivered, Delivered)
