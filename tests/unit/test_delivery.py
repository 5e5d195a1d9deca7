"""The delivery policy with in-memory fakes: outcomes, backoff, throttling, budget, time cut-off."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from timeline_bridge.config import Settings
from timeline_bridge.delivery import (
    Claim,
    ClaimState,
    Deliverer,
    Pacer,
    RetryPolicy,
    parse_iso,
    rate_limits,
)
from timeline_bridge.delivery.outcomes import iso
from timeline_bridge.errors import PermanentDeliveryError, RetryLaterError
from timeline_bridge.models import DeliveryJob
from timeline_bridge.targets.base import Delivered, Outcome, TargetClient

NOW = 1_800_000_000.0


# --- fakes -------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeClient(TargetClient):
    """Answers each job with `answer(job)`; records every call."""

    def __init__(self, name: str, answer: Callable[[DeliveryJob], Outcome], max_batch_size: int = 1) -> None:
        self.name = name
        self.max_batch_size = max_batch_size
        self.answer = answer
        self.calls: list[list[str]] = []

    def send(self, jobs: Sequence[DeliveryJob]) -> list[Outcome]:
        self.calls.append([j.key for j in jobs])
        return [self.answer(j) for j in jobs]

    @property
    def sent(self) -> list[str]:
        return [k for call in self.calls for k in call]


class FakeRecords:
    """Delivered-records with the Powertools semantics the policy relies on."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.items: dict[str, dict[str, Any]] = {}
        self.fail_with: Exception | None = None
        self.writes: list[int] = []  # jobs per complete_many

    @staticmethod
    def data(job: DeliveryJob) -> dict[str, Any]:
        return {"key": job.key, "body": json.loads(json.dumps(job.body))}

    def claim(self, data: dict[str, Any], remaining_ms: int) -> Claim:
        if self.fail_with:
            raise self.fail_with
        if not data["key"]:
            return Claim(ClaimState.NO_KEY)
        body = json.dumps(data["body"], sort_keys=True)
        item = self.items.get(data["key"])
        if item is not None:
            if item["body"] != body:
                return Claim(ClaimState.MISMATCH)
            if item["status"] == "COMPLETED":
                return Claim(ClaimState.DELIVERED)
            if item["until"] > self.clock():
                return Claim(ClaimState.BUSY, retry_in=item["until"] - self.clock())
        self.items[data["key"]] = {
            "status": "INPROGRESS",
            "body": body,
            "until": self.clock() + remaining_ms / 1000,
        }
        return Claim(ClaimState.CLAIMED)

    def complete_many(self, entries: Sequence[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        self.writes.append(len(entries))
        for data, result in entries:
            self.items[data["key"]].update(status="COMPLETED", result=result)

    def release_many(self, datas: Sequence[dict[str, Any]], reason: Exception) -> None:
        for data in datas:
            self.items.pop(data["key"], None)


@dataclass
class FakeQueues:
    requeued: list[tuple[DeliveryJob, float]] = field(default_factory=list)
    dead: list[DeliveryJob] = field(default_factory=list)
    held: list[tuple[str, float]] = field(default_factory=list)

    fail_requeue: bool = False
    fail_dead_letter: bool = False

    def requeue_batch(self, entries: Sequence[tuple[str, float]]) -> list[int]:
        if self.fail_requeue:
            return list(range(len(entries)))
        self.requeued.extend((DeliveryJob.from_json(body), delay) for body, delay in entries)
        return []

    def dead_letter_batch(self, jobs: Sequence[DeliveryJob]) -> list[int]:
        if self.fail_dead_letter:
            return list(range(len(jobs)))
        self.dead.extend(DeliveryJob.from_json(job.to_json()) for job in jobs)
        return []

    def hold(self, receipt_handle: str, seconds: float) -> None:
        self.held.append((receipt_handle, seconds))


class FakeGate:
    def __init__(self) -> None:
        self.until = 0.0
        self.pauses: list[float] = []

    def paused_until(self) -> float:
        return self.until

    def pause(self, until: float, reason: str = "") -> None:
        self.pauses.append(until)
        self.until = max(self.until, until)


class Context:
    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@dataclass
class World:
    deliverer: Deliverer
    client: FakeClient
    records: FakeRecords
    queues: FakeQueues
    gate: FakeGate
    clock: Clock


def make_world(
    answer: Callable[[DeliveryJob], Outcome] | None = None,
    *,
    target: str = "stora",
    max_batch_size: int = 1,
    policy: RetryPolicy | None = None,
    pacer: Pacer | None = None,
) -> World:
    clock = Clock()
    client = FakeClient(target, answer or (lambda job: Delivered(f"id-{job.key}", 201)), max_batch_size)
    records, queues, gate = FakeRecords(clock), FakeQueues(), FakeGate()
    deliverer = Deliverer(
        target,
        client,
        records=records,
        queues=queues,
        gate=gate,
        pacer=pacer,
        policy=policy or RetryPolicy(),
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(7),
    )
    return World(deliverer, client, records, queues, gate, clock)


def job(n: int = 1, *, target: str = "stora", **changes: Any) -> DeliveryJob:
    fields: dict[str, Any] = {
        "key": f"tb-{n:040d}",
        "target": target,
        "mapping": "hubspot-deal-stage-to-stora",
        "mapping_file": "mappings/hubspot-deal-stage-to-stora.yaml",
        "source": "hubspot",
        "event_id": f"evt-{n}",
        "event_type": "deal.propertyChange",
        "occurred_at": "2026-11-23T10:00:00Z",
        "body": {"description": f"event {n}"},
    }
    fields.update(changes)
    return DeliveryJob(**fields)


def record(j: DeliveryJob | str, n: int = 1) -> dict[str, Any]:
    body = j if isinstance(j, str) else j.to_json()
    return {
        "messageId": f"m-{n}",
        "receiptHandle": f"rh-{n}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
    }


def batch(*jobs: DeliveryJob) -> list[dict[str, Any]]:
    return [record(j, i) for i, j in enumerate(jobs, start=1)]


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


# --- delivered ---------------------------------------------------------------------------------


def test_job_is_acknowledged_and_recorded_when_the_provider_confirms() -> None:
    w = make_world()
    response = w.deliverer.process(batch(job(1)), Context())
    assert failed_ids(response) == []
    assert w.client.sent == [job(1).key]
    assert w.records.items[job(1).key]["status"] == "COMPLETED"
    assert w.records.items[job(1).key]["result"] == {
        "provider_id": f"id-{job(1).key}",
        "status": 201,
        "attempts": 1,
        "delivered_at": iso(w.clock()),
    }
    assert not w.queues.requeued and not w.queues.dead


def test_the_record_says_after_how_many_attempts_a_retried_job_was_delivered() -> None:
    w = make_world()
    w.deliverer.process(batch(job(1, retries=2, attempts=3)), Context())
    assert w.records.items[job(1).key]["result"]["attempts"] == 4


def test_job_is_not_sent_again_when_it_was_already_delivered() -> None:
    w = make_world()
    w.deliverer.process(batch(job(1)), Context())
    response = w.deliverer.process(batch(job(1)), Context())
    assert failed_ids(response) == []
    assert w.client.sent == [job(1).key]


def test_jobs_are_sent_in_chunks_of_the_client_batch_size_when_the_client_batches() -> None:
    w = make_world(target="hubspot", max_batch_size=100)
    jobs = [job(n, target="hubspot") for n in range(1, 251)]
    w.deliverer.process(batch(*jobs), Context())
    assert [len(call) for call in w.client.calls] == [100, 100, 50]


# --- retry later -------------------------------------------------------------------------------


def test_retry_waits_the_provider_delay_when_the_provider_names_one() -> None:
    w = make_world(lambda j: RetryLaterError("unavailable", status=503, retry_after=42.0))
    response = w.deliverer.process(batch(job(1)), Context())
    assert failed_ids(response) == []  # the updated copy is re-enqueued; the original is acknowledged
    [(requeued, delay)] = w.queues.requeued
    assert 42.0 <= delay <= 43.0
    assert parse_iso(requeued.not_before) == pytest.approx(NOW + delay, abs=0.01)
    assert (requeued.attempts, requeued.retries, requeued.throttled) == (1, 1, 0)
    assert requeued.first_failure_at and requeued.last_failure_at
    assert job(1).key not in w.records.items  # claim released: the retry can send again


def test_backoff_stays_within_full_jitter_bounds_when_no_delay_is_named() -> None:
    policy = RetryPolicy(backoff_base=2.0, backoff_cap=60.0)
    rng = random.Random(1)
    for retries in range(1, 12):
        ceiling = min(60.0, 2.0 * 2 ** (retries - 1))
        draws = [policy.backoff(retries, rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in draws)
        assert max(draws) > 0.7 * ceiling  # jitter uses the whole range, not a fixed delay
    assert policy.retry_delay(RetryLaterError("x", status=500), 30, rng) <= 60.0


def test_retry_backs_off_with_jitter_when_the_provider_gives_no_delay() -> None:
    policy = RetryPolicy(backoff_base=4.0, backoff_cap=900.0)
    w = make_world(lambda j: RetryLaterError("bad gateway", status=502), policy=policy)
    w.deliverer.process(batch(job(1, retries=3, attempts=3)), Context())
    [(requeued, delay)] = w.queues.requeued
    assert 0.0 <= delay <= 4.0 * 2**3
    assert requeued.retries == 4


def test_job_is_dead_lettered_as_retries_exhausted_when_the_budget_is_spent() -> None:
    policy = RetryPolicy(max_attempts=3)
    w = make_world(
        lambda j: RetryLaterError("down", status=500, code="internal_server_error", request_id="r-1"),
        policy=policy,
    )
    w.deliverer.process(
        batch(job(1, retries=2, attempts=2, first_failure_at="2026-11-23T09:00:00.000Z")), Context()
    )
    assert not w.queues.requeued
    [dead] = w.queues.dead
    reason = dead.dead_letter
    assert reason is not None
    assert reason["reason"] == "retries_exhausted"
    assert reason["category"] == "target_unavailable"
    assert (reason["status"], reason["provider_code"], reason["request_id"]) == (
        500,
        "internal_server_error",
        "r-1",
    )
    assert reason["attempts"] == 3 and reason["first_failure_at"] == "2026-11-23T09:00:00.000Z"
    assert reason["idempotency_key"] == job(1).key and reason["stage"] == "deliver"


def test_throttling_does_not_spend_the_retry_budget_when_the_provider_answers_429() -> None:
    policy = RetryPolicy(max_attempts=2)
    w = make_world(
        lambda j: RetryLaterError("slow down", status=429, retry_after=3.0, throttled=True), policy=policy
    )
    current = job(1, retries=1, attempts=1)
    for _ in range(5):
        w.queues.requeued.clear()
        w.gate.until = 0.0
        w.deliverer.process(batch(current), Context())
        [(current, _delay)] = w.queues.requeued
        w.clock.now = parse_iso(current.not_before) or w.clock.now
    assert current.retries == 1 and current.throttled == 5 and current.attempts == 6
    assert not w.queues.dead


def test_credentials_failures_keep_retrying_within_the_budget_when_the_provider_answers_401() -> None:
    policy = RetryPolicy(max_attempts=4)
    w = make_world(
        lambda j: RetryLaterError("invalid token", status=401, code="invalid_token"), policy=policy
    )
    current = job(1)
    for _ in range(20):  # each 401 also pauses the target: the job then waits unsent, no attempt
        w.queues.requeued.clear()
        w.deliverer.process(batch(current), Context())
        if w.queues.dead:
            break
        [(current, _)] = w.queues.requeued
        w.clock.now = parse_iso(current.not_before) or w.clock.now
    [dead] = w.queues.dead
    assert dead.dead_letter and dead.dead_letter["category"] == "credentials"
    assert dead.dead_letter["reason"] == "retries_exhausted" and dead.attempts == 4
    assert len(w.client.sent) == 4


def test_target_pauses_and_the_rest_waits_unsent_when_the_provider_rejects_the_credential(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    w = make_world(lambda j: RetryLaterError("invalid token", status=401, code="invalid_token"))
    jobs = [job(n) for n in range(1, 5)]

    response = w.deliverer.process(batch(*jobs), Context())

    assert failed_ids(response) == []
    assert w.client.sent == [jobs[0].key]  # one request finds out; the others are not wasted on it
    assert w.gate.pauses == [NOW + RetryPolicy().credentials_pause]
    requeued = {j.key: (j, d) for j, d in w.queues.requeued}
    assert requeued[jobs[0].key][0].retries == 1
    for waiting in jobs[1:]:
        untouched, delay = requeued[waiting.key]
        assert untouched.attempts == 0 and untouched.retries == 0
        assert 60.0 <= delay <= 61.0
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("TargetCredentialsRejected") == [1.0] and m.get("target") == "stora" for m in metrics)


def test_target_pauses_when_no_credential_is_configured() -> None:
    w = make_world(lambda j: RetryLaterError("STORA_TOKEN is not configured", code="credentials_missing"))

    w.deliverer.process(batch(job(1), job(2)), Context())

    assert len(w.client.sent) == 1 and w.gate.pauses == [NOW + 60.0]


def test_target_keeps_sending_when_one_job_is_refused_for_its_own_content() -> None:
    answers = iter([PermanentDeliveryError("bad", status=422, code="invalid_content"), Delivered("b", 201)])
    w = make_world(lambda j: next(answers))

    w.deliverer.process(batch(job(1), job(2)), Context())

    assert len(w.client.sent) == 2 and w.gate.pauses == []


# --- throttling --------------------------------------------------------------------------------


def test_rest_of_the_batch_is_deferred_and_the_target_paused_when_the_provider_throttles() -> None:
    answers = iter(
        [Delivered("a", 201), RetryLaterError("too many", status=429, retry_after=30.0, throttled=True)]
    )
    w = make_world(lambda j: next(answers))
    jobs = [job(n) for n in range(1, 6)]
    response = w.deliverer.process(batch(*jobs), Context())
    assert failed_ids(response) == []
    assert w.client.sent == [jobs[0].key, jobs[1].key]  # no 429 storm: the other three were not sent
    assert w.gate.pauses == [NOW + 30.0]
    deferred = {j.key: (j, d) for j, d in w.queues.requeued}
    assert set(deferred) == {j.key for j in jobs[1:]}
    for n in (2, 3, 4):
        untouched, delay = deferred[jobs[n].key]
        assert untouched.attempts == 0 and untouched.throttled == 0
        assert 30.0 <= delay <= 31.0
    assert deferred[jobs[1].key][0].throttled == 1


def test_jobs_are_put_back_unsent_when_the_target_is_paused() -> None:
    w = make_world()
    w.gate.until = NOW + 20.0
    response = w.deliverer.process(batch(job(1), job(2)), Context())
    assert failed_ids(response) == [] and w.client.sent == []
    assert all(j.attempts == 0 and 20.0 <= d <= 21.0 for j, d in w.queues.requeued)


def test_pacer_allows_at_most_the_limit_in_any_window_when_sends_burst() -> None:
    clock = Clock(0.0)
    pacer = Pacer([(3, 1.0), (5, 10.0)], clock=clock)
    sent = []
    while len(sent) < 12:
        wait = pacer.reserve()
        if wait:
            clock.sleep(wait)
        else:
            sent.append(clock.now)
    for t in sent:
        assert sum(1 for s in sent if t - 1.0 < s <= t) <= 3
        assert sum(1 for s in sent if t - 10.0 < s <= t) <= 5


def test_rest_of_the_batch_is_deferred_when_pacing_needs_a_long_wait() -> None:
    pacer = Pacer([(2, 60.0)], clock=Clock(0.0))
    w = make_world(pacer=pacer, policy=RetryPolicy(max_pace_sleep=1.0))
    response = w.deliverer.process(batch(*[job(n) for n in range(1, 6)]), Context())
    assert failed_ids(response) == []
    assert len(w.client.sent) == 2
    assert len(w.queues.requeued) == 3 and all(j.attempts == 0 and d >= 59.0 for j, d in w.queues.requeued)


def test_rate_limits_pace_below_the_documented_limits_and_split_across_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("STORA_RATE_LIMITS", raising=False)
    monkeypatch.delenv("STORA_MAX_REQUESTS_PER_MINUTE", raising=False)
    monkeypatch.delenv("STORA_MAX_REQUESTS_PER_SECOND", raising=False)
    monkeypatch.delenv("DELIVERY_RATE_TIME_SCALE", raising=False)
    monkeypatch.delenv("DELIVERY_PACE_FRACTION", raising=False)
    monkeypatch.setenv("DELIVER_MAX_CONCURRENCY", "2")
    assert rate_limits("stora", Settings.from_environ().pacing) == ((4, 1.0), (24, 60.0))
    monkeypatch.setenv("DELIVER_MAX_CONCURRENCY", "1")
    monkeypatch.setenv("STORA_MAX_REQUESTS_PER_MINUTE", "600")
    monkeypatch.setenv("DELIVERY_RATE_TIME_SCALE", "0.1")
    assert rate_limits("stora", Settings.from_environ().pacing) == ((8, 0.1), (480, 6.0))


def test_hubspot_is_paced_under_the_lowest_documented_tier_when_no_limit_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HUBSPOT_RATE_LIMITS", "HUBSPOT_MAX_REQUESTS_PER_SECOND", "HUBSPOT_MAX_REQUESTS_PER_MINUTE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("DELIVERY_RATE_TIME_SCALE", "DELIVERY_PACE_FRACTION", "DELIVER_MAX_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    # Free/Starter private apps and OAuth public apps: 100 per 10 s, paced at 80 %.
    assert rate_limits("hubspot", Settings.from_environ().pacing) == ((80, 10.0),)
    monkeypatch.setenv("HUBSPOT_RATE_LIMITS", "190/10")  # Professional and Enterprise
    assert rate_limits("hubspot", Settings.from_environ().pacing) == ((152, 10.0),)
    monkeypatch.setenv("DELIVER_MAX_CONCURRENCY", "2")
    assert rate_limits("hubspot", Settings.from_environ().pacing) == ((76, 10.0),)


# --- permanent and unusable --------------------------------------------------------------------


def test_job_is_dead_lettered_at_once_with_the_reason_when_the_provider_refuses_it() -> None:
    failure = PermanentDeliveryError(
        "The request body content is not valid.",
        status=422,
        code="invalid_content",
        request_id="req-9",
        details=[{"pointer": "/contact/id", "message": "unknown contact"}],
    )
    w = make_world(lambda j: failure)
    response = w.deliverer.process(batch(job(1)), Context())
    assert failed_ids(response) == [] and not w.queues.requeued
    [dead] = w.queues.dead
    assert dead.dead_letter == {
        "reason": "permanent_failure",
        "stage": "deliver",
        "target": "stora",
        "category": "rejected",
        "status": 422,
        "provider_code": "invalid_content",
        "provider_message": "The request body content is not valid.",
        "request_id": "req-9",
        "details": [{"pointer": "/contact/id", "message": "unknown contact"}],
        "attempts": 1,
        "retries": 0,
        "throttled": 0,
        "redrives": 0,
        "first_failure_at": dead.first_failure_at,
        "last_failure_at": dead.last_failure_at,
        "mapping": "hubspot-deal-stage-to-stora",
        "mapping_file": "mappings/hubspot-deal-stage-to-stora.yaml",
        "idempotency_key": job(1).key,
        "dead_lettered_at": dead.dead_letter["dead_lettered_at"],
    }
    assert dead.body == job(1).body  # the original payload travels with the reason
    assert job(1).key not in w.records.items  # a redrive after a fix can deliver it


def test_job_is_dead_lettered_as_payload_mismatch_when_the_key_was_delivered_with_another_body() -> None:
    w = make_world()
    w.deliverer.process(batch(job(1)), Context())
    w.deliverer.process(batch(job(1, body={"description": "tampered"})), Context())
    [dead] = w.queues.dead
    assert dead.dead_letter and dead.dead_letter["reason"] == "payload_mismatch"
    assert w.client.sent == [job(1).key]


def test_job_is_dead_lettered_when_it_has_no_idempotency_key() -> None:
    w = make_world()
    w.deliverer.process(batch(job(1, key="")), Context())
    [dead] = w.queues.dead
    assert dead.dead_letter and dead.dead_letter["reason"] == "no_idempotency_key"
    assert w.client.sent == []


def test_unreadable_record_fails_back_to_sqs_when_it_is_not_a_job() -> None:
    w = make_world()
    records = [
        record("{not json", 1),
        record(json.dumps({"key": "x"}), 2),
        record(job(3), 3),
        record("[1]", 5),
    ]
    records.append(record(job(4, target="matter"), 4))
    response = w.deliverer.process(records, Context())
    assert failed_ids(response) == ["m-1", "m-2", "m-5", "m-4"]
    assert w.client.sent == [job(3).key]


# --- timing ------------------------------------------------------------------------------------


def test_job_is_put_back_without_an_attempt_when_it_arrives_before_not_before() -> None:
    w = make_world()
    early = job(1, not_before="2027-01-15T08:00:10.000Z")
    w.clock.now = parse_iso("2027-01-15T08:00:00.000Z") or 0.0
    response = w.deliverer.process(batch(early), Context())
    assert failed_ids(response) == [] and w.client.sent == []
    [(again, delay)] = w.queues.requeued
    assert again.attempts == 0 and delay == pytest.approx(10.0)


def test_job_is_held_by_visibility_when_its_wait_is_longer_than_the_sqs_delay_limit() -> None:
    w = make_world()
    w.clock.now = parse_iso("2027-01-15T00:00:00.000Z") or 0.0
    response = w.deliverer.process(batch(job(1, not_before="2027-01-15T05:00:00.000Z")), Context())
    assert failed_ids(response) == ["m-1"]  # held: Lambda must not delete it
    assert w.queues.held == [("rh-1", pytest.approx(5 * 3600.0))]
    assert not w.queues.requeued and w.client.sent == []


def test_unsent_jobs_fail_back_to_sqs_when_the_remaining_time_is_below_the_margin() -> None:
    w = make_world(policy=RetryPolicy(time_margin=5.0))
    context = Context(remaining_ms=30_000)
    sent_before_cutoff = []

    def answer(j: DeliveryJob) -> Outcome:
        sent_before_cutoff.append(j.key)
        context.remaining_ms -= 10_000  # each send is slow
        return Delivered("x", 201)

    w.client.answer = answer
    jobs = [job(n) for n in range(1, 6)]
    response = w.deliverer.process(batch(*jobs), context)
    assert len(sent_before_cutoff) == 3
    assert failed_ids(response) == ["m-4", "m-5"]
    assert not w.queues.requeued and not w.queues.dead


def test_job_is_deferred_when_another_worker_holds_its_claim() -> None:
    w = make_world()
    w.records.claim(w.records.data(job(1)), remaining_ms=40_000)
    response = w.deliverer.process(batch(job(1)), Context())
    assert failed_ids(response) == [] and w.client.sent == []
    [(again, delay)] = w.queues.requeued
    assert again.attempts == 0 and 10.0 <= delay <= 11.0  # looked at again before the claim expires


def test_nothing_is_sent_when_the_delivered_record_store_is_down() -> None:
    w = make_world()
    w.records.fail_with = RuntimeError("ProvisionedThroughputExceededException")
    response = w.deliverer.process(batch(job(1), job(2)), Context())
    assert failed_ids(response) == ["m-1", "m-2"]
    assert w.client.sent == []


def test_claims_are_released_and_records_failed_when_the_client_raises() -> None:
    def boom(j: DeliveryJob) -> Outcome:
        raise RuntimeError("client bug")

    w = make_world(boom)
    response = w.deliverer.process(batch(job(1), job(2)), Context())
    assert failed_ids(response) == ["m-1", "m-2"]
    assert w.records.items == {}


def test_record_is_failed_back_to_sqs_when_its_retry_copy_cannot_be_enqueued() -> None:
    w = make_world(lambda j: RetryLaterError("down", status=503))
    w.queues.fail_requeue = True
    response = w.deliverer.process(batch(job(1), job(2)), Context())
    assert failed_ids(response) == ["m-1", "m-2"]  # redelivered as they were: nothing lost


def test_record_is_failed_back_to_sqs_when_its_dead_letter_cannot_be_sent() -> None:
    w = make_world(lambda j: PermanentDeliveryError("refused", status=422, code="invalid_content"))
    w.queues.fail_dead_letter = True
    response = w.deliverer.process(batch(job(1), job(2)), Context())
    assert failed_ids(response) == ["m-1", "m-2"]  # redelivered as they were: nothing lost
    assert w.queues.dead == []


def test_dead_letters_of_a_batch_are_sent_together_when_several_jobs_are_refused() -> None:
    w = make_world(lambda j: PermanentDeliveryError("refused", status=422, code="invalid_content"))
    response = w.deliverer.process(batch(*(job(n) for n in range(1, 13))), Context())
    assert failed_ids(response) == []
    assert [d.key for d in w.queues.dead] == [job(n).key for n in range(1, 13)]


def test_jobs_of_one_request_are_recorded_in_one_write_when_the_client_batches() -> None:
    w = make_world(target="hubspot", max_batch_size=100)
    jobs = [job(n, target="hubspot") for n in range(1, 251)]
    w.deliverer.process(batch(*jobs), Context())
    assert w.records.writes == [100, 100, 50]
    assert {i["status"] for i in w.records.items.values()} == {"COMPLETED"}
