"""One test per failure mode of docs/architecture.md in the delivery and ingest scope
(FM-01 to FM-10, FM-15 to FM-22, FM-27, FM-28), each asserting what the bridge does there.

Handlers run in-process; SQS and DynamoDB are moto (the `aws` fixture), the providers are the
sandboxes over loopback, time is scaled (delivery_harness). Ingest's own side of FM-15, FM-16,
FM-19 and FM-20 (a 5xx before any durable enqueue, a claim store outage, an event without
identity, the same identity with another body) is covered in tests/integration/test_ingest_*.py;
here the same failures are met by the deliver stage.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from delivery_harness import (
    FAULT_MAPPINGS,
    CrashingClient,
    Pipeline,
    WorkerCrash,
    crash_to_batch_failure,
    dead_letters,
    delivered_keys,
    enqueue,
    envelopes,
    fast_moto,
    scale_sandboxes,
    set_scaled_env,
)
from timeline_bridge import TARGETS, config, delivery
from timeline_bridge.delivery import JobQueues, parse_iso
from timeline_bridge.mapping.engine import no_enrichment
from timeline_bridge.mapping.loader import load_mappings
from timeline_bridge.models import DeliveryJob, Envelope
from timeline_bridge.targets import TargetClient, client_for
from timeline_bridge.wiring import Dependencies
from timeline_bridge_tools.local.event_source import FakeLambdaContext
from timeline_bridge_tools.signing import sign_event

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_MAPPINGS = ROOT / "mappings"


@pytest.fixture(autouse=True)
def scaled_world(aws: Any, sandboxes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from timeline_bridge.observability import logger

    fast_moto(monkeypatch)
    set_scaled_env(monkeypatch)
    scale_sandboxes(sandboxes)
    level = logger.log_level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)


# --- helpers ------------------------------------------------------------------------------------


def jobs_for(target: str, count: int, run: str) -> list[DeliveryJob]:
    """`count` valid jobs for `target`, rendered by the suite's mappings."""
    mappings = load_mappings(FAULT_MAPPINGS)
    found: list[DeliveryJob] = []
    for envelope in envelopes(count * 10, run):
        for outcome in mappings.render_jobs(envelope, no_enrichment):
            if isinstance(outcome, DeliveryJob) and outcome.target == target:
                found.append(outcome)
    return found[:count]


def records(jobs: Sequence[DeliveryJob]) -> list[dict[str, Any]]:
    return [
        {"messageId": f"m-{i}", "receiptHandle": f"rh-{i}", "body": j.to_json(), "attributes": {}}
        for i, j in enumerate(jobs)
    ]


def context(seconds: float = 30.0) -> FakeLambdaContext:
    return FakeLambdaContext(function_name="DeliverFunction", timeout=seconds)


class RecordingQueues(JobQueues):
    """The real queues, keeping a copy of every re-enqueued job so a test can read its state."""

    def __init__(self, queues: JobQueues) -> None:
        super().__init__(
            queues.target, sqs=queues.sqs, queue_url=queues.queue_url, dead_letter_url=queues.dead_letter_url
        )
        self.requeued: list[tuple[DeliveryJob, float]] = []

    def requeue_batch(self, entries: Sequence[tuple[str, float]]) -> list[int]:
        self.requeued.extend((DeliveryJob.from_json(body), delay) for body, delay in entries)
        return super().requeue_batch(entries)


def built(target: str) -> TargetClient:
    """The client of `target`, built as its deliverer builds it: from this test's environment."""
    deps = Dependencies.from_environ()
    return client_for(target, deps.settings, deps.secrets)


def deliverer(
    target: str, *, client: Any = None, dependencies: Dependencies | None = None
) -> tuple[delivery.Deliverer, RecordingQueues]:
    """The deliverer of `target` as its function builds it (from this test's environment, or on
    `dependencies`), its queues recording what it re-enqueues."""
    d = delivery.build(dependencies or Dependencies.from_environ(), target, client or built(target))
    queues = RecordingQueues(d.queues)
    d.queues = queues
    return d, queues


def deliver(aws: Any, jobs: Sequence[DeliveryJob], **pipeline: Any) -> Pipeline:
    """Put jobs straight on their delivery queues and run the deliver functions until done."""
    by_target: dict[str, list[str]] = {}
    for job in jobs:
        by_target.setdefault(job.target, []).append(job.to_json())
    for target, bodies in by_target.items():
        enqueue(aws.sqs, aws.queues[target], bodies)
    p = Pipeline(aws, **pipeline)
    p.run(timeout=60)
    return p


def stored(sandboxes: dict[str, Any], target: str) -> dict[str, int]:
    return dict(delivered_keys(sandboxes)[target])


def dlq(aws: Any, target: str) -> list[dict[str, Any]]:
    return dead_letters(aws.sqs, aws.queues[f"{target}-dlq"])


def records_in_table(aws: Any, target: str) -> list[dict[str, Any]]:
    items = aws.dynamodb.scan(TableName=aws.table)["Items"]
    return [i for i in items if i["id"]["S"].startswith(f"deliver#{target}#")]


def client_error(code: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "injected"}}, operation)


def stora_job_from_request(request: dict[str, Any]) -> DeliveryJob:
    """The Stora job behind a request the sandbox received (same key, same body)."""
    body = request["json"]
    return DeliveryJob(
        key=body["variables"]["bridge_key"],
        target="stora",
        mapping="fault-hubspot-deal-to-stora",
        mapping_file="tests/integration/fault_mappings/fault-hubspot-deal-to-stora.yaml",
        source="hubspot",
        event_id="replayed",
        event_type="deal.propertyChange",
        occurred_at=None,
        body=body,
    )


# --- FM-01 to FM-10 -------------------------------------------------------------------------------


def test_fm01_duplicate_webhooks_become_one_timeline_event_when_replayed_sequentially_and_concurrently(
    aws, sandboxes, monkeypatch, load_function, load_event, lambda_context
):
    secret = "3f6c0b7e-5d1a-4c2b-9e8f-7a6b5c4d3e2f"
    monkeypatch.setenv("HUBSPOT_CLIENT_SECRET", secret)
    handler = load_function("hubspot").lambda_handler
    signed = sign_event("hubspot", load_event("hubspot/deal-stage-change.json"), secret)
    answers = [handler(signed, lambda_context) for _ in range(3)]
    threads = [
        threading.Thread(target=lambda: answers.append(handler(signed, lambda_context))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a["statusCode"] for a in answers] == [200] * 7  # the sender sees success every time

    p = Pipeline(aws)
    p.run(timeout=60)
    for target in ("stora", "hubspot"):
        assert sorted(stored(sandboxes, target).values()) == [1], target
    # Copies of a delivered job that reach the worker again are dropped there, never re-sent.
    delivered = next(r for r in sandboxes["stora"].requests if r["status"] == 201)
    before = len(sandboxes["stora"].requests)
    enqueue(aws.sqs, aws.queues["stora"], [stora_job_from_request(delivered).to_json()] * 3)
    p.run(timeout=60)
    assert len(sandboxes["stora"].requests) == before
    assert sorted(stored(sandboxes, "stora").values()) == [1]


def test_fm02_reordered_events_are_each_delivered_with_their_source_time(aws, sandboxes):
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    stages = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "contractsent", "closedwon"]
    events = []
    for i, stage in enumerate(stages):
        at = start + timedelta(minutes=i)
        event = {
            "eventId": 9100 + i,
            "subscriptionType": "deal.propertyChange",
            "objectId": 424242,
            "portalId": 62515,
            "propertyName": "dealstage",
            "propertyValue": stage,
            "occurredAt": int(at.timestamp() * 1000),
        }
        iso = at.isoformat().replace("+00:00", "Z")
        events.append(Envelope("hubspot", "deal.propertyChange", f"reorder-{i}", iso, iso, event))
    shuffled = [events[i] for i in (3, 0, 4, 2, 1)]  # arrival order differs from source order
    p = Pipeline(aws)
    expected = p.expected_jobs(shuffled)
    p.send(shuffled)
    p.run(timeout=60)
    timeline = sandboxes["hubspot"].events()
    assert {e["id"] for e in timeline} == {k for k, t in expected.items() if t == "hubspot"}  # none dropped
    by_stage = {e["tokens"]["new_stage"]: e["timestamp"] for e in timeline}
    for i, stage in enumerate(stages):  # the timeline time is the source's occurredAt, not arrival
        assert by_stage[stage].startswith((start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M"))
    assert sorted(stored(sandboxes, "stora").values()) == [1] * len(stages)


def test_fm03_a_sender_retry_after_a_slow_answer_is_absorbed_as_one_event(
    aws, sandboxes, monkeypatch, load_function, load_event, lambda_context
):
    secret = "7d3f9a1c5e2b8d4f6a0c1e3b5d7f9a2c"
    monkeypatch.setenv("SLACK_SIGNING_SECRET", secret)
    handler = load_function("slack").lambda_handler
    first = sign_event("slack", load_event("slack/approve-button.json"), secret)
    # Slack gave up waiting (3 s) and retries the same request, saying why.
    retry = json.loads(json.dumps(first))
    retry["headers"].update({"x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout"})
    assert handler(first, lambda_context)["statusCode"] == 200
    assert handler(retry, lambda_context)["statusCode"] == 200
    Pipeline(aws).run(timeout=60)
    assert sorted(stored(sandboxes, "matter").values()) == [1]


@pytest.mark.parametrize("target", TARGETS)
def test_fm04_a_worker_killed_after_the_provider_accepted_reruns_once_its_claim_expires(
    aws, sandboxes, target
):
    [job] = jobs_for(target, 1, f"f4-{target}")
    killed, _ = deliverer(target, client=CrashingClient(built(target), every=1))
    handler = crash_to_batch_failure(target, lambda e, c: killed.process(e["Records"], c))
    with pytest.raises(WorkerCrash):
        handler({"Records": records([job])}, context(1.0))
    assert sum(stored(sandboxes, target).values()) == 1  # the provider has it; the worker died
    [record] = records_in_table(aws, target)
    assert record["status"]["S"] == "INPROGRESS"
    expires = int(record["in_progress_expiration"]["N"]) / 1000
    assert expires <= time.time() + 1.0  # the claim dies with the invocation, not after hours

    time.sleep(max(0.0, expires - time.time()) + 0.1)
    retry, _ = deliverer(target)
    assert retry.process(records([job]), context())["batchItemFailures"] == []  # no endless AlreadyInProgress
    assert stored(sandboxes, target) == {job.key: 1}  # the provider-side key made the re-send a no-op
    [record] = records_in_table(aws, target)
    assert record["status"]["S"] == "COMPLETED"


def test_fm05_5xx_resets_and_timeouts_are_retried_then_dead_lettered_as_target_unavailable(
    aws, sandboxes, monkeypatch
):
    sandboxes["matter"].inject("server_error", 2, status=503)
    sandboxes["matter"].inject("drop_connection", 1)
    sandboxes["matter"].inject("slow", 1, delay=0.6)  # past the 0.4 s read timeout
    sandboxes["stora"].inject("server_error", 2, status=500)
    matter_job, stora_job = jobs_for("matter", 1, "f5-m")[0], jobs_for("stora", 1, "f5-s")[0]
    deliver(aws, [matter_job, stora_job])
    assert stored(sandboxes, "matter") == {matter_job.key: 1}
    keys = [r["headers"]["idempotency-key"] for r in sandboxes["matter"].requests]
    assert (
        len(keys) >= 5 and len(set(keys)) == 1
    )  # every retry under the same key (Matter never memoises 5xx)
    assert stored(sandboxes, "stora") == {stora_job.key: 1}
    stora_keys = [r["headers"]["idempotency-key"] for r in sandboxes["stora"].requests]
    assert stora_keys == [stora_job.key, f"{stora_job.key}-r1", f"{stora_job.key}-r2"]  # Stora replays a 5xx

    monkeypatch.setenv("DELIVERY_MAX_ATTEMPTS", "3")
    sandboxes["applied"].inject("server_error", 1000, status=503)
    [applied_job] = jobs_for("applied", 1, "f5-a")
    deliver(aws, [applied_job])
    [dead] = dlq(aws, "applied")
    reason = dead["dead_letter"]
    assert (reason["reason"], reason["category"], reason["status"]) == (
        "retries_exhausted",
        "target_unavailable",
        503,
    )
    assert reason["attempts"] == 3 and reason["first_failure_at"] <= reason["last_failure_at"]
    assert dead["body"] == applied_job.body  # the original payload travels with the reason


@pytest.mark.parametrize(
    ("target", "params", "wait"),
    [
        ("stora", {"reset_in": 2.0}, None),  # RateLimit-Reset (epoch seconds), no Retry-After
        ("hubspot", {"retry_after": 2}, 2.0),
        ("matter", {"retry_after": 2}, 2.0),  # Retry-After + retry_after in the problem body
        ("applied", {"retry_after": 2}, 2.0),
    ],
)
def test_fm06_rate_limit_waits_provider_delay_without_burning_budget(aws, sandboxes, target, params, wait):
    sandboxes[target].inject("rate_limit", 1, **params)
    jobs = jobs_for(target, 3, f"f6-{target}")
    d, queues = deliverer(target)
    assert d.process(records(jobs), context())["batchItemFailures"] == []
    [throttled_at] = [r["at"] for r in sandboxes[target].requests if r["status"] == 429]
    signalled = wait if wait is not None else float(int(throttled_at + params["reset_in"]) + 1) - throttled_at
    assert len(sandboxes[target].requests) == 1  # the rest of the batch was not sent into the 429
    requeued = {j.key: j for j, _ in queues.requeued}
    assert set(requeued) == {j.key for j in jobs}
    first = requeued[jobs[0].key]
    assert (first.retries, first.throttled, first.attempts) == (0, 1, 1)  # the budget is untouched
    waited = (parse_iso(first.not_before) or 0) - throttled_at
    assert signalled - 0.2 <= waited <= signalled + 1.3  # the signalled time, plus a little spread
    for other in jobs[1:]:  # HubSpot sent all three in one batch request; the others sent one
        assert requeued[other.key].attempts == (1 if target == "hubspot" else 0)
        assert requeued[other.key].retries == 0
    pause = aws.dynamodb.get_item(TableName=aws.table, Key={"id": {"S": f"throttle#{target}"}})["Item"]
    assert float(pause["until"]["N"]) == pytest.approx(throttled_at + signalled, abs=0.6)


def test_fm06_hubspot_daily_limit_pauses_the_target_until_midnight_utc(aws, sandboxes):
    sandboxes["hubspot"].inject("rate_limit", 1, policy="DAILY")
    jobs = jobs_for("hubspot", 2, "f6-daily")
    d, queues = deliverer("hubspot")
    d.process(records(jobs), context())
    now = datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    for job, delay in queues.requeued:
        assert (parse_iso(job.not_before) or 0) == pytest.approx(midnight, abs=2.0)
        assert delay >= min(900, midnight - now.timestamp() - 2)  # SQS holds it up to 15 min at a time
        assert job.retries == 0
    pause = aws.dynamodb.get_item(TableName=aws.table, Key={"id": {"S": "throttle#hubspot"}})["Item"]
    assert float(pause["until"]["N"]) == pytest.approx(midnight, abs=2.0)


def test_fm07_permanent_refusals_are_dead_lettered_at_once_with_code_pointer_and_request_id(aws, sandboxes):
    [bad] = jobs_for("stora", 1, "f7-s")
    bad.body["contact"] = {"id": "not-a-contact"}
    [matter] = jobs_for("matter", 1, "f7-m")
    # The same Matter key was used for another body before (another deployment, an old mapping).
    other = DeliveryJob.from_json(matter.to_json())
    other.body = {**matter.body, "title": "an earlier body under the same key"}
    assert built("matter").send([other])[0].status == 201
    deliver(aws, [bad, matter])

    [stora_dead] = dlq(aws, "stora")
    reason = stora_dead["dead_letter"]
    assert (reason["reason"], reason["status"], reason["provider_code"]) == (
        "permanent_failure",
        422,
        "invalid_content",
    )
    assert any(d.get("pointer") == "/contact/id" for d in reason["details"])
    assert reason["request_id"] and reason["attempts"] == 1
    stora_sent = [
        r
        for r in sandboxes["stora"].requests
        if r["json"] and r["json"].get("contact") == bad.body["contact"]
    ]
    assert len(stora_sent) == 1  # no blind retry
    [matter_dead] = dlq(aws, "matter")
    assert matter_dead["dead_letter"]["provider_code"] == "validation_idempotency_key_conflict"
    assert matter_dead["dead_letter"]["status"] == 409

    # 409 "same key, same body" is success: Matter replays the original answer.
    [again] = jobs_for("matter", 1, "f7-same")
    assert built("matter").send([again])[0].status == 201
    d, _ = deliverer("matter")
    assert d.process(records([again]), context())["batchItemFailures"] == []
    assert stored(sandboxes, "matter").get(again.key) == 1


def test_fm08_rejected_credentials_keep_the_job_retrying_until_the_fix(aws, sandboxes, monkeypatch):
    monkeypatch.setenv("STORA_TOKEN", "a-rotated-token")
    monkeypatch.setenv("DELIVERY_CREDENTIALS_PAUSE_SECONDS", "2")
    first, *rest = jobs_for("stora", 3, "f8")
    d, queues = deliverer("stora")
    d.process(records([first, *rest]), context())
    retries = {j.key: j for j, _ in queues.requeued}
    assert retries[first.key].retries == 1 and dlq(aws, "stora") == []  # not dead-lettered on a 401
    # The target is paused for every worker: one request found the bad token, the rest wait unsent.
    assert len(sandboxes["stora"].requests) == 1
    assert all(retries[j.key].attempts == 0 for j in rest)
    assert d.gate.paused_until() > time.time()

    monkeypatch.setenv("STORA_TOKEN", "stora-sandbox-token")  # the operator fixed the secret
    Pipeline(aws).run(timeout=60)
    assert stored(sandboxes, "stora") == {j.key: 1 for j in (first, *rest)}


FM09_STORA_MAPPING = """\
name: f9-hubspot-deal-to-stora
description: Deal stage changes on the Stora contact named by the event; no contact, no job.
source: hubspot
when: "event.subscriptionType == 'deal.propertyChange'"
target: stora
body:
  template: {id: aetpl_6b92d7693eb7e8e9}
  source: {id: tsrc_126b43585fea94ad}
  contact: {id: "${{ event.contactId }}"}
  description: "CRM deal moved to ${{ event.propertyValue }}"
  variables:
    deal_name: "Deal ${{ to_string(event.objectId) }}"
    previous_state: unknown
    new_state: "${{ event.propertyValue }}"
    bridge_key: "${{ meta.key }}"
required:
  - contact.id
"""


def test_fm09_a_mapping_error_dead_letters_only_its_job_and_the_rest_is_delivered(aws, sandboxes, tmp_path):
    (tmp_path / "f9-hubspot-deal-to-stora.yaml").write_text(FM09_STORA_MAPPING)
    timeline = FAULT_MAPPINGS / "fault-hubspot-deal-to-hubspot-timeline.yaml"
    (tmp_path / timeline.name).write_text(timeline.read_text())
    events_dlq_arn = aws.sqs.get_queue_attributes(
        QueueUrl=aws.queues["events-dlq"], AttributeNames=["QueueArn"]
    )
    aws.sqs.set_queue_attributes(
        QueueUrl=aws.queues["events"],
        Attributes={
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": events_dlq_arn["Attributes"]["QueueArn"], "maxReceiveCount": "2"}
            )
        },
    )
    deal = {
        "eventId": 1,
        "subscriptionType": "deal.propertyChange",
        "objectId": 18147040851,
        "portalId": 62515,
        "propertyName": "dealstage",
        "propertyValue": "contractsent",
        "occurredAt": 1763899315724,
        "contactId": "con_3f1e0b9a7c5d2e48",
    }
    good = Envelope("hubspot", "deal.propertyChange", "f9-good", None, "2026-11-23T10:00:00Z", deal)
    no_contact = {k: v for k, v in deal.items() if k != "contactId"} | {"eventId": 2}
    poison = Envelope("hubspot", "deal.propertyChange", "f9-poison", None, "2026-11-23T10:00:00Z", no_contact)
    enqueue(aws.sqs, aws.queues["events"], [good.to_json(), poison.to_json(), "{not an envelope"])
    Pipeline(aws, mappings_dir=tmp_path, visibility_timeout=2, function_timeout=2.0).run(timeout=60)

    assert len(stored(sandboxes, "stora")) == 1  # the good event's Stora job
    assert len(stored(sandboxes, "hubspot")) == 2  # both events' other job: the poison spoiled only its own
    [dead] = dlq(aws, "stora")
    reason = dead["dead_letter"]
    assert (reason["reason"], reason["stage"], reason["field"]) == (
        "mapping_error",
        "route",
        "body.contact.id",
    )
    assert reason["mapping_file"].endswith("f9-hubspot-deal-to-stora.yaml")
    assert reason["envelope"]["event_id"] == "f9-poison"  # routed again by a redrive after the fix
    [unreadable] = dead_letters(aws.sqs, aws.queues["events-dlq"])  # only that record failed
    assert unreadable == {"unreadable": "{not an envelope"}


def test_fm10_a_207_partial_batch_retries_or_dead_letters_only_the_failed_inputs(aws, sandboxes):
    jobs = jobs_for("hubspot", 100, "f10")
    assert len(jobs) == 100
    for bad in jobs[10:13]:
        bad.body["tokens"] = {**bad.body["tokens"], "not_a_template_token": "x"}
    d, queues = deliverer("hubspot")
    assert d.process(records(jobs), context())["batchItemFailures"] == []
    [request] = sandboxes["hubspot"].requests
    assert request["path"].endswith("/batch/create") and request["status"] == 207
    assert len(request["json"]["inputs"]) == 100
    assert set(stored(sandboxes, "hubspot")) == {j.key for j in jobs} - {j.key for j in jobs[10:13]}
    dead = dlq(aws, "hubspot")
    assert {d["key"] for d in dead} == {j.key for j in jobs[10:13]}
    assert {d["dead_letter"]["provider_code"] for d in dead} == {"VALIDATION_ERROR"}
    assert queues.requeued == []  # the 97 stored ones are done, nothing retried blindly


# --- FM-15 to FM-22 -------------------------------------------------------------------------------


def test_fm15_a_failed_enqueue_at_the_worker_never_acknowledges_the_job(aws, sandboxes):
    sandboxes["matter"].inject("server_error", 1, status=503)
    [job] = jobs_for("matter", 1, "f15")
    dependencies = Dependencies.from_environ()
    sqs = dependencies.aws("sqs")  # the deliverer's own client

    def refuse(**kwargs: Any) -> Any:
        raise client_error("InternalError", "SendMessageBatch")

    d, _ = deliverer("matter", dependencies=dependencies)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sqs, "send_message_batch", refuse)
        answer = d.process(records([job]), context())
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m-0"}]  # SQS keeps the original
    enqueue(aws.sqs, aws.queues["matter"], [job.to_json()])  # the original, visible again
    Pipeline(aws).run(timeout=60)
    assert stored(sandboxes, "matter") == {job.key: 1}


def test_fm16_an_unavailable_dedupe_store_fails_the_record_and_nothing_is_sent(aws, sandboxes):
    dependencies = Dependencies.from_environ()
    dynamodb = dependencies.aws("dynamodb")  # the deliverer's own client

    def throttled(**kwargs: Any) -> Any:
        raise client_error("ProvisionedThroughputExceededException", "PutItem")

    jobs = jobs_for("stora", 2, "f16")
    d, _ = deliverer("stora", dependencies=dependencies)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(dynamodb, "put_item", throttled)
        answer = d.process(records(jobs), context())
    assert answer["batchItemFailures"] == [{"itemIdentifier": "m-0"}, {"itemIdentifier": "m-1"}]
    assert sandboxes["stora"].requests == []  # never sent without dedupe
    d.process(records(jobs), context())
    assert stored(sandboxes, "stora") == {j.key: 1 for j in jobs}


def test_fm17_a_burst_is_absorbed_by_the_queue_and_paced_under_the_provider_limit(aws, sandboxes):
    jobs = jobs_for("stora", 150, "f17")
    deliver(aws, jobs, concurrency={"stora": 3})
    assert stored(sandboxes, "stora") == {j.key: 1 for j in jobs}
    sent = sorted(r["at"] for r in sandboxes["stora"].requests)
    assert [r for r in sandboxes["stora"].requests if r["status"] == 429] == []  # no 429 storm
    minute = 60 * 0.01  # the sandbox's scaled minute
    assert max(sum(1 for s in sent if t - minute < s <= t) for t in sent) <= 60


def test_fm18_a_redelivery_days_later_is_still_deduped_after_the_provider_key_expired(aws, sandboxes):
    [job] = jobs_for("stora", 1, "f18")
    d, _ = deliverer("stora")
    d.process(records([job]), context())
    [record] = records_in_table(aws, "stora")
    expiry = int(record["expiration"]["N"])
    assert expiry >= time.time() + 7 * 86400 - 60  # the delivered-record outlives senders' retries
    # Eight days later: Stora forgot the key (24 h), the bridge has not.
    aws.dynamodb.update_item(
        TableName=aws.table,
        Key={"id": record["id"]},
        UpdateExpression="SET expiration = :e",
        ExpressionAttributeValues={":e": {"N": str(expiry - 8 * 86400)}},
    )
    sandboxes["stora"].idempotency.clear()
    before = len(sandboxes["stora"].requests)
    assert d.process(records([job]), context())["batchItemFailures"] == []
    assert len(sandboxes["stora"].requests) == before  # checked, not created again
    assert stored(sandboxes, "stora") == {job.key: 1}


def test_fm19_a_job_without_idempotency_key_is_dead_lettered_not_processed(aws, sandboxes):
    [job] = jobs_for("matter", 1, "f19")
    job.key = ""
    d, _ = deliverer("matter")
    assert d.process(records([job]), context())["batchItemFailures"] == []
    [dead] = dlq(aws, "matter")
    assert dead["dead_letter"]["reason"] == "no_idempotency_key"
    assert sandboxes["matter"].requests == []


def test_fm20_the_same_key_with_a_different_body_is_dead_lettered_as_payload_mismatch(aws, sandboxes):
    [job] = jobs_for("hubspot", 1, "f20")
    d, _ = deliverer("hubspot")
    d.process(records([job]), context())
    tampered = DeliveryJob.from_json(job.to_json())
    tampered.body["tokens"]["new_stage"] = "closedlost"
    d.process(records([tampered]), context())
    [dead] = dlq(aws, "hubspot")
    assert dead["dead_letter"]["reason"] == "payload_mismatch"
    [event] = sandboxes["hubspot"].events()
    assert event["tokens"]["new_stage"] == job.body["tokens"]["new_stage"]  # the delivered one stands


def test_fm21_a_crash_mid_batch_redelivers_the_batch_and_dedupe_keeps_it_single(aws, sandboxes):
    jobs = jobs_for("matter", 20, "f21")
    crashing = CrashingClient(built("matter"), every=5)
    deliver(
        aws,
        jobs,
        clients={"matter": crashing},
        wrap=crash_to_batch_failure,
        visibility_timeout=2,
        function_timeout=2.0,
    )
    assert crashing.crashes >= 1
    assert stored(sandboxes, "matter") == {j.key: 1 for j in jobs}
    assert {r["status"]["S"] for r in records_in_table(aws, "matter")} == {"COMPLETED"}


def test_fm22_a_slow_target_costs_a_timeout_and_the_unsent_rest_goes_back_before_the_deadline(
    aws, sandboxes, monkeypatch
):
    from timeline_bridge.targets.http import timeouts

    monkeypatch.setenv("BRIDGE_HTTP_CONNECT_TIMEOUT", "30")
    monkeypatch.setenv("BRIDGE_HTTP_READ_TIMEOUT", "60")
    # Well under the function timeout, whatever is configured.
    assert timeouts(config.Settings.from_environ()) == (3.0, 10.0)
    set_scaled_env(monkeypatch)  # read timeout 0.4 s

    sandboxes["stora"].inject("slow", 5, delay=1.0)
    jobs = jobs_for("stora", 5, "f22")
    d, queues = deliverer("stora")
    started = time.monotonic()
    answer = d.process(records(jobs), context(1.6))  # 1.6 s left, 0.5 s margin
    assert time.monotonic() - started < 1.6  # answered before Lambda would kill it
    unsent = [f["itemIdentifier"] for f in answer["batchItemFailures"]]
    assert unsent and len(unsent) + len(queues.requeued) == 5
    assert {j.last_failure_at is not None for j, _ in queues.requeued} == {True}
    time.sleep(1.2)  # the slow answers arrive (Stora stored those events) and are replayed later
    enqueue(aws.sqs, aws.queues["stora"], [j.to_json() for j in jobs if f"m-{jobs.index(j)}" in unsent])
    Pipeline(aws).run(timeout=60)
    assert stored(sandboxes, "stora") == {j.key: 1 for j in jobs}


# --- FM-27, FM-28 ---------------------------------------------------------------------------------


def test_fm27_a_throttled_target_does_not_hold_up_the_others(aws, sandboxes, monkeypatch):
    monkeypatch.setenv("DELIVERY_RATE_TIME_SCALE", "0.05")  # Stora: 48 events per (scaled) minute of 3 s
    sandboxes["stora"].set_rate_limits(None, time_scale=0.05)
    stora = jobs_for("stora", 100, "f27-s")
    hubspot = jobs_for("hubspot", 20, "f27-h")
    deliver(aws, stora + hubspot)
    assert stored(sandboxes, "stora") == {j.key: 1 for j in stora}
    assert stored(sandboxes, "hubspot") == {j.key: 1 for j in hubspot}
    stora_times = sorted(r["at"] for r in sandboxes["stora"].requests)
    hubspot_done = max(r["at"] for r in sandboxes["hubspot"].requests)
    assert hubspot_done < stora_times[49]  # HubSpot finished while Stora's backlog was half done


def test_fm28_dead_letters_are_listed_shown_and_redriven_with_their_attributes(
    aws, sandboxes, capsys, monkeypatch, tmp_path
):
    from timeline_bridge_tools.cli import main
    from timeline_bridge_tools.local.template import load_template

    alarms = [
        r["Properties"]
        for r in load_template(ROOT / "template.yaml")["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    ]
    watched = {
        a["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for a in alarms
        if a["MetricName"] == "ApproximateNumberOfMessagesVisible"
    }
    assert {f"{t.capitalize()}DeliveryDeadLetterQueue" for t in TARGETS} <= watched

    [bad] = jobs_for("stora", 1, "f28")
    bad.body["contact"] = {"id": "nope"}
    d, _ = deliverer("stora")
    d.process(records([bad]), context())
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["dlq", "list", "--target", "stora"]) == 0
    listing = capsys.readouterr().out
    assert "stora: 1 dead letter(s)" in listing
    assert "permanent_failure" in listing and "invalid_content" in listing and bad.key[:17] in listing
    assert main(["dlq", "show", bad.key]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["body"]["dead_letter"]["mapping_file"] == bad.mapping_file
    assert shown["message_attributes"] == {"reason": "permanent_failure", "target": "stora"}

    assert main(["dlq", "redrive", "--target", "stora"]) == 0
    assert "stora: moved 1, failed 0" in capsys.readouterr().out
    [message] = aws.sqs.receive_message(
        QueueUrl=aws.queues["stora"], MessageAttributeNames=["All"], VisibilityTimeout=0
    )["Messages"]
    redriven = DeliveryJob.from_json(message["Body"])
    assert message["MessageAttributes"]["target"]["StringValue"] == "stora"
    assert (redriven.dead_letter, redriven.retries, redriven.redrives, redriven.attempts) == (None, 0, 1, 1)
    assert dlq(aws, "stora") == []
