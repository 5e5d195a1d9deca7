"""SLACK_FORWARD_URL: verified Slack requests passed on to the team's own app, its answer relayed."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from timeline_bridge.config import Settings
from timeline_bridge_tools.signing import sign_event

SECRET = "7d3f9a1c5e2b8d4f6a0c1e3b5d7f9a2c"


class SlackApp:
    """The team's own Slack app: checks Slack's signature itself and answers as told."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret  # the Slack app's signing secret: the same as the bridge's
        self.received: list[dict] = []
        self.answer: tuple[int, str, bytes] = (200, "application/json", b'{"response_action":"clear"}')
        self.delay = 0.0
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                timestamp = self.headers.get("x-slack-request-timestamp") or ""
                expected = (
                    "v0="
                    + hmac.new(
                        app.secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256
                    ).hexdigest()
                )
                app.received.append(
                    {
                        "body": body,
                        "headers": dict(self.headers.items()),
                        "signature_ok": hmac.compare_digest(
                            expected, self.headers.get("x-slack-signature", "")
                        ),
                    }
                )
                time.sleep(app.delay)
                status, content_type, answer = app.answer
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/slack/events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app():
    server = SlackApp()
    yield server
    server.close()


@pytest.fixture
def deadline() -> str:
    """SLACK_FORWARD_DEADLINE_SECONDS: the most allowed where the app answers, so a busy machine's
    first forward (a new connection) never misses it; the tests of a slow app set their own."""
    return "2.5"


@pytest.fixture
def handler(aws, monkeypatch, load_function, lambda_context, app, deadline):
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.setenv("SLACK_FORWARD_URL", app.url)
    monkeypatch.setenv("SLACK_FORWARD_DEADLINE_SECONDS", deadline)
    module = load_function("slack")
    return lambda event: module.lambda_handler(event, lambda_context)


def test_click_reaches_the_app_byte_for_byte_and_its_answer_comes_back(handler, aws, app, load_event):
    event = sign_event("slack", load_event("slack/approve-button.json"), SECRET)
    answer = handler(event)
    assert answer["statusCode"] == 200
    assert answer["headers"]["content-type"] == "application/json"
    assert json.loads(answer["body"]) == {"response_action": "clear"}
    [forwarded] = app.received
    assert forwarded["body"] == event["body"].encode()
    assert forwarded["signature_ok"]
    assert forwarded["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert len(aws.receive()) == 1  # recorded as well


def test_events_api_callback_is_forwarded_with_slack_retry_headers(handler, aws, app, load_event):
    event = load_event("slack/url-verification.json")
    event["body"] = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T01ABCDEF12",
            "event": {
                "type": "app_mention",
                "user": "U04ABCD1234",
                "text": "status",
                "ts": "1763900300.000100",
            },
            "event_id": "Ev08MFMKH6",
            "event_time": 1763900300,
        }
    )
    event = sign_event("slack", event, SECRET)
    event["headers"] |= {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    app.answer = (200, "text/plain", b"")
    assert handler(event)["statusCode"] == 200
    [forwarded] = app.received
    assert forwarded["signature_ok"]
    assert forwarded["headers"]["x-slack-retry-num"] == "1"
    assert len(aws.receive()) == 1


@pytest.mark.parametrize("deadline", ["1"])
@pytest.mark.parametrize("failure", ["slow", "error", "down"])
def test_a_slow_failing_or_absent_app_still_gets_slack_its_200_and_the_event_recorded(
    handler, aws, app, load_event, failure
):
    if failure == "slow":
        app.delay = 3.0
    elif failure == "error":
        app.answer = (500, "text/plain", b"boom")
    else:
        app.close()
    started = time.monotonic()
    answer = handler(sign_event("slack", load_event("slack/approve-button.json"), SECRET))
    assert time.monotonic() - started < 2.5  # Slack's budget is 3 s
    assert (answer["statusCode"], answer["body"]) == (200, "")
    assert len(aws.receive()) == 1


def test_unverified_request_is_never_forwarded(handler, app, load_event):
    event = load_event("slack/approve-button.json")
    assert handler(event)["statusCode"] == 401
    assert app.received == []


def test_url_verification_is_answered_by_the_bridge(handler, app, load_event):
    event = load_event("slack/url-verification.json")
    answer = handler(sign_event("slack", event, SECRET))
    assert json.loads(answer["body"]) == {"challenge": json.loads(event["body"])["challenge"]}
    assert app.received == []


def test_a_click_that_could_not_be_recorded_gets_the_bridge_s_click_again_text(
    handler, app, load_event, monkeypatch, cold_start
):
    from botocore.exceptions import ClientError

    def refuse(**kwargs):
        raise ClientError(
            {"Error": {"Code": "ServiceUnavailable", "Message": "injected"}}, "SendMessageBatch"
        )

    monkeypatch.setattr(cold_start("slack").aws("sqs"), "send_message_batch", refuse)
    answer = handler(sign_event("slack", load_event("slack/approve-button.json"), SECRET))
    assert "could not record your click" in json.loads(answer["body"])["text"]


@pytest.mark.parametrize(
    ("url", "accepted"),
    [
        ("https://approvals.example.com/slack/events", True),
        ("http://127.0.0.1:3000/slack/events", True),
        ("http://localhost:3000/slack/events", True),
        ("http://approvals.example.com/slack/events", False),
        ("ftp://approvals.example.com/", False),
    ],
)
def test_forward_url_must_be_https_or_loopback(url, accepted):
    if accepted:
        assert Settings.from_environ({"SLACK_FORWARD_URL": url}).slack_forward_url == url
    else:
        with pytest.raises(ValueError, match="SLACK_FORWARD_URL"):
            Settings.from_environ({"SLACK_FORWARD_URL": url})
