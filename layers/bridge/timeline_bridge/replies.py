"""Replies to the person behind an event: a mapping's `reply:`, posted to the click's Slack
`response_url` once the job's fate is known.

- Delivered: the reply's text, replacing the clicked message (its buttons gone) or as an
  ephemeral message only the clicker sees (`replace_original: false`).
- Dead-lettered (at route or at delivery): an ephemeral note that it was not recorded, and why in
  a few words (the full reason is in the dead letter, for an operator).

A reply URL is posted to only when it is under `SLACK_HOOKS_BASE_URL` (Slack's hooks host, the
Slack sandbox locally): a payload cannot point the bridge anywhere else. Anything else is refused
and logged (by host: a response URL is a credential for that message), never called. Slack takes
five posts per `response_url` in 30 minutes; a conditional counter in the dedupe table keeps every
function together within that, so a redelivered job or a fan-out of several mappings never
spends a post Slack would refuse. A reply is best effort: a failure is logged and counted
(`SlackReplyFailed`), never retried, and never changes the job's fate.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aws_lambda_powertools.metrics import MetricUnit

from timeline_bridge.observability import logger, metrics

if TYPE_CHECKING:
    from timeline_bridge.config import Settings
    from timeline_bridge.models import DeliveryJob
    from timeline_bridge.wiring import Dependencies

MAX_POSTS = 5  # per response_url ...
POST_WINDOW_SECONDS = 30 * 60  # ... in this long (Slack's limit)
DEADLINE_SECONDS = 3.0
METRIC_REPLY_FAILED = "SlackReplyFailed"
METRIC_REPLY_POSTED = "SlackReplyPosted"


class Replies:
    """Posts the replies of jobs whose fate is decided; one per function, built by its stage."""

    def __init__(
        self,
        settings: Settings,
        *,
        table: str,
        dynamodb: Any,
        clock: Callable[[], float] = time.time,
        post: Callable[[str, dict[str, Any]], int] | None = None,
    ) -> None:
        self.base_url = settings.slack_hooks_base_url.rstrip("/")
        self.table = table
        self.dynamodb = dynamodb
        self.clock = clock
        self._post = post or _post_json

    def recorded(self, job: DeliveryJob) -> None:
        """The job was accepted by its target: the reply's text, if it rendered."""
        reply = job.reply or {}
        if not reply.get("text"):
            return
        if reply.get("replace_original", True):
            payload = {"replace_original": True, "text": reply["text"]}
        else:
            payload = {"response_type": "ephemeral", "replace_original": False, "text": reply["text"]}
        self._send(job, payload)

    def not_recorded(self, job: DeliveryJob) -> None:
        """The job was dead-lettered: an ephemeral note saying so, and why in a few words."""
        if not job.reply:
            return
        text = f"Not recorded on the customer timeline: {_why(job)}. An operator can replay it."
        self._send(job, {"response_type": "ephemeral", "replace_original": False, "text": text})

    def allowed(self, url: str) -> bool:
        """`url` is a reply URL of the configured hooks host (scheme, host and port match)."""
        given, base = urlsplit(url), urlsplit(self.base_url)
        return (
            given.scheme == base.scheme
            and given.netloc.lower() == base.netloc.lower()
            and given.path.startswith((base.path.rstrip("/") or "") + "/")
            and not given.username
            and "\\" not in url
        )

    def _send(self, job: DeliveryJob, payload: dict[str, Any]) -> None:
        url = str((job.reply or {}).get("url") or "")
        host = urlsplit(url).hostname or ""
        if not self.allowed(url):
            logger.warning(
                "reply refused: the response URL is not a Slack hooks URL",
                extra={"mapping": job.mapping, "key": job.key, "host": host},
            )
            return
        budget = self._take_post(url)
        if budget != "taken":
            logger.warning(
                "reply not posted", extra={"mapping": job.mapping, "key": job.key, "reason": budget}
            )
            return
        error = ""
        try:
            status = self._post(url, payload)
        except Exception as exc:  # best effort: the job's fate is decided already
            status, error = 0, type(exc).__name__
        if 200 <= status < 300:
            metrics.add_metric(name=METRIC_REPLY_POSTED, unit=MetricUnit.Count, value=1)
            logger.info("reply posted", extra={"mapping": job.mapping, "key": job.key})
            return
        metrics.add_metric(name=METRIC_REPLY_FAILED, unit=MetricUnit.Count, value=1)
        logger.warning(
            "reply not posted",
            extra={"mapping": job.mapping, "key": job.key, "status": status, "error": error},
        )

    def _take_post(self, url: str) -> str:
        """Count one post against the URL's budget: `taken`, or why not (spent, uncountable)."""
        from botocore.exceptions import BotoCoreError, ClientError

        now = int(self.clock())
        try:
            self.dynamodb.update_item(
                TableName=self.table,
                Key={"id": {"S": "reply#" + hashlib.sha256(url.encode()).hexdigest()}},
                UpdateExpression="ADD posts :one SET expiration = if_not_exists(expiration, :expires)",
                ConditionExpression="attribute_not_exists(posts) OR posts < :max",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":max": {"N": str(MAX_POSTS)},
                    ":expires": {"N": str(now + POST_WINDOW_SECONDS)},
                },
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return "Slack's five posts per response URL are spent"
            return "its budget could not be counted"
        except BotoCoreError:
            return "its budget could not be counted"
        return "taken"


def _why(job: DeliveryJob) -> str:
    """A few words on why a job was dead-lettered, naming no event value."""
    record = job.dead_letter or {}
    target = record.get("target") or job.target
    if record.get("stage") == "route":
        where = f" ({record['field']})" if record.get("field") else ""
        if record.get("reason") == "enrichment_error":
            return f"a lookup it needs failed{where}"
        return f"the mapping {job.mapping} could not render it{where}"
    code = record.get("provider_code") or record.get("status")
    if record.get("reason") == "retries_exhausted":
        return f"{target} did not accept it after {record.get('attempts') or job.attempts} attempts"
    return f"{target} refused it" + (f" ({code})" if code else "")


def _post_json(url: str, payload: dict[str, Any]) -> int:
    """POST `payload` as JSON within the deadline; the answer's status."""
    from timeline_bridge.targets.http import post_within

    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    response = post_within(
        "slack-reply",
        url,
        data,
        {"Content-Type": "application/json"},
        timeout=(min(1.5, DEADLINE_SECONDS), DEADLINE_SECONDS),
        deadline=DEADLINE_SECONDS,
        max_bytes=64 * 1024,
    )
    return response.status_code


def replies_for(dependencies: Dependencies) -> Replies | None:
    """The replies of a function with a dedupe table (their budget lives there), else None."""
    table = dependencies.settings.idempotency_table
    if not table:
        return None
    return Replies(
        dependencies.settings, table=table, dynamodb=dependencies.aws("dynamodb"), clock=dependencies.clock
    )
