"""The event archive: every source event the route stage receives, with what became of it there.

Objects in the stack's archive bucket (`EVENTS_ARCHIVE_BUCKET`), gzip-compressed JSON Lines, one
object per route batch and (received hour, source), keyed so a time window and a source read few
objects:

    events/date=2026-12-02/hour=14/source=hubspot/20261202T141503Z-<batch id>.jsonl.gz

Each line is one `ArchivedEvent`: the envelope exactly as route read it (source, generic
endpoint name, type, event id, times, the event; never a signature header or a secret: ingest
does not put them in envelopes), when it was routed, and the outcome of routing it: the jobs
it became (mapping, target, key) and the jobs that were dead-lettered at route (with their
reason); an event no mapping wants has neither, and is archived all the same. The lines are
written before the route stage acknowledges its batch: an archive that fails fails the batch,
so SQS delivers it again and nothing accepted goes unarchived. Replayed events
(`Envelope.replay` set) are never archived again.
"""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from timeline_bridge.models import Envelope

PREFIX = "events/"
CONTENT_TYPE = "application/x-ndjson"


@dataclass(slots=True)
class ArchivedJob:
    mapping: str
    target: str
    key: str
    reason: str | None = None  # set for a job dead-lettered at route (mapping or enrichment error)


@dataclass(slots=True)
class ArchivedEvent:
    """One line of the archive."""

    envelope: Envelope
    routed_at: str
    jobs: list[ArchivedJob] = field(default_factory=list)
    dead_letters: list[ArchivedJob] = field(default_factory=list)  # dead-lettered at route

    @property
    def matched(self) -> bool:
        return bool(self.jobs or self.dead_letters)

    def to_line(self) -> str:
        return json.dumps(
            {
                "envelope": json.loads(self.envelope.to_json()),
                "routed_at": self.routed_at,
                "jobs": [_job(j) for j in self.jobs],
                "dead_letters": [_job(j) for j in self.dead_letters],
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )

    @classmethod
    def from_line(cls, line: str) -> ArchivedEvent:
        data = json.loads(line)
        return cls(
            envelope=Envelope.from_json(json.dumps(data["envelope"])),
            routed_at=data["routed_at"],
            jobs=[ArchivedJob(**j) for j in data.get("jobs") or ()],
            dead_letters=[ArchivedJob(**j) for j in data.get("dead_letters") or ()],
        )


def _job(job: ArchivedJob) -> dict[str, Any]:
    data = {"mapping": job.mapping, "target": job.target, "key": job.key}
    if job.reason is not None:
        data["reason"] = job.reason
    return data


def hour_of(iso_time: str) -> datetime:
    """The UTC hour an ISO 8601 time falls in (its partition); now when it cannot be read."""
    try:
        moment = datetime.fromisoformat(iso_time.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        moment = datetime.now(UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def partition(hour: datetime, source: str) -> str:
    """The key prefix of one (hour, source) partition."""
    return f"{PREFIX}date={hour:%Y-%m-%d}/hour={hour:%H}/source={source}/"


def object_key(hour: datetime, source: str, written: datetime, batch_id: str) -> str:
    return f"{partition(hour, source)}{written:%Y%m%dT%H%M%SZ}-{batch_id}.jsonl.gz"


def encode(events: Sequence[ArchivedEvent]) -> bytes:
    """Gzip JSON Lines; `mtime=0` so the same events always make the same bytes."""
    text = "".join(e.to_line() + "\n" for e in events)
    return gzip.compress(text.encode("utf-8"), mtime=0)


def decode(blob: bytes) -> list[ArchivedEvent]:
    return [
        ArchivedEvent.from_line(line) for line in gzip.decompress(blob).decode("utf-8").splitlines() if line
    ]


class EventArchive:
    """Writes the archived events of one route batch to the bucket, one object per (received
    hour, source). Raises on any S3 failure: the caller fails the batch."""

    def __init__(self, bucket: str, s3: Any) -> None:
        self.bucket = bucket
        self.s3 = s3

    def write(self, events: Sequence[ArchivedEvent], *, now: datetime | None = None) -> list[str]:
        """Put `events`; returns the keys written."""
        written = now or datetime.now(UTC)
        batch_id = uuid.uuid4().hex[:12]
        groups: dict[tuple[datetime, str], list[ArchivedEvent]] = {}
        for event in events:
            groups.setdefault((hour_of(event.envelope.received_at), event.envelope.source), []).append(event)
        keys = []
        for (hour, source), group in sorted(groups.items()):
            key = object_key(hour, source, written, batch_id)
            self.s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=encode(group),
                ContentType=CONTENT_TYPE,
                ContentEncoding="gzip",
            )
            keys.append(key)
        return keys
