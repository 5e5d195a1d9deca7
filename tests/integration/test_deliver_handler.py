"""functions/deliver/app.py as Lambda runs it: TARGET from the environment, an SQS batch in, the
partial batch response out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from delivery_harness import FAULT_MAPPINGS, envelopes, scale_sandboxes, set_scaled_env
from timeline_bridge.mapping.engine import no_enrichment
from timeline_bridge.mapping.loader import load_mappings
from timeline_bridge.models import DeliveryJob


@pytest.fixture
def handler(
    aws: Any, sandboxes: dict[str, Any], monkeypatch: pytest.MonkeyPatch, load_function: Any
) -> Iterator[Any]:
    set_scaled_env(monkeypatch)
    scale_sandboxes(sandboxes)
    monkeypatch.setenv("TARGET", "matter")
    yield load_function("deliver").lambda_handler


def test_matter_batch_is_delivered_and_a_bad_record_failed_back_when_target_is_matter(
    handler, sandboxes, lambda_context, capsys
):
    mappings = load_mappings(FAULT_MAPPINGS)
    jobs = [
        o
        for e in envelopes(10, "handler")
        for o in mappings.render_jobs(e, no_enrichment)
        if isinstance(o, DeliveryJob) and o.target == "matter"
    ]
    records = [
        {"messageId": f"m-{i}", "receiptHandle": "rh", "body": j.to_json()} for i, j in enumerate(jobs)
    ]
    records.append({"messageId": "junk", "receiptHandle": "rh", "body": "{not a job"})
    answer = handler({"Records": records}, lambda_context)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "junk"}]}
    assert sorted(e["ref"] for e in sandboxes["matter"].events()) == sorted(j.key for j in jobs)
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [published] = [m for m in emf if "TimelineEventDelivered" in m]
    assert published["TimelineEventDelivered"] == [len(jobs)] and published["target"] == "matter"
