"""One generic endpoint, one identity, end to end: ingest (moto), route and deliver (the Matter
sandbox), and the local runtime.

- Two endpoints may receive the same `webhook-id` (two senders that number their messages alike)
  or, on HMAC endpoints without an id header, the same body. Each event gets its own job key and
  both reach the target; before, the second shared the first's key and was lost at the
  delivered-records check (`payload_mismatch`, or skipped as already delivered).
- `/generic/acme-eu`, `/generic/ACME-EU` and `/generic/acme_eu` read the same settings and secret.
  Only the canonical spelling is served, so a captured request replayed at another spelling is
  refused instead of enqueued again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from delivery_harness import FAULT_MAPPINGS, scale_sandboxes, set_scaled_env
from timeline_bridge.models import DeliveryJob
from timeline_bridge_tools.local.runtime import LocalRuntime
from timeline_bridge_tools.signing import sign_event

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "events" / "generic" / "standard-webhook.json"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
HMAC_SECRET = "It's a Secret to Everybody"


@pytest.fixture
def ingest_handler(aws, monkeypatch, load_function, lambda_context):
    monkeypatch.setenv("GENERIC_WEBHOOK_SECRET", SECRET)
    module = load_function("generic")
    return lambda event: module.lambda_handler(event, lambda_context)


def generic_event(load_event: Any, path: str, invoice: str) -> dict[str, Any]:
    event = load_event("generic/standard-webhook.json")
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    body = json.loads(event["body"])
    body["data"]["invoice_id"] = invoice
    event["body"] = json.dumps(body)
    return event


def use_hmac(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """HMAC endpoints without an id header: the event id is the sha256 of the body."""
    for name in names:
        prefix = f"GENERIC_{name.upper().replace('-', '_')}_"
        monkeypatch.setenv(prefix + "SCHEME", "hmac")
        monkeypatch.setenv(prefix + "SECRET", HMAC_SECRET)


def route_and_deliver(aws, monkeypatch, load_function, lambda_context, sandboxes) -> list[DeliveryJob]:
    """Every envelope on the events queue through route (the fault-suite mappings) and the Matter
    deliverer; returns the Matter jobs the route made."""
    monkeypatch.setenv("BRIDGE_MAPPINGS_DIR", str(FAULT_MAPPINGS))
    envelopes = aws.receive("events")
    records = [
        {"messageId": f"e-{i}", "receiptHandle": "rh", "body": json.dumps(e)} for i, e in enumerate(envelopes)
    ]
    assert load_function("route").lambda_handler({"Records": records}, lambda_context) == {
        "batchItemFailures": []
    }
    jobs = [DeliveryJob(**body) for body in aws.receive("matter")]
    aws.receive("hubspot")  # the suite's other generic mapping: not delivered here

    set_scaled_env(monkeypatch)
    scale_sandboxes(sandboxes)
    monkeypatch.setenv("TARGET", "matter")
    batch = [{"messageId": f"j-{i}", "receiptHandle": "rh", "body": j.to_json()} for i, j in enumerate(jobs)]
    answer = load_function("deliver").lambda_handler({"Records": batch}, lambda_context)
    assert answer == {"batchItemFailures": []}
    return jobs


@pytest.mark.parametrize(
    "scheme",
    [
        pytest.param("standard", id="same-webhook-id-other-bodies"),
        pytest.param("hmac", id="hmac-same-body-no-id-header"),
    ],
)
def test_both_events_delivered_with_distinct_keys_when_two_endpoints_share_an_event_id(
    ingest_handler, aws, sandboxes, monkeypatch, load_event, load_function, lambda_context, scheme
) -> None:
    if scheme == "hmac":
        use_hmac(monkeypatch, "billing", "crm")
        invoices = ("in_same", "in_same")
        secret = HMAC_SECRET
    else:
        invoices = ("in_billing", "in_crm")
        secret = SECRET
    for path, invoice in zip(("/generic/billing", "/generic/crm"), invoices, strict=True):
        event = sign_event("generic", generic_event(load_event, path, invoice), secret, webhook_id="msg_1")
        answer = ingest_handler(event)
        assert (answer["statusCode"], json.loads(answer["body"])["accepted"]) == (200, 1)

    jobs = route_and_deliver(aws, monkeypatch, load_function, lambda_context, sandboxes)

    assert len(jobs) == 2 and len({j.event_id for j in jobs}) == 1  # one event id, two endpoints
    assert len({j.key for j in jobs}) == 2
    stored = sandboxes["matter"].events()
    assert sorted(e["ref"] for e in stored) == sorted(j.key for j in jobs)  # both delivered
    assert aws.count("matter-dlq") == 0


@pytest.mark.parametrize("scheme", ["standard", "hmac"])
def test_captured_request_not_enqueued_again_when_replayed_at_another_spelling_of_its_endpoint(
    ingest_handler, aws, monkeypatch, load_event, scheme
) -> None:
    secret = SECRET
    if scheme == "hmac":
        use_hmac(monkeypatch, "acme-eu")
        secret = HMAC_SECRET
    captured = sign_event("generic", generic_event(load_event, "/generic/acme-eu", "in_1"), secret)
    assert json.loads(ingest_handler(captured)["body"])["accepted"] == 1

    for spelling in ("/generic/ACME-EU", "/generic/acme_eu", "/generic/Acme_Eu", "/generic/ACME_EU/"):
        replay = copy.deepcopy(captured)
        replay["rawPath"] = replay["requestContext"]["http"]["path"] = spelling
        answer = ingest_handler(replay)
        assert answer["statusCode"] == 404, spelling
        assert "use /generic/acme-eu" in json.loads(answer["body"])["message"]

    assert [(e["name"], e["event_id"]) for e in aws.receive()] == [("acme-eu", captured_id(captured, scheme))]
    again = ingest_handler(copy.deepcopy(captured))  # the canonical spelling still dedupes
    assert json.loads(again["body"])["duplicates"] == 1


def captured_id(event: dict[str, Any], scheme: str) -> str:
    if scheme == "standard":
        return str(event["headers"]["webhook-id"])
    return hashlib.sha256(event["body"].encode()).hexdigest()


def bridge_send(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENERIC_")}
    return subprocess.run(
        [sys.executable, "-m", "timeline_bridge_tools.cli", "send", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_local_runtime_serves_only_the_canonical_spelling_of_an_endpoint(
    local_runtime: LocalRuntime, tmp_path: Path
) -> None:
    refused = requests.post(f"{local_runtime.url}/generic/Billing_EU", data=b"{}", timeout=10)
    assert refused.status_code == 404
    assert "use /generic/billing-eu" in refused.json()["message"]

    wrong = bridge_send(tmp_path, "generic", str(SAMPLE), "--name", "Billing_EU")
    assert wrong.returncode == 2 and "/generic/billing-eu" in wrong.stderr

    sent = bridge_send(tmp_path, "generic", str(SAMPLE), "--name", "billing-eu")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    deadline = time.monotonic() + 5
    while len(local_runtime.console_state()["webhooks"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    webhooks = local_runtime.console_state()["webhooks"]
    by_path = {w["path"]: w for w in webhooks}
    assert (by_path["/generic/billing-eu"]["name"], by_path["/generic/billing-eu"]["outcome"]) == (
        "billing-eu",
        "accepted",
    )
    assert (by_path["/generic/Billing_EU"]["status"], by_path["/generic/Billing_EU"]["name"]) == (404, None)
