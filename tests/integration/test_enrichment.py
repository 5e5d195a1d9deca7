"""The route stage enriching real webhook samples over HTTP, against the HubSpot (CRM routes) and
Slack sandboxes, with the shipped mappings and moto queues."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge import route
from timeline_bridge.aws import AwsClients
from timeline_bridge.enrichment.identity import Identity, IdentityTable
from timeline_bridge.models import DeliveryJob, Envelope
from timeline_bridge_tools.mapping.samples import envelopes_from_file
from timeline_bridge_tools.sandboxes.hubspot_crm import SAMPLE_CONTACT_ID, SAMPLE_DEAL_ID, SAMPLE_DEAL_NAME

ROOT = Path(__file__).resolve().parents[2]
EVENTS_ARN = "arn:aws:sqs:eu-west-1:123456789012:timeline-bridge-events"


def sqs_event(*envelopes: Envelope) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"msg-{i}",
                "receiptHandle": f"handle-{i}",
                "body": envelope.to_json(),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763899315724"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": EVENTS_ARN,
                "awsRegion": "eu-west-1",
            }
            for i, envelope in enumerate(envelopes)
        ]
    }


def sample(source: str, name: str) -> Envelope:
    (envelope,) = envelopes_from_file(source, ROOT / "events" / source / name)
    return envelope


# The shipped mappings that enrich, copied into a folder of the tests' own: the jobs they count are
# these mappings' jobs, whatever else a user adds under mappings/.
ENRICHING = (
    "hubspot-deal-stage-to-stora",
    "hubspot-deal-stage-to-matter",
    "hubspot-deal-stage-to-hubspot-timeline",
    "hubspot-deal-stage-to-hubspot-app-events",
    "slack-approval-to-matter",
)


@pytest.fixture
def route_handler(aws, sandboxes, monkeypatch: pytest.MonkeyPatch, lambda_context, shipped_mappings) -> Any:
    """The route function with the enriching mappings; enrichment reads the sandboxes."""
    monkeypatch.setenv("BRIDGE_MAPPINGS_DIR", str(shipped_mappings(*ENRICHING)))
    yield lambda event: route.handle(event, lambda_context)


def jobs_on(aws, queue: str) -> list[DeliveryJob]:
    return [DeliveryJob(**body) for body in aws.receive(queue)]


def crm_paths(sandbox) -> list[str]:
    return [r["path"] for r in sandbox.requests if r["path"].startswith("/crm/")]


def test_stora_job_carries_deal_name_stage_labels_and_contact_when_the_deal_is_enriched(
    aws, sandboxes, route_handler
) -> None:
    answer = route_handler(sqs_event(sample("hubspot", "deal-stage-change.json")))

    assert answer == {"batchItemFailures": []}
    (job,) = jobs_on(aws, "stora")
    assert job.body["variables"] == {
        "deal_name": SAMPLE_DEAL_NAME,
        "previous_state": "Qualified",
        "new_state": "Negotiation",
    }
    assert job.body["contact"] == {"id": "con_3f1e0b9a7c5d2e48"}
    assert job.body["description"] == "CRM deal moved to Negotiation stage"
    (matter,) = jobs_on(aws, "matter")
    assert matter.body["title"] == f"HubSpot deal {SAMPLE_DEAL_NAME} moved to Negotiation"
    # Every read carried the private-app token, and the pipelines were read once for both mappings.
    crm = [r for r in sandboxes["hubspot"].requests if r["path"].startswith("/crm/")]
    assert {r["headers"]["authorization"] for r in crm} == {"Bearer hubspot-sandbox-token"}
    assert crm_paths(sandboxes["hubspot"]).count("/crm/v3/pipelines/deals") == 1


def test_contact_is_resolved_from_the_identity_map_when_the_mapping_table_lacks_the_email(
    aws, sandboxes, route_handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    crm = sandboxes["hubspot"].crm
    crm.add_contact(SAMPLE_CONTACT_ID, email="new.buyer@acme-storage.example", firstname="New")
    aws.dynamodb.create_table(
        TableName="timeline-bridge-identities",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("IDENTITY_TABLE", "timeline-bridge-identities")
    IdentityTable("timeline-bridge-identities", AwsClients()).put_many(
        [Identity("stora_contact", "New.Buyer@acme-storage.example", "con_00000000000000aa")]
    )

    assert route_handler(sqs_event(sample("hubspot", "deal-stage-change.json"))) == {"batchItemFailures": []}

    (job,) = jobs_on(aws, "stora")
    assert job.body["contact"] == {"id": "con_00000000000000aa"}


def test_job_is_dead_lettered_naming_the_fetch_and_nothing_is_sent_when_enrichment_fails_for_good(
    aws, sandboxes, route_handler
) -> None:
    # The deal is gone: HubSpot answers 404 to every read of it.
    sandboxes["hubspot"].crm.deals.pop(SAMPLE_DEAL_ID)

    answer = route_handler(sqs_event(sample("hubspot", "deal-stage-change.json")))

    assert answer == {"batchItemFailures": []}
    assert aws.count("stora") == 0
    assert aws.count("matter") == 0
    assert len(jobs_on(aws, "hubspot")) == 2  # the v3 and app-events mappings need no enrichment
    (dead,) = jobs_on(aws, "stora-dlq")
    letter = dead.dead_letter
    assert letter is not None
    assert dead.body == {}
    assert letter["reason"] == "enrichment_error"
    assert (letter["fetch"], letter["fetch_kind"], letter["status"], letter["code"]) == (
        "deal",
        "hubspot.deal",
        404,
        "OBJECT_NOT_FOUND",
    )
    assert letter["field"] == "enrich.deal"
    assert "enrich.deal (hubspot.deal)" in letter["message"]
    assert letter["envelope"]["event_id"] == sample("hubspot", "deal-stage-change.json").event_id
    (matter_dead,) = jobs_on(aws, "matter-dlq")
    assert matter_dead.dead_letter["fetch"] == "deal"


def test_injected_error_answer_dead_letters_the_job_with_its_status_when_the_crm_refuses(
    aws, sandboxes, route_handler
) -> None:
    sandboxes["hubspot"].inject(
        "respond",
        count=10,
        status=403,
        json={
            "status": "error",
            "message": "This app hasn't been granted all required scopes.",
            "category": "MISSING_SCOPES",
        },
    )

    assert route_handler(sqs_event(sample("hubspot", "deal-stage-change.json"))) == {"batchItemFailures": []}

    assert aws.count("stora") == 0
    (dead,) = jobs_on(aws, "stora-dlq")
    assert (dead.dead_letter["status"], dead.dead_letter["code"]) == (403, "MISSING_SCOPES")


def test_record_is_retried_later_and_nothing_is_enqueued_when_the_crm_throttles(
    aws, sandboxes, route_handler
) -> None:
    sandboxes["hubspot"].inject("rate_limit", retry_after=7)
    envelope = sample("hubspot", "deal-stage-change.json")

    answer = route_handler(sqs_event(envelope))

    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    for queue in ("stora", "stora-dlq", "matter", "matter-dlq", "hubspot", "hubspot-dlq"):
        assert aws.count(queue) == 0, queue
    # One 429, then the gate keeps the next fetches away from HubSpot until the delay has passed.
    assert [r["status"] for r in sandboxes["hubspot"].requests] == [429]


def test_visibility_is_extended_to_the_retry_delay_when_the_record_is_retried_later(
    aws, sandboxes, route_handler
) -> None:
    aws.sqs.send_message(
        QueueUrl=aws.events_queue, MessageBody=sample("hubspot", "deal-stage-change.json").to_json()
    )
    (message,) = aws.sqs.receive_message(QueueUrl=aws.events_queue, VisibilityTimeout=1)["Messages"]
    event = sqs_event(sample("hubspot", "deal-stage-change.json"))
    event["Records"][0]["receiptHandle"] = message["ReceiptHandle"]
    sandboxes["hubspot"].inject("rate_limit", retry_after=120)

    assert route_handler(event) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}

    time.sleep(1.5)  # past the 1 s visibility the message was received with
    assert aws.sqs.receive_message(QueueUrl=aws.events_queue, VisibilityTimeout=0).get("Messages") is None


def test_event_is_routed_once_the_throttle_has_passed_when_the_record_comes_back(
    aws, sandboxes, route_handler
) -> None:
    sandboxes["hubspot"].inject("rate_limit", retry_after=0)
    envelope = sample("hubspot", "deal-stage-change.json")
    assert route_handler(sqs_event(envelope)) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}

    assert route_handler(sqs_event(envelope)) == {"batchItemFailures": []}

    (job,) = jobs_on(aws, "stora")
    assert job.body["variables"]["deal_name"] == SAMPLE_DEAL_NAME


def test_matter_job_names_the_approver_and_links_the_message_when_a_slack_click_is_enriched(
    aws, sandboxes, route_handler
) -> None:
    answer = route_handler(sqs_event(sample("slack", "approve-button.json")))

    assert answer == {"batchItemFailures": []}
    (job,) = jobs_on(aws, "matter")
    assert job.body["actor"] == "Maria Lopez"
    assert job.body["ref"] == "https://acme-storage.slack.com/archives/C05QWERTY12/p1763900123000200"
    calls = sandboxes["slack"].requests
    assert [c["path"] for c in calls] == ["/api/users.info", "/api/chat.getPermalink"]
    assert {c["headers"]["authorization"] for c in calls} == {"Bearer xoxb-sandbox-token"}


def test_approval_is_dead_lettered_when_slack_does_not_know_the_user(aws, sandboxes, route_handler) -> None:
    sandboxes["slack"].users.clear()

    assert route_handler(sqs_event(sample("slack", "approve-button.json"))) == {"batchItemFailures": []}

    assert aws.count("matter") == 0
    (dead,) = jobs_on(aws, "matter-dlq")
    assert (dead.dead_letter["fetch"], dead.dead_letter["code"]) == ("approver", "user_not_found")


def test_approval_is_retried_later_when_slack_rate_limits(aws, sandboxes, route_handler) -> None:
    sandboxes["slack"].inject("rate_limit", retry_after=30)

    answer = route_handler(sqs_event(sample("slack", "approve-button.json")))

    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert aws.count("matter") == 0 and aws.count("matter-dlq") == 0


# --- under bridge dev ------------------------------------------------------------------------------


def send_sample(cwd: Path, source: str, name: str) -> None:
    """`bridge send` as a user runs it, from the folder whose `.bridge/` names the runtime."""
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_SIGNING_SECRET", "_CLIENT_SECRET"))}
    sent = subprocess.run(
        [
            sys.executable,
            "-m",
            "timeline_bridge_tools.cli",
            "send",
            source,
            str(ROOT / "events" / source / name),
        ],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr


def wait_for_events(sandbox, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len(sandbox.events()) < count:
        time.sleep(0.05)
    return sandbox.events()


def test_timelines_get_enriched_events_when_samples_are_sent_to_bridge_dev(
    tmp_path: Path, shipped_mappings
) -> None:
    from timeline_bridge_tools.local.runtime import LocalRuntime

    folder = shipped_mappings(*ENRICHING)
    environ = {"BRIDGE_MAPPINGS_DIR": str(folder)}
    with LocalRuntime(
        ROOT, port=0, state_dir=tmp_path, environ=environ, log_level="WARNING"
    ) as local_runtime:
        _enriched_events_reach_the_timelines(local_runtime, tmp_path)


def _enriched_events_reach_the_timelines(local_runtime: Any, tmp_path: Path) -> None:
    send_sample(tmp_path, "hubspot", "deal-stage-change.json")
    send_sample(tmp_path, "slack", "approve-button.json")

    (stora,) = wait_for_events(local_runtime.sandboxes["stora"], 1)
    assert {k: stora["variables"][k] for k in ("deal_name", "previous_state", "new_state")} == {
        "deal_name": SAMPLE_DEAL_NAME,
        "previous_state": "Qualified",
        "new_state": "Negotiation",
    }
    assert stora["contact"]["id"] == "con_3f1e0b9a7c5d2e48"
    matter = wait_for_events(local_runtime.sandboxes["matter"], 2)
    actors = {event["kind"]: event["actor"] for event in matter}
    assert actors["governance"] == "Maria Lopez"
    # The enrichment reads; the reply to the click's response_url (/actions/…) may come before or after.
    assert [
        r["path"] for r in local_runtime.sandboxes["slack"].requests if r["path"].startswith("/api/")
    ] == [
        "/api/users.info",
        "/api/chat.getPermalink",
    ]


def test_bridge_map_prints_the_enriched_stora_request_when_bridge_dev_runs_here(
    local_runtime, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_BASE_URL", "_TOKEN", "_TOKEN_SECRET_ID"))}
    mapped = subprocess.run(
        [
            sys.executable,
            "-m",
            "timeline_bridge_tools.cli",
            "map",
            "hubspot",
            str(ROOT / "events" / "hubspot" / "deal-stage-change.json"),
            "--mappings",
            str(ROOT / "mappings"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert mapped.returncode == 0, mapped.stderr
    (stora,) = [r for r in json.loads(mapped.stdout) if r["target"] == "stora"]
    assert stora["body"]["variables"] == {
        "deal_name": SAMPLE_DEAL_NAME,
        "previous_state": "Qualified",
        "new_state": "Negotiation",
    }
    crm = [r["path"] for r in local_runtime.sandboxes["hubspot"].requests if r["path"].startswith("/crm/")]
    assert "/crm/v3/objects/deals/18147040851" in crm
