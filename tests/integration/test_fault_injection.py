"""The proof: events from every source, routed and delivered to all four targets (the sandboxes,
over loopback) while faults are injected. Each scenario prints

    <scenario>: sent=N delivered=D dead_lettered=L duplicates=0 lost=0

counted in jobs from the providers' stores and the DLQs (never from the bridge's logs), and must
end with nothing lost and nothing duplicated.

The first scenario is the whole proof in one run: FAULT_SUITE_EVENTS source events (default
1,000; 1,500 jobs) from all four sources to all four targets, with every fault at once. The others
take one fault at a time, FAULT_SUITE_SCENARIO_EVENTS events each.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from delivery_harness import (
    BATCH_SIZE,
    JUNK,
    CrashingClient,
    Fault,
    Pipeline,
    Tally,
    crash_to_batch_failure,
    dead_letters,
    enqueue_malformed,
    envelopes,
    fast_moto,
    scale_sandboxes,
    set_max_receives,
    set_scaled_env,
    spread_faults,
    tally,
)
from timeline_bridge import TARGETS
from timeline_bridge.targets import client_for
from timeline_bridge.wiring import Dependencies

EVENTS = int(os.environ.get("FAULT_SUITE_EVENTS", "1000"))  # the run with every fault at once
SCENARIO_EVENTS = int(os.environ.get("FAULT_SUITE_SCENARIO_EVENTS", "200"))  # each one-fault scenario
TOTALS: list[Tally] = []


@pytest.fixture(autouse=True)
def scaled_world(aws: Any, sandboxes: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Scaled time on both sides, moto made cheap, info logs and metric lines off (thousands)."""
    from timeline_bridge.observability import logger

    fast_moto(monkeypatch)
    set_scaled_env(monkeypatch)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    scale_sandboxes(sandboxes)
    monkeypatch.setitem(BATCH_SIZE, "hubspot", 25)  # keeps one batch well inside the function timeout
    level = logger.log_level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)


@pytest.fixture(scope="module", autouse=True)
def suite_total() -> Iterator[None]:
    yield
    if TOTALS:
        sent = sum(t.sent for t in TOTALS)
        delivered = sum(t.delivered for t in TOTALS)
        dead = sum(t.dead_lettered for t in TOTALS)
        print(
            f"\nfault suite: {len(TOTALS)} scenarios, sent={sent} delivered={delivered} dead_lettered={dead}"
        )


def report(result: Tally, capsys: pytest.CaptureFixture[str]) -> None:
    TOTALS.append(result)
    with capsys.disabled():
        print(f"\n{result.line()}")
    assert result.lost == 0, result
    assert result.duplicates == 0, result
    assert result.in_both == 0, result
    assert result.unexpected == 0, result


def run(
    name: str,
    aws: Any,
    sandboxes: dict[str, Any],
    *,
    events: int = SCENARIO_EVENTS,
    timeout: float = 90.0,
    **pipeline: Any,
) -> tuple[Pipeline, dict[str, str]]:
    p = Pipeline(aws, **pipeline)
    batch = envelopes(events, name)
    expected = p.expected_jobs(batch)
    assert set(expected.values()) == set(TARGETS)
    p.send(batch)
    p.run(timeout=timeout)
    return p, expected


def answered(sandbox: Any, status: int) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests if r["status"] == status]


def unreadable(aws: Any, target: str, jobs: dict[str, str]) -> list[dict[str, Any]]:
    """The dead letters of `target` that are none of `jobs` (the malformed messages)."""
    return [b for b in dead_letters(aws.sqs, aws.queues[f"{target}-dlq"]) if b.get("key") not in jobs]


# --- scenarios ----------------------------------------------------------------------------------


# The provider's own 429 (Stora: RateLimit-Reset, no Retry-After; HubSpot: its rate-limit headers
# and policy; Matter: Retry-After and retry_after in the problem; Applied: Retry-After).
THROTTLE: dict[str, dict[str, Any]] = {
    "stora": {},
    "hubspot": {},
    "matter": {"retry_after": 1},
    "applied": {},
}
FAULT_KINDS = ("rate_limit", "server_error", "slow", "drop_connection", "lose_response")


def every_fault(target: str) -> list[Fault]:
    """Every fault kind twice for one provider, in the order they hit it, a 429 storm among them."""
    status = {"status": 500 if target == "stora" else 503}
    slow = {"delay": 0.6}  # the read timeout is 0.4 s: the answer comes too late
    return [
        ("rate_limit", 1, THROTTLE[target]),
        ("server_error", 3, status),
        ("slow", 2, slow),
        ("drop_connection", 2, {}),
        ("lose_response", 2, {}),
        ("rate_limit", 2, THROTTLE[target]),  # a storm: the next answers are 429s too
        ("server_error", 2, status),
        ("slow", 1, slow),
        ("drop_connection", 1, {}),
        ("lose_response", 3, {}),
    ]


def test_nothing_is_lost_or_duplicated_when_every_fault_hits_one_run_of_a_thousand_events(
    aws, sandboxes, capsys, monkeypatch, tmp_path
):
    from timeline_bridge_tools.cli import main

    name = f"all_faults ({EVENTS} events)"
    deps = Dependencies.from_environ()
    pipeline_clients = {
        t: CrashingClient(client_for(t, deps.settings, deps.secrets), every=n)
        for t, n in {"stora": 97, "hubspot": 13, "matter": 149, "applied": 61}.items()
    }
    pipeline = Pipeline(aws, clients=pipeline_clients, wrap=crash_to_batch_failure)
    batch = envelopes(EVENTS, "all-faults")
    assert {e.source for e in batch} == {"hubspot", "slack", "pipedrive", "generic"}
    expected = pipeline.expected_jobs(batch)
    per_target = Counter(expected.values())
    assert set(per_target) == set(TARGETS)
    for target in TARGETS:
        requests = per_target[target] // (25 if target == "hubspot" else 1)
        spread_faults(sandboxes[target], every_fault(target), requests)
    set_max_receives(aws, 4)  # the crash safety net, tighter: the junk reaches the DLQs during the run
    rejected = enqueue_malformed(aws)

    pipeline.send(batch)
    pipeline.run(timeout=300)
    result = tally(name, {**expected, **rejected}, sandboxes, aws)
    if result.reasons.get("max_receives"):
        # A batch that kept failing (killed, or past its time, again and again) went to the DLQ by
        # maxReceiveCount, the safety net; redriving it is safe: what was delivered is not sent
        # again.
        monkeypatch.chdir(tmp_path)
        for client in pipeline_clients.values():
            client.every = 10**9
        assert main(["dlq", "redrive"]) == 0
        pipeline.run(timeout=120)
        result = tally(name, {**expected, **rejected}, sandboxes, aws)
    report(result, capsys)

    assert result.sent == len(expected) + len(rejected) >= EVENTS
    assert result.delivered == len(expected)
    assert result.dead_lettered == len(rejected)
    assert result.reasons == {"permanent_failure": len(rejected)}
    for target in TARGETS:  # every fault happened to every provider, during the run
        sandbox = sandboxes[target]
        assert sandbox.pending_faults() == 0, target
        met = Counter(r["fault"] for r in sandbox.requests if r["fault"])
        assert set(met) == set(FAULT_KINDS), (target, met)
        assert pipeline_clients[target].crashes > 0, target
        assert len(unreadable(aws, target, {**expected, **rejected})) == len(JUNK), target


def test_pacing_keeps_every_target_under_its_rate_limit_when_nothing_fails(aws, sandboxes, capsys):
    _, expected = run("paced", aws, sandboxes)
    result = tally("paced", expected, sandboxes, aws)
    report(result, capsys)
    assert result.delivered == result.sent
    for name in TARGETS:
        assert answered(sandboxes[name], 429) == [], f"{name} throttled a paced worker"


def test_a_429_storm_pauses_each_target_for_its_signalled_time_without_burning_retries(
    aws, sandboxes, capsys
):
    storms = {"stora": 3, "hubspot": 5, "matter": 3, "applied": 3}
    sandboxes["matter"].inject("rate_limit", storms["matter"], retry_after=1)
    for name in ("stora", "hubspot", "applied"):
        sandboxes[name].inject("rate_limit", storms[name])
    _, expected = run("throttled", aws, sandboxes)
    result = tally("throttled", expected, sandboxes, aws)
    report(result, capsys)
    assert result.delivered == result.sent  # throttling never dead-letters: the budget is untouched
    for name in TARGETS:
        sandbox = sandboxes[name]
        throttled = answered(sandbox, 429)
        assert len(throttled) == storms[name]
        # No storm: while a target is paused nothing but requests already in flight reach it. The
        # pause starts when the 429 is back at the worker, a moment after the sandbox logged it.
        for answer in throttled:
            pause = 1.0 if name in ("stora", "matter", "applied") else 0.1
            start, end = answer["at"] + 0.2 * pause, answer["at"] + 0.8 * pause
            during = [r for r in sandbox.requests if start < r["at"] < end]
            assert len(during) <= 1, (
                name,
                answer["at"],
                [
                    (r["at"], r["status"], r["headers"].get("idempotency-key"))
                    for r in sandbox.requests
                    if abs(r["at"] - answer["at"]) < 1.5
                ],
            )


def test_a_5xx_burst_is_retried_with_backoff_until_delivered(aws, sandboxes, capsys):
    for name in TARGETS:
        sandboxes[name].inject("server_error", 8, status=503 if name != "stora" else 500)
    _, expected = run("5xx_burst", aws, sandboxes)
    result = tally("5xx_burst", expected, sandboxes, aws)
    report(result, capsys)
    assert result.delivered == result.sent
    # Stora replays a stored 5xx under its key: the retries went out under a new key generation.
    keys = [r["headers"].get("idempotency-key", "") for r in sandboxes["stora"].requests]
    assert any(k.endswith("-r1") for k in keys)


def test_timeouts_are_retried_under_the_same_key_and_stored_once(aws, sandboxes, capsys):
    for name in TARGETS:
        sandboxes[name].inject("slow", 4, delay=0.6)  # the read timeout is 0.4 s: the answer comes too late
    _, expected = run("timeouts", aws, sandboxes)
    result = tally("timeouts", expected, sandboxes, aws)
    report(result, capsys)
    assert result.delivered == result.sent


def test_dropped_connections_are_retried_until_delivered(aws, sandboxes, capsys):
    for name in TARGETS:
        sandboxes[name].inject("drop_connection", 6)
    _, expected = run("dropped_connections", aws, sandboxes)
    result = tally("dropped_connections", expected, sandboxes, aws)
    report(result, capsys)
    assert result.delivered == result.sent


def test_answers_lost_after_the_provider_stored_the_event_do_not_duplicate_it(aws, sandboxes, capsys):
    for name in TARGETS:
        sandboxes[name].inject("lose_response", 6)
    _, expected = run("lost_answers", aws, sandboxes)
    result = tally("lost_answers", expected, sandboxes, aws)
    report(result, capsys)
    assert result.delivered == result.sent
    for name in TARGETS:
        assert sum(1 for r in sandboxes[name].requests if r["fault"] == "lose_response") == 6, name


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    aws, sandboxes, capsys, monkeypatch, tmp_path
):
    from timeline_bridge_tools.cli import main

    every = {"stora": 12, "hubspot": 2, "matter": 12, "applied": 12}  # HubSpot sends batches of 25
    deps = Dependencies.from_environ()
    clients = {t: CrashingClient(client_for(t, deps.settings, deps.secrets), every=every[t]) for t in TARGETS}
    pipeline, expected = run(
        "worker_crash",
        aws,
        sandboxes,
        clients=clients,
        wrap=crash_to_batch_failure,
    )
    assert all(c.crashes > 0 for c in clients.values())
    first = tally("worker_crash", expected, sandboxes, aws)
    assert first.lost == 0 and first.duplicates == 0
    if first.dead_lettered or first.in_both:
        # A batch that keeps crashing reaches maxReceiveCount and SQS moves it to the DLQ (the
        # safety net). Redriving it is safe: what was already delivered is not sent again.
        assert set(first.reasons) == {"max_receives"}
        monkeypatch.chdir(tmp_path)
        for client in clients.values():
            client.every = 10**9  # the fault is gone
        assert main(["dlq", "redrive"]) == 0
        pipeline.run(timeout=90)
    result = tally("worker_crash", expected, sandboxes, aws)
    report(result, capsys)
    assert result.delivered == result.sent


def test_malformed_jobs_end_in_the_dlq_without_holding_up_the_rest(aws, sandboxes, capsys):
    set_max_receives(aws, 2)  # the crash safety net, tight: the junk reaches the DLQs soon
    rejected = enqueue_malformed(aws)
    _, expected = run("malformed_jobs", aws, sandboxes)
    result = tally("malformed_jobs", {**expected, **rejected}, sandboxes, aws)
    report(result, capsys)
    assert result.delivered == len(expected)
    assert result.dead_lettered == len(rejected)
    assert result.reasons == {"permanent_failure": len(rejected)}
    for target in TARGETS:
        assert len(unreadable(aws, target, {**expected, **rejected})) == len(JUNK), target


def test_an_outage_longer_than_the_retry_budget_dead_letters_then_redrive_delivers_all(
    aws, sandboxes, capsys, monkeypatch, tmp_path
):
    from timeline_bridge_tools.cli import main

    monkeypatch.setenv("DELIVERY_MAX_ATTEMPTS", "3")
    for name in TARGETS:
        sandboxes[name].inject("server_error", 100_000, status=503)
    pipeline, expected = run("outage", aws, sandboxes)
    during = tally("outage", expected, sandboxes, aws)
    assert during.delivered == 0 and during.lost == 0
    assert during.dead_lettered == during.sent and during.reasons == {"retries_exhausted": during.sent}
    for name in TARGETS:  # the provider is back (it stored nothing while down)
        assert sandboxes[name].events() == []
        sandboxes[name].reset()
    scale_sandboxes(sandboxes)

    monkeypatch.chdir(tmp_path)  # no running `bridge dev` here: the queues come from the environment
    capsys.readouterr()
    assert main(["dlq", "redrive"]) == 0
    out = capsys.readouterr().out
    assert f"total: moved {during.sent}, failed 0" in out
    pipeline.run(timeout=90)
    result = tally("outage+redrive", expected, sandboxes, aws)
    report(result, capsys)
    assert result.delivered == result.sent
    assert result.dead_lettered == 0
