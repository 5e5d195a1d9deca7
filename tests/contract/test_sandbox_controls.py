"""The sandboxes' own machinery: control routes for the console and other processes, reset,
time-scaled rate-limit windows, concurrent requests under one idempotency key, and the runner."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from timeline_bridge.targets.base import Delivered
from timeline_bridge.targets.stora import EVENTS_PATH
from timeline_bridge_tools.sandboxes import DEFAULT_TOKENS, SANDBOX_CLASSES


def test_stored_events_and_redacted_requests_served_when_console_asks(stora, stora_client, make_job):
    [outcome] = stora_client.send([make_job("stora")])
    events = requests.get(stora.url + "/_sandbox/events", timeout=5).json()
    assert events["provider"] == "stora"
    assert [e["id"] for e in events["events"]] == [outcome.provider_id]
    [logged] = requests.get(stora.url + "/_sandbox/requests", timeout=5).json()["requests"]
    assert logged["headers"]["authorization"] == "***"
    assert logged["status"] == 201


def test_fault_queued_and_state_cleared_when_controlled_over_http(matter, matter_client, make_job):
    answer = requests.post(
        matter.url + "/_sandbox/faults", json={"kind": "server_error", "count": 2}, timeout=5
    )
    assert answer.json()["pending_faults"] == 2
    assert (
        requests.post(matter.url + "/_sandbox/faults", json={"kind": "meteor"}, timeout=5).status_code == 400
    )
    job = make_job("matter")
    assert [type(matter_client.send([job])[0]).__name__ for _ in range(3)] == [
        "RetryLaterError",
        "RetryLaterError",
        "Delivered",
    ]
    requests.post(matter.url + "/_sandbox/reset", timeout=5)
    assert matter.events() == [] and matter.requests == [] and matter.pending_faults() == 0


def test_fault_and_reset_posts_refused_with_403_when_origin_is_another_site(stora, stora_client, make_job):
    stora_client.send([make_job("stora")])
    foreign = {"Origin": "http://evil.example"}
    faults = requests.post(
        stora.url + "/_sandbox/faults", json={"kind": "server_error"}, headers=foreign, timeout=5
    )
    reset = requests.post(stora.url + "/_sandbox/reset", headers=foreign, timeout=5)
    other_port = {"Origin": f"http://127.0.0.1:{stora.port + 1}"}
    assert (faults.status_code, reset.status_code) == (403, 403)
    assert "cross-origin" in faults.json()["message"]
    assert requests.post(stora.url + "/_sandbox/reset", headers=other_port, timeout=5).status_code == 403
    assert stora.pending_faults() == 0 and len(stora.events()) == 1


def test_sandbox_refuses_with_421_when_host_is_not_loopback_as_after_dns_rebinding(
    stora, stora_client, make_job
):
    stora_client.send([make_job("stora")])
    rebound = {"Host": f"evil.example:{stora.port}", "Origin": f"http://evil.example:{stora.port}"}
    for method, path in (
        ("GET", "/_sandbox/events"),
        ("GET", "/_sandbox/requests"),
        ("POST", "/_sandbox/reset"),
    ):
        answer = requests.request(method, stora.url + path, headers=rebound, timeout=5)
        assert answer.status_code == 421, path
        assert f"http://127.0.0.1:{stora.port}" in answer.json()["message"]
    api = requests.get(f"{stora.url}{EVENTS_PATH}/any", headers=rebound, timeout=5)
    assert api.status_code == 421  # the provider's API too: it serves what it stored
    wrong_port = {"Host": f"127.0.0.1:{stora.port + 1}"}
    assert requests.get(stora.url + "/_sandbox/events", headers=wrong_port, timeout=5).status_code == 421
    assert len(stora.events()) == 1


def test_sandbox_controls_answer_when_called_from_a_loopback_origin_of_its_port(stora):
    for name in ("127.0.0.1", "localhost", "[::1]"):
        headers = {"Host": f"{name}:{stora.port}", "Origin": f"http://{name}:{stora.port}"}
        answer = requests.post(
            stora.url + "/_sandbox/faults", json={"kind": "pass"}, headers=headers, timeout=5
        )
        assert answer.status_code == 200, name
    assert stora.pending_faults() == 3


def test_key_forgotten_when_sandbox_is_reset(stora, stora_client, make_job):
    job = make_job("stora")
    stora_client.send([job])
    stora.reset()
    stora_client.send([job])
    assert len(stora.events()) == 1 and len(stora.requests) == 1


def test_a_fault_queued_after_a_pass_hits_a_later_request_when_faults_are_spaced(
    matter, matter_client, make_job
):
    matter.inject("pass", 2)
    matter.inject("server_error", 1, status=503)
    outcomes = [type(matter_client.send([make_job("matter")])[0]).__name__ for _ in range(4)]
    assert outcomes == ["Delivered", "Delivered", "RetryLaterError", "Delivered"]
    assert [r["fault"] for r in matter.requests] == [None, None, "server_error", None]


def test_unknown_fault_refused_when_injected(stora):
    with pytest.raises(ValueError, match="unknown fault"):
        stora.inject("meteor")


def test_window_scaled_when_time_scale_shrinks_it(stora, make_job):
    stora.set_rate_limits([(2, 1.0)], time_scale=0.2)  # two requests per 200 ms
    headers = {"Authorization": f"Bearer {DEFAULT_TOKENS['stora']}", "Content-Type": "application/json"}
    body = json.dumps(make_job("stora").body)

    def post() -> int:
        return requests.post(stora.url + EVENTS_PATH, data=body, headers=headers, timeout=5).status_code

    # Start right after a window boundary so the three requests share one window.
    time.sleep(0.2 - (time.time() % 0.2) + 0.01)
    assert [post(), post(), post()] == [201, 201, 429]
    time.sleep(0.25)
    assert post() == 201


def test_one_event_when_same_key_arrives_twice_at_once(stora, make_job):
    stora.inject("slow", delay=0.3)
    headers = {
        "Authorization": f"Bearer {DEFAULT_TOKENS['stora']}",
        "Content-Type": "application/json",
        "Idempotency-Key": "concurrent-key",
    }
    body = make_job("stora").body
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(
                lambda _: requests.post(stora.url + EVENTS_PATH, json=body, headers=headers, timeout=5),
                range(2),
            )
        )
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].content == answers[1].content
    assert len(stora.events()) == 1


def test_runner_serves_every_sandbox_and_prints_its_environment_when_started():
    runner = subprocess.Popen(
        [sys.executable, "-m", "timeline_bridge_tools.sandboxes", "--no-rate-limits"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert runner.stdout is not None
        env = {}
        while len([k for k in env if k.endswith("_BASE_URL")]) < len(SANDBOX_CLASSES):
            line = runner.stdout.readline()
            assert line, "the runner exited before printing its environment"
            key, _, value = line.strip().partition("=")
            env[key] = value
        assert env["STORA_TOKEN"] == DEFAULT_TOKENS["stora"]
        answer = requests.get(env["STORA_BASE_URL"] + "/_sandbox/events", timeout=5)
        assert answer.json() == {"provider": "stora", "events": []}
    finally:
        runner.terminate()
        runner.wait(10)


def test_sandbox_usable_as_context_manager_when_started_inline():
    from timeline_bridge_tools.sandboxes import AppliedSandbox

    with AppliedSandbox() as applied:
        url = applied.url
        assert requests.get(url + "/_sandbox/", timeout=5).json()["provider"] == "applied"
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/_sandbox/", timeout=1)


def test_delivered_through_client_when_sandbox_has_documented_limits(
    client_from_environ, sandboxes, make_job
):
    from timeline_bridge.targets.stora import StoraClient

    # The shared fixture keeps each provider's documented limits: a few quick jobs fit Stora's 10/s.
    outcomes = [client_from_environ(StoraClient).send([make_job("stora")])[0] for _ in range(3)]
    assert all(isinstance(o, Delivered) for o in outcomes)
