"""The route stage in-process against moto SQS: envelopes in, delivery jobs (or dead letters) out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge import route
from timeline_bridge.config import Settings
from timeline_bridge.keys import job_key
from timeline_bridge.mapping import load_mappings
from timeline_bridge.models import DeliveryJob, Envelope
from timeline_bridge_tools.mapping.samples import envelopes_from_file

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
HUBSPOT_SAMPLE = ROOT / "events" / "hubspot" / "deal-stage-change.json"
HUBSPOT_MAPPINGS = {
    "stora": ("hubspot-deal-stage-to-stora",),
    # v3 and app events side by side: each HubSpot mapping writes the API its body names
    "hubspot": ("hubspot-deal-stage-to-hubspot-app-events", "hubspot-deal-stage-to-hubspot-timeline"),
    "matter": ("hubspot-deal-stage-to-matter",),
}


def sqs_event(*bodies: str) -> dict[str, Any]:
    """An SQS → Lambda event, as the events queue's event source mapping delivers it."""
    return {
        "Records": [
            {
                "messageId": f"msg-{i}",
                "receiptHandle": f"handle-{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1763899315724"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:timeline-bridge-events",
                "awsRegion": "eu-west-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


@pytest.fixture
def hubspot_envelope() -> Envelope:
    (envelope,) = envelopes_from_file("hubspot", HUBSPOT_SAMPLE)
    return envelope


@pytest.fixture
def route_mappings(shipped_mappings: Any) -> Path:
    """The shipped HubSpot mappings these tests count jobs for, in a folder of their own."""
    return shipped_mappings(*(name for names in HUBSPOT_MAPPINGS.values() for name in names))


@pytest.fixture
def route_handler(
    aws, sandboxes, monkeypatch: pytest.MonkeyPatch, load_function, route_mappings: Path
) -> Any:
    """functions/route/app.py with `route_mappings`, against the `aws` fixture's queues; the
    mappings' enrichment reads the HubSpot CRM and Slack sandboxes."""
    monkeypatch.setenv("BRIDGE_MAPPINGS_DIR", str(route_mappings))
    yield load_function("route").lambda_handler


def jobs_on(aws, queue: str) -> list[DeliveryJob]:
    return [DeliveryJob(**body) for body in aws.receive(queue)]


def test_event_fans_out_to_every_target_queue_when_three_mappings_match(
    aws, route_handler, hubspot_envelope: Envelope, lambda_context
) -> None:
    answer = route_handler(sqs_event(hubspot_envelope.to_json()), lambda_context)

    assert answer == {"batchItemFailures": []}
    for target, mappings in HUBSPOT_MAPPINGS.items():
        jobs = sorted(jobs_on(aws, target), key=lambda j: j.mapping)
        assert [job.mapping for job in jobs] == list(mappings)
        for job, mapping in zip(jobs, mappings, strict=True):
            assert job.target == target
            assert job.key == job_key("hubspot", hubspot_envelope.event_id, mapping)
            assert job.event_id == hubspot_envelope.event_id
            assert job.mapping_file.endswith(f"{mapping}.yaml")
            assert job.dead_letter is None
    assert aws.count("applied") == 0
    assert all(aws.count(f"{t}-dlq") == 0 for t in HUBSPOT_MAPPINGS)


def test_jobs_carry_rendered_bodies_when_routed(aws, route_handler, hubspot_envelope, lambda_context) -> None:
    route_handler(sqs_event(hubspot_envelope.to_json()), lambda_context)

    (stora,) = jobs_on(aws, "stora")
    app_events, hubspot = sorted(jobs_on(aws, "hubspot"), key=lambda j: j.mapping)
    assert stora.body["description"] == "CRM deal moved to Negotiation stage"
    assert stora.body["external"]["id"] == f"deal_{hubspot_envelope.event['objectId']}"
    assert hubspot.body["id"] == hubspot.key
    # HubSpot takes token and property values as strings only
    assert hubspot.body["tokens"]["changed_at"] == str(hubspot_envelope.event["occurredAt"])
    assert app_events.body["id"] == app_events.key
    assert app_events.body["properties"]["changed_at"] == str(hubspot_envelope.event["occurredAt"])


def test_keys_repeat_when_the_same_envelope_is_routed_twice(
    aws, route_handler, hubspot_envelope, lambda_context
) -> None:
    route_handler(sqs_event(hubspot_envelope.to_json()), lambda_context)
    first = {j.mapping: j.key for t in HUBSPOT_MAPPINGS for j in jobs_on(aws, t)}
    route_handler(sqs_event(hubspot_envelope.to_json()), lambda_context)
    second = {j.mapping: j.key for t in HUBSPOT_MAPPINGS for j in jobs_on(aws, t)}

    assert first == second
    assert len(set(first.values())) == 4


def test_broken_mapping_dead_letters_its_job_when_the_others_go_out(
    aws, sandboxes, hubspot_envelope, lambda_context, route_mappings: Path
) -> None:
    from timeline_bridge.enrichment import Enrichment
    from timeline_bridge.wiring import Dependencies

    stora_file = route_mappings / "hubspot-deal-stage-to-stora.yaml"
    # A contact id read from the wrong place: contact.id renders empty.
    good = 'contact: {id: "${{ enrichment.contact_id }}"}'
    text = stora_file.read_text()
    contact_line = text[: text.index(good)].count("\n") + 1
    stora_file.write_text(text.replace(good, 'contact: {id: "${{ enrichment.contacts.contact_id }}"}'))
    router = route.Router(
        mappings=load_mappings(route_mappings),
        queue=route.SqsJobQueue(aws.sqs),
        queue_url=Settings.from_environ().queue_url,
        enrich=Enrichment.of(Dependencies.from_environ()),
    )

    answer = route.handle(sqs_event(hubspot_envelope.to_json()), lambda_context, router=router)

    assert answer == {"batchItemFailures": []}
    assert aws.count("stora") == 0
    assert len(jobs_on(aws, "hubspot")) == 2
    assert len(jobs_on(aws, "matter")) == 1
    (dead,) = jobs_on(aws, "stora-dlq")
    letter = dead.dead_letter
    assert letter is not None
    assert letter["reason"] == "mapping_error"
    assert letter["stage"] == "route"
    assert letter["mapping"] == "hubspot-deal-stage-to-stora"
    assert letter["mapping_file"].endswith("hubspot-deal-stage-to-stora.yaml")
    assert letter["field"] == "body.contact.id"
    assert letter["detail"] == "required value is empty"
    assert letter["line"] == contact_line
    assert letter["target"] == "stora"
    assert (
        letter["idempotency_key"]
        == dead.key
        == job_key("hubspot", hubspot_envelope.event_id, "hubspot-deal-stage-to-stora")
    )
    assert letter["envelope"]["event"] == hubspot_envelope.event
    assert dead.body == {}


def test_unreadable_envelope_fails_its_record_when_others_in_the_batch_succeed(
    aws, route_handler, hubspot_envelope, lambda_context
) -> None:
    answer = route_handler(
        sqs_event("not json", hubspot_envelope.to_json(), json.dumps({"source": "hubspot"})), lambda_context
    )

    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}, {"itemIdentifier": "msg-2"}]}
    assert aws.count("stora") == 1


def test_event_is_dropped_without_failure_when_no_mapping_applies(aws, route_handler, lambda_context) -> None:
    envelope = Envelope(
        source="hubspot",
        event_type="contact.creation",
        event_id="62515:1:2:3:4",
        occurred_at=None,
        received_at="2026-01-01T00:00:00.000Z",
        event={"subscriptionType": "contact.creation", "objectId": 3},
    )

    answer = route_handler(sqs_event(envelope.to_json()), lambda_context)

    assert answer == {"batchItemFailures": []}
    assert sum(aws.count(q) for q in aws.queues if q not in ("events", "events-dlq")) == 0


def test_record_fails_when_a_delivery_queue_refuses_the_job(
    aws, sandboxes, hubspot_envelope, lambda_context, monkeypatch: pytest.MonkeyPatch, route_mappings: Path
) -> None:
    from timeline_bridge.enrichment import Enrichment
    from timeline_bridge.wiring import Dependencies

    monkeypatch.setenv(
        "MATTER_QUEUE_URL", aws.queues["matter"].replace("timeline-bridge-matter", "no-such-queue")
    )
    router = route.Router(
        mappings=load_mappings(route_mappings),
        queue=route.SqsJobQueue(aws.sqs),
        queue_url=Settings.from_environ().queue_url,
        enrich=Enrichment.of(Dependencies.from_environ()),
    )

    answer = route.handle(sqs_event(hubspot_envelope.to_json()), lambda_context, router=router)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    # The jobs that did get out are sent again on the retry, with the same keys (deliver dedupes).
    assert aws.count("stora") == 1
