"""Slack approvals end to end under `bridge dev`: a click reaches the team's own app byte for byte
and its answer comes back; the person who clicked gets the shipped mapping's reply; a reply URL
that is not Slack's is never called."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus

import pytest
import requests
from timeline_bridge_tools import signing
from timeline_bridge_tools.local.runtime import LocalRuntime

from tests.integration.test_local_runtime import ROOT, bridge_send, wait_for
from tests.integration.test_slack_forwarding import SlackApp

SAMPLE = ROOT / "events" / "slack" / "approve-button.json"


def sample_payload() -> dict[str, Any]:
    return json.loads(parse_qs(json.loads(SAMPLE.read_text())["body"])["payload"][0])


def click_file(tmp_path: Path, **changes: Any) -> Path:
    """The approve sample as a raw form body, with a fresh trigger_id (a new click) and `changes`."""
    payload = sample_payload() | {"trigger_id": f"{time.time_ns()}.1.fresh"} | changes
    path = tmp_path / f"click-{time.time_ns()}.txt"
    path.write_text("payload=" + quote_plus(json.dumps(payload)))
    return path


@pytest.fixture
def app() -> Any:
    server = SlackApp()
    yield server
    server.close()


@pytest.fixture
def runtime(tmp_path: Path, app: SlackApp) -> Any:
    """bridge dev with the team's app behind it (SLACK_FORWARD_URL, as a developer sets it in .env)."""
    runtime = LocalRuntime(
        ROOT, port=0, state_dir=tmp_path, environ={"SLACK_FORWARD_URL": app.url}, log_level="WARNING"
    )
    runtime.start()
    app.secret = runtime.secret_values["SLACK_SIGNING_SECRET"]  # one Slack app, one signing secret
    try:
        yield runtime
    finally:
        runtime.stop()


def test_click_reaches_the_app_byte_for_byte_its_answer_comes_back_and_the_clicker_gets_the_reply(
    runtime: LocalRuntime, app: SlackApp, tmp_path: Path
) -> None:
    app.answer = (200, "application/json", b'{"text":"Thanks, the discount is approved"}')
    click = click_file(tmp_path)
    sent = bridge_send(tmp_path, "slack", str(click))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert json.loads(sent.stdout.splitlines()[1]) == {"text": "Thanks, the discount is approved"}

    [forwarded] = app.received
    assert forwarded["signature_ok"]  # the app's own check of Slack's signature passes
    sandbox = runtime.sandboxes["slack"]
    payload = json.loads(parse_qs(forwarded["body"].decode())["payload"][0])
    # bridge send pointed the click's response_url at the Slack sandbox, keeping its path
    assert payload["response_url"].startswith(sandbox.url + "/actions/")
    path = payload["response_url"][len(sandbox.url) :]

    assert wait_for(lambda: sandbox.replies(path), timeout=10), runtime.console_state()["jobs"]
    [reply] = sandbox.replies(path)
    assert reply["message"] == {
        "replace_original": True,
        "text": "Approved by Maria Lopez · recorded on the customer timeline",
    }
    assert runtime.sandboxes["matter"].events()  # and the timeline event is delivered
    # the console shows the reply under the click
    [webhook] = [w for w in runtime.console_state()["webhooks"] if w["source"] == "slack"]
    assert webhook["replies"] == [reply["message"]]
    page = requests.get(runtime.url, timeout=5).text
    assert "Approved by Maria Lopez · recorded on the customer timeline" in page


def test_a_click_that_could_not_be_recorded_gets_an_ephemeral_note_saying_why(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    # Matter refuses the event for good (a 422): the job is dead-lettered, the clicker told.
    runtime.sandboxes["matter"].inject("respond", status=422, json={"error": {"code": "invalid_field"}})
    sent = bridge_send(tmp_path, "slack", str(click_file(tmp_path)))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    sandbox = runtime.sandboxes["slack"]
    assert wait_for(lambda: sandbox.replies(), timeout=10), runtime.console_state()["jobs"]
    [reply] = sandbox.replies()
    assert reply["message"]["response_type"] == "ephemeral"
    assert reply["message"]["text"].startswith("Not recorded on the customer timeline: matter refused it")


@pytest.mark.parametrize("failure", ["slow", "error"])
def test_a_slow_or_failing_app_still_gets_the_sender_a_200_within_3s_and_the_event_delivered(
    runtime: LocalRuntime, app: SlackApp, tmp_path: Path, failure: str
) -> None:
    if failure == "slow":
        app.delay = 4.0
    else:
        app.answer = (500, "text/plain", b"internal error")
    started = time.monotonic()
    sent = bridge_send(tmp_path, "slack", str(click_file(tmp_path)))
    # bridge send's own start-up is in this figure too: the answer itself comes well within it
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert sent.stdout.startswith("200 ")
    assert time.monotonic() - started < 3.0 + 2.0
    assert wait_for(lambda: runtime.sandboxes["matter"].events(), timeout=10)


def test_a_click_whose_response_url_is_not_slack_s_gets_no_post(
    runtime: LocalRuntime, tmp_path: Path
) -> None:
    elsewhere = SlackApp()  # stands for any host a forged payload could name
    try:
        target = elsewhere.url.replace("/slack/events", "/actions/T01ABCDEF12/1/x")
        body = click_file(tmp_path, response_url=target).read_bytes()
        secret = runtime.secret_values["SLACK_SIGNING_SECRET"]
        headers = {"content-type": "application/x-www-form-urlencoded"}
        headers |= signing.sign_request("slack", body, secret)
        started = time.monotonic()
        answer = requests.post(runtime.webhook_urls["slack"], data=body, headers=headers, timeout=10)
        assert answer.status_code == 200
        assert time.monotonic() - started < 3.0
        assert wait_for(lambda: runtime.sandboxes["matter"].events(), timeout=10)
        time.sleep(0.5)  # the deliverer has decided: any reply would have been posted by now
        assert elsewhere.received == []
        assert runtime.sandboxes["slack"].replies() == []
    finally:
        elsewhere.close()
