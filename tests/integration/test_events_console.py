"""`bridge console --stack NAME` against moto: a stack whose outputs name the moto queues, table and
archive bucket; the page, served over HTTP on 127.0.0.1, lists what the archive, the delivered-records
and the DLQs say became of each event; read-only it refuses a replay; with `--allow-actions` and the
run's token a dry run counts the jobs a new mapping would add, and a replay puts the event back on
the events queue."""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge import TARGETS
from timeline_bridge.archive import ArchivedEvent, ArchivedJob, EventArchive
from timeline_bridge.delivery.records import DeliveredRecords
from timeline_bridge.models import Envelope, utc_now_iso
from timeline_bridge_tools.cli import console

FAULT_MAPPINGS = Path(__file__).resolve().parent / "fault_mappings"
STACK = "timeline-bridge-console-test"


def ago(minutes: float) -> str:
    return (
        (datetime.now(UTC) - timedelta(minutes=minutes))
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


@pytest.fixture
def stack(aws: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """A CloudFormation stack in moto whose outputs name the test's resources, as a deployed
    stack's do; run from an empty folder (a replay keeps its progress in `.bridge/`)."""
    import boto3

    outputs = {
        "EventsArchiveBucketName": os.environ["EVENTS_ARCHIVE_BUCKET"],
        "IdempotencyTableName": aws.table,
        "EventsQueueUrl": aws.queues["events"],
        "EventsDeadLetterQueueUrl": aws.queues["events-dlq"],
    }
    for target in TARGETS:
        outputs[f"{target.capitalize()}DeliveryQueueUrl"] = aws.queues[target]
        outputs[f"{target.capitalize()}DeliveryDeadLetterQueueUrl"] = aws.queues[f"{target}-dlq"]
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},  # a template needs one resource
        "Outputs": {name: {"Value": value} for name, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    monkeypatch.chdir(tmp_path)
    return STACK


def archive_events(aws: Any) -> None:
    """A hubspot deal delivered to stora, and a generic invoice no mapping wanted when it came."""
    deal = Envelope(
        source="hubspot",
        event_type="deal.propertyChange",
        event_id="deal-1",
        occurred_at=None,
        received_at=ago(5),
        event={"objectId": "deal-1"},
    )
    invoice = Envelope(
        source="generic",
        name="billing",
        event_type="invoice.paid",
        event_id="in_7",
        occurred_at=None,
        received_at=ago(4),
        event={"type": "invoice.paid", "timestamp": ago(4), "data": {"invoice_id": "in_7", "deal_id": 7}},
    )
    EventArchive(os.environ["EVENTS_ARCHIVE_BUCKET"], aws.s3).write(
        [
            ArchivedEvent(
                deal, utc_now_iso(), [ArchivedJob("fault-hubspot-deal-to-stora", "stora", "tb-stora-1")], []
            ),
            ArchivedEvent(invoice, utc_now_iso(), [], []),
        ]
    )
    records = DeliveredRecords(aws.table, "stora", dynamodb=aws.dynamodb)
    job = {"key": "tb-stora-1", "body": {"any": "body"}}
    records.claim(job, 30_000)
    records.complete(job, {"provider_id": "evt_123", "status": 201, "attempts": 1})


@pytest.fixture
def serve(stack: str) -> Iterator[Any]:
    """Start `bridge console --stack` (port 0) with the given actions flag; yields (base URL, page)."""
    started: list[Any] = []

    def start(*, allow_actions: bool) -> tuple[str, Any]:
        args = argparse.Namespace(
            stack=stack, region=None, mappings=str(FAULT_MAPPINGS), port=0, allow_actions=allow_actions
        )
        server, page = console.build(args)
        server.start()
        started.append(server)
        return f"http://127.0.0.1:{server.port}", page

    yield start
    for server in started:
        server.stop()


def call(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_the_console_lists_what_became_of_each_event_of_a_stack(aws, serve):
    archive_events(aws)
    base, _page = serve(allow_actions=False)

    status, body = call(f"{base}/events.json")
    assert status == 200
    found = {e["event_id"]: e for e in json.loads(body)["events"]}
    assert found["deal-1"]["status"] == "delivered"
    assert found["deal-1"]["jobs"][0]["provider_id"] == "evt_123"
    assert found["in_7"]["status"] == "unmatched"

    status, body = call(f"{base}/events?q=tb-stora-1")
    html = body.decode()
    assert status == 200 and "deal-1" in html and "evt_123" in html and "in_7" not in html
    assert 'action="/events/replay"' not in html  # read-only

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, body = call(f"{base}/events/replay", b"since=1h", form)
    assert status == 403 and b"read-only" in body


def test_with_actions_a_dry_run_counts_and_a_replay_sends_the_window(aws, serve):
    archive_events(aws)
    base, page = serve(allow_actions=True)
    asked = {"Content-Type": "application/json", "Accept": "application/json"}

    status, _ = call(f"{base}/events/replay", json.dumps({"since": "1h", "dry_run": True}).encode(), asked)
    assert status == 403  # no token
    with_token = {**asked, "X-CSRF-Token": page.csrf_token}

    status, body = call(
        f"{base}/events/replay",
        json.dumps({"since": "1h", "source": "generic", "dry_run": True}).encode(),
        with_token,
    )
    report = json.loads(body)
    assert status == 200 and report["dry_run"] is True and report["events"] == 1
    assert report["mappings"]["fault-generic-invoice-to-matter"]["new"] == 1
    assert aws.count("events") == 0  # a dry run moves nothing

    status, body = call(
        f"{base}/events/replay", json.dumps({"since": "1h", "source": "generic"}).encode(), with_token
    )
    report = json.loads(body)
    assert status == 200 and report["complete"] and report["sent"] == 1
    [replayed] = aws.receive("events")
    assert replayed["event_id"] == "in_7" and replayed["replay"]["id"] == report["id"]
