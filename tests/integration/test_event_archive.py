"""The route stage archives every envelope it routes (matched or not) in the archive bucket before
it acknowledges the batch, against moto S3 and SQS: an S3 failure fails the batch and loses
nothing from the archive; a replayed envelope is routed through its mappings only and is never
archived again; under `bridge dev` the archive is a moto bucket that `.bridge/dev.json` names."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from delivery_harness import FAULT_MAPPINGS, envelopes
from timeline_bridge import archive, route
from timeline_bridge.archive import ArchivedEvent
from timeline_bridge.keys import event_scope, job_key
from timeline_bridge.mapping.engine import no_enrichment
from timeline_bridge.mapping.loader import load_mappings
from timeline_bridge.models import Envelope
from timeline_bridge.wiring import Dependencies

ROOT = Path(__file__).resolve().parents[2]
GENERIC_MAPPINGS = ("fault-generic-invoice-to-hubspot-timeline", "fault-generic-invoice-to-matter")


def sqs_event(bodies: Sequence[str]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"msg-{i}", "receiptHandle": f"rh-{i}", "body": body, "attributes": {}}
            for i, body in enumerate(bodies)
        ]
    }


def routed(aws, batch: Sequence[Envelope | str], lambda_context, dependencies: Dependencies | None = None):
    """Route `batch` (envelopes, or raw bodies) through the route stage with the fault suite's
    mappings and no enrichment, on `dependencies` (default: this test's environment)."""
    deps = dependencies or Dependencies.from_environ()
    router = route.Router(
        mappings=load_mappings(FAULT_MAPPINGS),
        queue=route.SqsJobQueue(aws.sqs),
        queue_url=deps.settings.queue_url,
        enrich=no_enrichment,
    )
    bodies = [b if isinstance(b, str) else b.to_json() for b in batch]
    return route.handle(sqs_event(bodies), lambda_context, router=router, dependencies=deps)


def archived(aws) -> list[tuple[str, ArchivedEvent]]:
    """Every archive line in the bucket, with the key of the object holding it."""
    keys = [
        o["Key"]
        for page in aws.s3.get_paginator("list_objects_v2").paginate(
            Bucket=aws.archive_bucket, Prefix=archive.PREFIX
        )
        for o in page.get("Contents") or ()
    ]
    return [
        (key, line)
        for key in sorted(keys)
        for line in archive.decode(aws.s3.get_object(Bucket=aws.archive_bucket, Key=key)["Body"].read())
    ]


def generic_event(event_type: str, event_id: str) -> Envelope:
    """A generic `billing` event of `event_type` (the fault suite maps `invoice.paid` only)."""
    (sample,) = envelopes(10, "archive")[8:9]
    sample.event_type = sample.event["type"] = event_type
    sample.event_id = event_id
    return sample


def keys_of(envelope: Envelope, mappings: Sequence[str]) -> set[str]:
    return {job_key(event_scope(envelope.source, envelope.name), envelope.event_id, m) for m in mappings}


def test_an_unmatched_generic_event_is_archived_with_no_jobs(aws, lambda_context) -> None:
    envelope = generic_event("customer.updated", "gw-unmatched-1")

    answer = routed(aws, [envelope], lambda_context)

    assert answer == {"batchItemFailures": []}
    ((key, line),) = archived(aws)
    assert line.envelope == envelope
    assert (line.jobs, line.dead_letters, line.matched) == ([], [], False)
    hour = archive.hour_of(envelope.received_at)
    assert key.startswith(archive.partition(hour, "generic"))
    assert key.endswith(".jsonl.gz")


def test_a_matched_event_is_archived_with_its_job_keys(aws, lambda_context) -> None:
    envelope = generic_event("invoice.paid", "gw-matched-1")

    answer = routed(aws, [envelope], lambda_context)

    assert answer == {"batchItemFailures": []}
    ((_, line),) = archived(aws)
    assert line.envelope == envelope
    assert line.dead_letters == []
    assert {(j.mapping, j.target) for j in line.jobs} == {
        ("fault-generic-invoice-to-hubspot-timeline", "hubspot"),
        ("fault-generic-invoice-to-matter", "matter"),
    }
    assert {j.key for j in line.jobs} == keys_of(envelope, GENERIC_MAPPINGS)
    assert {j["key"] for t in ("hubspot", "matter") for j in aws.receive(t)} == keys_of(
        envelope, GENERIC_MAPPINGS
    )


def test_an_s3_failure_fails_the_batch_and_the_retry_archives_it_so_nothing_is_missing(
    aws, lambda_context
) -> None:
    batch = envelopes(10, "s3-down")
    unreadable = "not an envelope"
    deps = Dependencies.from_environ()

    # The route stage's own S3 client refuses: nothing else in the process is touched.
    with patch.object(deps.aws("s3"), "put_object", side_effect=ConnectionError("S3 is unreachable")):
        answer = routed(aws, [*batch, unreadable], lambda_context, dependencies=deps)

    assert answer == {"batchItemFailures": [{"itemIdentifier": f"msg-{i}"} for i in range(11)]}
    assert archived(aws) == []
    first_keys = {j["key"] for t in ("stora", "hubspot", "matter", "applied") for j in aws.receive(t)}

    answer = routed(aws, [*batch, unreadable], lambda_context, dependencies=deps)

    assert answer == {"batchItemFailures": [{"itemIdentifier": "msg-10"}]}  # only the unreadable one
    lines = [line for _, line in archived(aws)]
    assert sorted(line.envelope.event_id for line in lines) == sorted(e.event_id for e in batch)
    retry_keys = {j["key"] for t in ("stora", "hubspot", "matter", "applied") for j in aws.receive(t)}
    # The retry rendered the same jobs with the same keys (deliver dedupes), and the archive has them.
    assert retry_keys == first_keys == {j.key for line in lines for j in line.jobs}
    # One object per (received hour, source) of the batch.
    assert {line.envelope.source for line in lines} == {"hubspot", "slack", "pipedrive", "generic"}


def test_a_replayed_envelope_is_routed_through_its_mappings_only_and_not_archived_again(
    aws, lambda_context
) -> None:
    envelope = generic_event("invoice.paid", "gw-replayed-1")
    envelope.replay = {"id": "replay-1", "mappings": ["fault-generic-invoice-to-matter"]}

    with (
        patch.object(route.logger, "info", wraps=route.logger.info) as info,
        patch.object(route.metrics, "add_metric") as add_metric,
    ):
        answer = routed(aws, [envelope], lambda_context)

    assert answer == {"batchItemFailures": []}
    (job,) = aws.receive("matter")
    assert job["key"] == job_key("generic.billing", envelope.event_id, "fault-generic-invoice-to-matter")
    assert aws.count("hubspot") == 0
    assert archived(aws) == []
    (line,) = [c.kwargs["extra"] for c in info.call_args_list if c.args == ("event routed",)]
    assert line["replay"] == "replay-1"
    assert line["keys"] == [job["key"]]
    metrics = {c.kwargs["name"]: c.kwargs["value"] for c in add_metric.call_args_list}
    assert metrics["WebhookReplayed"] == 1


def test_a_replayed_envelope_without_a_mapping_list_renders_every_mapping(aws, lambda_context) -> None:
    envelope = generic_event("invoice.paid", "gw-replayed-2")
    envelope.replay = {"id": "replay-2", "mappings": None}

    answer = routed(aws, [envelope], lambda_context)

    assert answer == {"batchItemFailures": []}
    assert {j["key"] for t in ("hubspot", "matter") for j in aws.receive(t)} == keys_of(
        envelope, GENERIC_MAPPINGS
    )
    assert archived(aws) == []


def test_no_archive_is_written_when_no_bucket_is_configured(
    aws, lambda_context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVENTS_ARCHIVE_BUCKET")

    answer = routed(aws, [generic_event("invoice.paid", "gw-no-archive-1")], lambda_context)

    assert answer == {"batchItemFailures": []}
    assert aws.count("matter") == 1
    assert archived(aws) == []


def test_bridge_dev_archives_what_it_routes_in_the_bucket_dev_json_names(local_runtime, tmp_path) -> None:
    import boto3
    import requests
    from timeline_bridge_tools import signing
    from timeline_bridge_tools.local.state import read_state

    state = read_state(tmp_path)
    assert state is not None
    bucket = state["env"]["EVENTS_ARCHIVE_BUCKET"]
    assert bucket == state["buckets"]["EventsArchiveBucket"] == "eventsarchivebucket"
    s3 = boto3.client(
        "s3",
        endpoint_url=state["aws_endpoint_url"],
        region_name=state["region"],
        aws_access_key_id=state["env"]["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=state["env"]["AWS_SECRET_ACCESS_KEY"],
    )
    sample = json.loads((ROOT / "events" / "hubspot" / "deal-stage-change.json").read_text())
    body = signing.body_bytes(sample)
    url = local_runtime.webhook_urls["hubspot"]
    headers = signing.sign_request(
        "hubspot", body, local_runtime.secret_values["HUBSPOT_CLIENT_SECRET"], url=url
    )

    answer = requests.post(
        url, data=body, headers={"content-type": "application/json", **headers}, timeout=10
    )

    assert answer.status_code == 200
    deadline = time.monotonic() + 10
    while not (objects := s3.list_objects_v2(Bucket=bucket, Prefix=archive.PREFIX).get("Contents")):
        assert time.monotonic() < deadline, "nothing archived within 10 s"
        time.sleep(0.05)
    (obj,) = objects
    (line,) = archive.decode(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    assert line.envelope.source == "hubspot"
    assert {j.target for j in line.jobs} == {"stora", "hubspot", "matter"}
