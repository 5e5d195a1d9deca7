"""`bridge dev` in-process: a signed sample goes through the real handlers, moto and the pollers to
the provider sandboxes; refusals show on the console; a second start begins from nothing."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from timeline_bridge_tools import signing
from timeline_bridge_tools.local.runtime import LocalRuntime
from timeline_bridge_tools.local.state import read_state

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "events" / "hubspot" / "deal-stage-change.json"
# Settings a developer's shell may hold; `bridge send` must sign with the runtime's own secrets.
SHELL_SETTINGS = (
    "HUBSPOT_CLIENT_SECRET",
    "SLACK_SIGNING_SECRET",
    "PIPEDRIVE_BASIC_AUTH",
    "SALESFORCE_WEBHOOK_TOKEN",
    "SALESFORCE_ORGANIZATION_IDS",
    "GENERIC_WEBHOOK_SECRET",
)


def sample_deal_id() -> str:
    body = json.loads(json.loads(SAMPLE.read_text())["body"])
    return str(body[0]["objectId"])


def bridge_send(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `bridge send` as a user would, from a folder whose `.bridge/` names the runtime."""
    env = {
        k: v for k, v in os.environ.items() if k not in SHELL_SETTINGS and not k.startswith("HUBSPOT_WEBHOOK")
    }
    return subprocess.run(
        [sys.executable, "-m", "timeline_bridge_tools.cli", "send", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_for(condition: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return bool(condition())


def stored_with(runtime: LocalRuntime, target: str, text: str) -> list[dict[str, Any]]:
    return [e for e in runtime.sandboxes[target].events() if text in json.dumps(e)]


def test_sample_lands_in_stora_hubspot_and_matter_within_2s_when_sent_with_bridge_send(
    local_runtime: LocalRuntime, tmp_path: Path
) -> None:
    sent = bridge_send(tmp_path, "hubspot", str(SAMPLE))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert sent.stdout.startswith("200 ")
    accepted = time.monotonic()

    deal = sample_deal_id()
    targets = ("stora", "hubspot", "matter")
    arrived = wait_for(lambda: all(stored_with(local_runtime, t, deal) for t in targets), timeout=2.0)
    elapsed = time.monotonic() - accepted

    state = local_runtime.console_state()
    assert arrived, f"not all of {targets} got the event within 2 s; jobs: {state['jobs']}"
    assert elapsed < 2.0
    webhook = state["webhooks"][0]
    assert (webhook["source"], webhook["status"], webhook["outcome"]) == ("hubspot", 200, "accepted")
    assert {j["target"] for j in webhook["jobs"]} >= set(targets)


def test_bridge_send_signs_the_url_the_emulator_rebuilds_when_url_names_the_host_another_way(
    local_runtime: LocalRuntime, tmp_path: Path
) -> None:
    url = f"http://LocalHost:{local_runtime.port}/hubspot"
    sent = bridge_send(tmp_path, "hubspot", str(SAMPLE), "--url", url)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert sent.stdout.startswith("200 ")


def test_bridge_send_finds_the_runtime_through_dev_json_when_no_url_is_given(
    local_runtime: LocalRuntime, tmp_path: Path
) -> None:
    state = read_state(tmp_path)
    assert state is not None
    assert state["url"] == local_runtime.url
    assert state["pid"] == os.getpid()
    assert set(state["webhook_urls"]) == {"hubspot", "slack", "pipedrive", "salesforce", "generic"}
    assert state["env"]["EVENTS_QUEUE_URL"].startswith(local_runtime.aws_endpoint_url)
    assert {f"{t.upper()}_DLQ_URL" for t in ("stora", "hubspot", "matter", "applied")} <= set(state["env"])
    targets = ("stora", "hubspot", "matter", "applied")
    assert {t: state["sandboxes"][t]["real"] for t in targets} == dict.fromkeys(targets, False)


def test_each_function_gets_its_own_template_environment_when_loaded(local_runtime: LocalRuntime) -> None:
    functions = local_runtime.functions
    deliver = {fn.env["TARGET"]: fn for fn in functions.values() if fn.kind == "deliver"}
    assert set(deliver) == {"stora", "hubspot", "matter", "applied"}
    for target, fn in deliver.items():
        assert fn.env[f"{target.upper()}_BASE_URL"] == local_runtime.sandboxes[target].url
        assert fn.env[f"{target.upper()}_QUEUE_URL"] in local_runtime.queue_urls.values()
    hubspot = functions["HubspotWebhookFunction"].env
    assert hubspot["HUBSPOT_CLIENT_SECRET"] == local_runtime.secret_values["HUBSPOT_CLIENT_SECRET"]
    assert "SLACK_SIGNING_SECRET" not in hubspot  # each webhook function holds only its own secret
    route = functions["RouteFunction"].env
    assert Path(route["BRIDGE_MAPPINGS_DIR"]) == ROOT / "mappings"  # /opt/mappings of the layer
    assert route["SLACK_API_BASE_URL"] == local_runtime.sandboxes["slack"].url
    assert "TARGET" not in os.environ  # each stage has its own settings; the process has none


def test_other_functions_keep_going_when_one_deliverer_waits_on_a_slow_provider(
    local_runtime: LocalRuntime, tmp_path: Path
) -> None:
    local_runtime.sandboxes["stora"].inject("slow", 1, delay=6.0)  # the next Stora request
    assert bridge_send(tmp_path, "hubspot", str(SAMPLE)).returncode == 0
    accepted = time.monotonic()
    deal = sample_deal_id()

    # HubSpot and Matter get the event while the Stora deliverer still waits for its answer...
    assert wait_for(lambda: all(stored_with(local_runtime, t, deal) for t in ("hubspot", "matter")), 4.0)
    # ...and a webhook is verified, claimed and answered meanwhile.
    answered = bridge_send(
        tmp_path, "pipedrive", str(ROOT / "events" / "pipedrive" / "deal-stage-change-v2.json")
    )
    assert answered.returncode == 0 and answered.stdout.startswith("200 ")
    assert not stored_with(local_runtime, "stora", deal) and time.monotonic() - accepted < 6.0
    assert wait_for(lambda: stored_with(local_runtime, "stora", deal), timeout=15.0)


def test_bad_signature_gets_401_and_shows_as_rejected_when_signed_with_another_secret(
    local_runtime: LocalRuntime,
) -> None:
    event = json.loads(SAMPLE.read_text())
    body = signing.body_bytes(event)
    url = local_runtime.webhook_urls["hubspot"]
    headers = signing.sign_request("hubspot", body, "not-the-configured-secret", url=url)

    answer = requests.post(
        url, data=body, headers={"content-type": "application/json", **headers}, timeout=10
    )

    assert answer.status_code == 401
    state = requests.get(f"{local_runtime.url}/_console/state.json", timeout=10).json()
    webhook = state["webhooks"][0]
    assert (webhook["status"], webhook["outcome"]) == (401, "rejected")
    assert "signature" in webhook["reason"]
    assert webhook["events"] == []
    page = requests.get(f"{local_runtime.url}/", timeout=10).text
    assert "rejected" in page


def test_console_names_a_paused_target_when_a_deliverer_pauses_it(local_runtime: LocalRuntime) -> None:
    from timeline_bridge.delivery import ThrottleGate

    assert local_runtime.console_state()["paused"] == {}
    ThrottleGate(local_runtime.table_name, "stora", dynamodb=local_runtime.aws("dynamodb")).pause(
        time.time() + 30, reason="401 invalid_token"
    )

    paused = local_runtime.console_state()["paused"]
    assert list(paused) == ["stora"] and paused["stora"]["reason"] == "401 invalid_token"
    page = requests.get(local_runtime.url + "/", timeout=5).text
    assert 'id="paused"' in page and "401 invalid_token" in page


def console_token(runtime: LocalRuntime) -> str:
    """The per-run token the console page embeds in its forms."""
    page = requests.get(f"{runtime.url}/", timeout=10).text
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
    assert found, "the console page carries no token"
    return found.group(1)


def test_console_refuses_with_421_when_host_is_not_loopback_as_after_dns_rebinding(
    local_runtime: LocalRuntime,
) -> None:
    port = local_runtime.port
    rebound = {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"}
    for method, path in (
        ("GET", "/"),
        ("GET", "/_console/state.json"),
        ("POST", "/_console/redrive?target=matter"),
    ):
        answer = requests.request(method, local_runtime.url + path, headers=rebound, timeout=10)
        assert answer.status_code == 421, path
        assert f"http://127.0.0.1:{port}" in answer.json()["message"]
        assert local_runtime.console_token not in answer.text
    wrong_port = {"Host": f"localhost:{port + 1}"}
    assert requests.get(local_runtime.url + "/", headers=wrong_port, timeout=10).status_code == 421
    for name in ("127.0.0.1", "localhost", "[::1]"):
        here = {"Host": f"{name}:{port}"}
        assert requests.get(local_runtime.url + "/_console/state.json", headers=here, timeout=10).ok, name


def test_console_redrive_refused_with_403_when_the_page_token_is_missing_wrong_or_cross_origin(
    local_runtime: LocalRuntime,
) -> None:
    url = f"{local_runtime.url}/_console/redrive?target=matter"
    token = console_token(local_runtime)
    json_answer = {"accept": "application/json"}

    missing = requests.post(url, data={"redrive": "matter"}, headers=json_answer, timeout=10)
    wrong = requests.post(url, data={"csrf_token": token[:-1] + "x"}, headers=json_answer, timeout=10)
    foreign = requests.post(
        url, data={"csrf_token": token}, headers={**json_answer, "Origin": "http://evil.example"}, timeout=10
    )
    assert (missing.status_code, wrong.status_code, foreign.status_code) == (403, 403, 403)
    assert "token" in missing.json()["message"]

    own = {**json_answer, "Origin": local_runtime.url}
    form = requests.post(url, data={"csrf_token": token, "redrive": "matter"}, headers=own, timeout=10)
    header = requests.post(url, headers={**json_answer, "X-CSRF-Token": token}, timeout=10)
    assert (form.status_code, header.status_code) == (200, 200)
    assert form.json() == {"target": "matter", "redriven": 0}


def test_webhook_urls_answer_any_host_when_reached_through_a_tunnel(local_runtime: LocalRuntime) -> None:
    # A tunnel forwards the sender's Host: HubSpot signed the tunnel's URL, which the emulator rebuilds.
    body = signing.body_bytes(json.loads(SAMPLE.read_text()))
    secret = local_runtime.secret_values["HUBSPOT_CLIENT_SECRET"]
    headers = signing.sign_request("hubspot", body, secret, url="http://tunnel.example/hubspot")
    answer = requests.post(
        local_runtime.webhook_urls["hubspot"],
        data=body,
        headers={"content-type": "application/json", "Host": "tunnel.example", **headers},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_body_over_lambdas_6mb_gets_413_when_posted_to_a_webhook_url(local_runtime: LocalRuntime) -> None:
    answer = requests.post(
        local_runtime.webhook_urls["hubspot"],
        data=b"[" + b" " * (6 * 1024 * 1024) + b"]",
        headers={"content-type": "application/json"},
        timeout=30,
    )

    assert answer.status_code == 413
    assert local_runtime.console_state()["webhooks"] == []  # the function never ran


def test_second_start_is_clean_when_the_first_runtime_stopped(tmp_path: Path) -> None:
    deal = sample_deal_id()
    first = LocalRuntime(ROOT, port=0, state_dir=tmp_path, environ={}, log_level="WARNING").start()
    try:
        assert bridge_send(tmp_path, "hubspot", str(SAMPLE)).returncode == 0
        assert wait_for(lambda: stored_with(first, "stora", deal), timeout=5)
        secrets_before = (tmp_path / ".bridge" / "secrets.json").read_text()
    finally:
        first.stop()
    assert read_state(tmp_path) is None
    assert not (tmp_path / ".bridge" / "dev.json").exists()

    second = LocalRuntime(ROOT, port=0, state_dir=tmp_path, environ={}, log_level="WARNING").start()
    try:
        state = second.console_state()
        assert state["webhooks"] == [] and state["jobs"] == []
        assert all(not events for events in state["timelines"].values())
        assert all(d["count"] == 0 for d in state["dead_letters"].values())
        assert second.generated_secrets == []  # reused from .bridge/secrets.json
        assert (tmp_path / ".bridge" / "secrets.json").read_text() == secrets_before

        # A fresh dedupe table: the same sample is new again, and reaches the new sandboxes.
        again = bridge_send(tmp_path, "hubspot", str(SAMPLE))
        assert again.returncode == 0, again.stdout + again.stderr
        assert json.loads(again.stdout.splitlines()[1])["accepted"] == 1
        assert wait_for(lambda: stored_with(second, "stora", deal), timeout=5)
    finally:
        second.stop()


def test_bridge_send_exits_non_zero_when_no_runtime_is_running(tmp_path: Path) -> None:
    sent = bridge_send(tmp_path, "hubspot", str(SAMPLE))

    assert sent.returncode != 0
    assert "bridge dev" in sent.stderr


def mapped_targets(source: str, sample: Path) -> set[str]:
    """The targets the mappings under mappings/ send `sample` to, as the route stage decides."""
    from timeline_bridge.mapping import load_mappings
    from timeline_bridge_tools.mapping.samples import envelopes_from_file

    mappings = load_mappings(ROOT / "mappings").for_source(source)
    envelopes = envelopes_from_file(source, sample)
    return {m.target for m in mappings for envelope in envelopes if m.applies(envelope)}


@pytest.mark.parametrize(
    ("source", "sample"),
    [
        ("slack", "slack/approve-button.json"),
        ("pipedrive", "pipedrive/deal-stage-change-v2.json"),
        ("salesforce", "salesforce/opportunity-stage-change.xml"),
        ("generic", "generic/standard-webhook.json"),
    ],
)
def test_every_shipped_sample_reaches_its_mapped_sandboxes_when_sent_with_bridge_send(
    local_runtime: LocalRuntime, tmp_path: Path, source: str, sample: str
) -> None:
    # Derived from the mappings, so one a user adds changes the expectation, not the outcome.
    targets = mapped_targets(source, ROOT / "events" / sample)
    sent = bridge_send(tmp_path, source, str(ROOT / "events" / sample))

    assert sent.returncode == 0, sent.stdout + sent.stderr
    webhook = local_runtime.console_state()["webhooks"][0]
    assert (webhook["source"], webhook["status"], webhook["outcome"]) == (source, 200, "accepted")
    delivered = wait_for(lambda: all(local_runtime.sandboxes[t].events() for t in targets), timeout=5)
    assert delivered, local_runtime.console_state()["jobs"]
    local_runtime.wait_idle()
    assert {j["target"] for j in local_runtime.console_state()["jobs"]} == targets


def test_handlers_log_at_the_runtime_level_when_the_logger_existed_before_the_start(tmp_path: Path) -> None:
    from timeline_bridge.observability import logger

    before = logger.log_level
    logger.setLevel("INFO")  # as when a sandbox imported it first, under no log level setting
    runtime = LocalRuntime(ROOT, port=0, state_dir=tmp_path, environ={}, log_level="ERROR").start()
    try:
        assert logger.log_level == logging.ERROR
    finally:
        runtime.stop()
        assert logger.log_level == logging.INFO  # given back: the process's other users keep theirs
        logger.setLevel(before)
