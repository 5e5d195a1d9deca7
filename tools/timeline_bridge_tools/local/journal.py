"""What the console shows: a bounded, in-memory record of webhooks, the jobs they produced and
every delivery attempt. Fed by observing the pipeline from outside (HTTP answers, the SQS
messages each function sends, the batches handed to it and the failures it reports), so the
handlers run exactly the code they run in AWS."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from timeline_bridge.models import utc_now_iso

MAX_WEBHOOKS = 200
MAX_JOBS = 500
MAX_ATTEMPTS = 500


@dataclass(slots=True)
class WebhookRecord:
    """One request to a webhook URL and what ingest answered."""

    request_id: str
    source: str
    path: str
    status: int
    outcome: str  # accepted | duplicate | ignored | answered | rejected | error
    reason: str = ""
    name: str | None = None
    events: list[str] = field(default_factory=list)  # source event ids put on the events queue
    time: str = field(default_factory=utc_now_iso)


@dataclass(slots=True)
class JobRecord:
    """One delivery job (source event x mapping) and where it stands."""

    key: str
    target: str
    mapping: str
    source: str
    event_id: str
    event_type: str
    status: str = "queued"  # queued | delivering | retrying | delivered | dead-lettered | redriven
    # The path of the URL the job's reply goes to (a Slack click's response_url), "" without one.
    reply_to: str = ""
    attempts: int = 0
    detail: str = ""
    created: str = field(default_factory=utc_now_iso)
    updated: str = field(default_factory=utc_now_iso)


@dataclass(slots=True)
class AttemptRecord:
    """One delivery attempt of one job, as the deliver function reported it."""

    key: str
    target: str
    attempt: int
    outcome: str  # delivered | retry | dead-lettered | error
    detail: str = ""
    time: str = field(default_factory=utc_now_iso)


class Journal:
    """Thread-safe, bounded: the oldest entries fall off, so a long `bridge dev` stays small."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._webhooks: deque[WebhookRecord] = deque(maxlen=MAX_WEBHOOKS)
        self._jobs: OrderedDict[str, JobRecord] = OrderedDict()
        self._attempts: deque[AttemptRecord] = deque(maxlen=MAX_ATTEMPTS)

    # --- webhooks -------------------------------------------------------------------------

    def webhook(self, record: WebhookRecord) -> WebhookRecord:
        with self._lock:
            self._webhooks.append(record)
        return record

    # --- jobs -----------------------------------------------------------------------------

    def job_queued(self, job: dict[str, Any], *, status: str = "queued", detail: str = "") -> None:
        """A job was put on a delivery queue (by route, a retry or a redrive)."""
        key = str(job.get("key") or "")
        if not key:
            return
        with self._lock:
            record = self._jobs.get(key)
            if record is None:
                record = JobRecord(
                    key=key,
                    target=str(job.get("target") or ""),
                    mapping=str(job.get("mapping") or ""),
                    source=str(job.get("source") or ""),
                    event_id=str(job.get("event_id") or ""),
                    event_type=str(job.get("event_type") or ""),
                    reply_to=urlsplit(str((job.get("reply") or {}).get("url") or "")).path,
                )
                self._jobs[key] = record
                while len(self._jobs) > MAX_JOBS:
                    self._jobs.popitem(last=False)
            elif record.status in ("dead-lettered", "delivered") and status == "queued":
                status = "redriven" if record.status == "dead-lettered" else "queued"
            record.status = status
            if detail:
                record.detail = detail
            record.updated = utc_now_iso()

    def attempt(self, job: dict[str, Any], attempt: int, outcome: str, detail: str = "") -> None:
        """The deliver function finished one attempt of `job`."""
        key = str(job.get("key") or "")
        if not key:
            return
        if key not in self._jobs:
            self.job_queued(job)
        status = {"delivered": "delivered", "retry": "retrying", "dead-lettered": "dead-lettered"}.get(
            outcome, "retrying"
        )
        with self._lock:
            record = self._jobs[key]
            record.attempts = max(record.attempts, attempt)
            # A dead-letter seen during the attempt wins over the batch answer (both are reported).
            if not (record.status == "dead-lettered" and outcome == "delivered"):
                record.status = status
            if detail or outcome == "delivered":
                record.detail = detail
            record.updated = utc_now_iso()
            self._attempts.append(
                AttemptRecord(key=key, target=record.target, attempt=attempt, outcome=outcome, detail=detail)
            )

    def route_failure(self, envelope: dict[str, Any], attempt: int, detail: str) -> None:
        """The route function gave an event back to the events queue (it will be routed again)."""
        with self._lock:
            self._attempts.append(
                AttemptRecord(
                    key=str(envelope.get("event_id") or ""),
                    target="route",
                    attempt=attempt,
                    outcome="retry",
                    detail=f"{envelope.get('source')} {envelope.get('event_type')}: {detail}",
                )
            )

    def dead_lettered(self, job: dict[str, Any], detail: str = "") -> None:
        """A job went to its target's DLQ (sent there by deliver, or redriven by SQS)."""
        self.job_queued(job, status="dead-lettered", detail=detail)

    def redriven(self, keys: list[str]) -> None:
        with self._lock:
            for key in keys:
                record = self._jobs.get(key)
                if record is not None:
                    record.status = "redriven"
                    record.updated = utc_now_iso()

    def job(self, key: str) -> JobRecord | None:
        with self._lock:
            return self._jobs.get(key)

    # --- reading --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Everything, newest first, as plain data (the console page and state.json)."""
        with self._lock:
            return {
                "webhooks": [asdict(r) for r in reversed(self._webhooks)],
                "jobs": [asdict(r) for r in reversed(self._jobs.values())],
                "attempts": [asdict(r) for r in reversed(self._attempts)],
            }
