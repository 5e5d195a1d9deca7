"""Slack requests passed on to the team's own Slack app (`SLACK_FORWARD_URL`).

A Slack app has one Interactivity Request URL and one Events API Request URL. With the bridge at
both, the app that posted the buttons would never hear of its own clicks; so every verified
request is passed on unchanged: the raw body, `X-Slack-Signature`, `X-Slack-Request-Timestamp`
(and Slack's retry headers), the content type. The app's own signature check passes, since the
bytes it checks are the bytes Slack signed.

The forward runs beside ingest (verification is done; dedupe and enqueue never wait on it) and
is bounded by `SLACK_FORWARD_DEADLINE_SECONDS`, well under Slack's 3 s. A 2xx answer within it
(status, content type, body: a modal's `response_action`, an updated message) is relayed to
Slack; anything else (no answer in time, an error status, a refused connection) is counted as
`SlackForwardFailed` and the bridge answers itself. Unverified requests are never passed on.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from timeline_bridge.http import WebhookRequest
from timeline_bridge.observability import logger, metrics

if TYPE_CHECKING:
    from timeline_bridge.config import Settings

# What the app behind the bridge needs to check and dedupe the request as if Slack had sent it.
FORWARDED_HEADERS = (
    "content-type",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "x-slack-retry-num",
    "x-slack-retry-reason",
)
METRIC_FORWARD_FAILED = "SlackForwardFailed"


@dataclass(frozen=True, slots=True)
class ForwardAnswer:
    """The app's answer, as it is relayed to Slack."""

    status: int
    content_type: str
    body: str

    def response(self) -> dict[str, Any]:
        return {"statusCode": self.status, "headers": {"content-type": self.content_type}, "body": self.body}


class PendingForward:
    """One request on its way to the app; `answer()` waits for it until the deadline."""

    def __init__(self, forwarder: SlackForwarder, request: WebhookRequest) -> None:
        self._forwarder = forwarder
        self._started = time.monotonic()
        self._answer: ForwardAnswer | None = None
        self._failure = "no answer within the deadline"
        self._done = threading.Event()
        thread = threading.Thread(target=self._run, args=(request,), name="slack-forward", daemon=True)
        thread.start()

    def _run(self, request: WebhookRequest) -> None:
        try:
            self._answer, failure = self._forwarder.send(request)
            if failure:
                self._failure = failure
        except Exception as exc:  # reported by answer(): the forward never breaks ingest
            self._failure = f"{type(exc).__name__}"
        finally:
            self._done.set()

    def answer(self) -> ForwardAnswer | None:
        """The app's 2xx answer, or None (counted and logged) when there is none to relay."""
        left = self._forwarder.deadline - (time.monotonic() - self._started)
        self._done.wait(max(left, 0.0))
        answer = self._answer if self._done.is_set() else None
        if answer is None:
            metrics.add_metric(name=METRIC_FORWARD_FAILED, unit=MetricUnit.Count, value=1)
            logger.warning("Slack request not relayed from the forward URL", extra={"reason": self._failure})
        return answer


class SlackForwarder:
    """Passes verified Slack requests on to `url` within `deadline` seconds."""

    def __init__(self, url: str, *, deadline: float, max_answer_bytes: int) -> None:
        self.url = url
        self.deadline = deadline
        self.max_answer_bytes = max_answer_bytes

    def start(self, request: WebhookRequest) -> PendingForward:
        return PendingForward(self, request)

    def send(self, request: WebhookRequest) -> tuple[ForwardAnswer | None, str]:
        """POST the request as received; (the answer to relay, or None and why not)."""
        from timeline_bridge.errors import RetryLaterError
        from timeline_bridge.targets.http import post_within

        headers = {name: value for name in FORWARDED_HEADERS if (value := request.header(name)) is not None}
        timeout = (min(1.0, self.deadline), self.deadline)
        try:
            response = post_within(
                "slack-forward",
                self.url,
                request.body,
                headers,
                timeout=timeout,
                deadline=self.deadline,
                max_bytes=self.max_answer_bytes,
            )
        except RetryLaterError as exc:
            return None, exc.code or "no answer"
        if not 200 <= response.status_code < 300:
            return None, f"answered {response.status_code}"
        content_type = response.headers.get("content-type") or "text/plain"
        return ForwardAnswer(
            response.status_code, content_type, response.content.decode("utf-8", "replace")
        ), ""


def forwarder_for(settings: Settings) -> SlackForwarder | None:
    """The forwarder a Slack function's settings ask for (`SLACK_FORWARD_URL`), or None."""
    if not settings.slack_forward_url:
        return None
    return SlackForwarder(
        settings.slack_forward_url,
        deadline=settings.slack_forward_deadline,
        max_answer_bytes=settings.http_max_answer_bytes,
    )
