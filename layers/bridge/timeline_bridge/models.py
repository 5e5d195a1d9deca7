"""The two messages that travel between stages: the source envelope and the delivery job."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(slots=True)
class Envelope:
    """One source event, verified and deduped by ingest, on the events queue (ingest → route)."""

    source: str  # hubspot | slack | pipedrive | salesforce | generic
    event_type: str  # e.g. deal.propertyChange, block_actions, change.deal
    event_id: str  # the source's own identity (each source spec's `identity` says which)
    occurred_at: str | None  # ISO 8601 from the source, when it says
    received_at: str  # ISO 8601, when ingest accepted it
    event: Any  # the raw source event: one HubSpot array element, the Slack payload, ...
    name: str | None = None  # generic sources: the <name> of /generic/<name> (canonical spelling)
    # Set on an event put back from the archive by `bridge replay`: {"id": the replay's id,
    # "mappings": the mapping names it is limited to, or None for all}. Never archived again.
    replay: dict[str, Any] | None = None

    def to_json(self) -> str:
        return _dumps(self, _ENVELOPE_FIELDS)

    @classmethod
    def from_json(cls, text: str) -> Envelope:
        return cls(**json.loads(text))


@dataclass(slots=True)
class DeliveryJob:
    """One rendered target request waiting for delivery (route → deliver, and in the DLQs)."""

    key: str  # deterministic job key (keys.job_key): idempotency key / event id at the target
    target: str  # stora | hubspot | matter | applied
    mapping: str  # mapping name
    mapping_file: str  # path of the mapping file, for dead-letter reasons
    source: str
    event_id: str
    event_type: str
    occurred_at: str | None
    body: dict[str, Any]  # the target request body
    created_at: str = field(default_factory=utc_now_iso)
    attempts: int = 0  # delivery attempts so far (across redeliveries and redrives)
    first_failure_at: str | None = None
    last_failure_at: str | None = None
    # Times the target-side idempotency key was rotated. Stora memoises a 5xx under its key for
    # 24 h, so after a 5xx the Stora client moves to a derived key; the job must be re-enqueued
    # as the client left it, or every retry replays the stored 5xx.
    key_generation: int = 0
    # Retry state, kept in the job itself (the deliver stage re-enqueues the updated job):
    not_before: str | None = None  # ISO 8601: not sent before this (backoff, provider delay, pause)
    retries: int = 0  # failures counted against the retry budget; throttling is not; redrive resets
    throttled: int = 0  # 429s met so far (counted apart, against a much larger cap)
    redrives: int = 0  # times `bridge dlq redrive` put the job back
    # Set when the job is dead-lettered: the reason record a person acts on.
    dead_letter: dict[str, Any] | None = None
    # A mapping's `reply:` for the person who clicked: {"url": where it goes (the click's
    # response_url), "text": what they see once delivered (None: only the not-recorded note),
    # "replace_original": bool}. Posted by whoever decides the job's fate.
    reply: dict[str, Any] | None = None

    def to_json(self) -> str:
        return _dumps(self, _JOB_FIELDS)

    @classmethod
    def from_json(cls, text: str) -> DeliveryJob:
        data = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


_ENVELOPE_FIELDS = tuple(f.name for f in fields(Envelope))
_JOB_FIELDS = tuple(f.name for f in fields(DeliveryJob))


def _dumps(message: Any, names: tuple[str, ...]) -> str:
    """Compact JSON of a message's fields, in field order. Field by field rather than
    `dataclasses.asdict`, which deep-copies the whole source event first: this runs for every
    event ingest enqueues and every job route and deliver send, and asdict tripled its cost."""
    return json.dumps(
        {name: getattr(message, name) for name in names}, separators=(",", ":"), ensure_ascii=False
    )
