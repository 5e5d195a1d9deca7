"""Event history: what became of each source event the bridge accepted, derived from what the
pipeline keeps anyway, with no write of its own:

- the event archive (`timeline_bridge.archive`): every event route received, when, and the jobs it
  became (mapping, target, key) or the jobs dead-lettered at route, with their reason; an event
  with neither is unmatched. Only the partitions (date, hour, source) of the asked window are read.
- the delivered-records: a COMPLETED record under a job's key says it was delivered, with the
  provider's id, the attempts and the time; a claim still in progress means a worker is on it.
- the target DLQs (`dlq.peek`, nothing removed): a job there is dead-lettered, its reason record
  says why.

A job's state is `delivered` (a COMPLETED record: it wins, a replay may have delivered what once
failed), else `dead` (in a DLQ, or dead-lettered at route), else `pending` (queued, retrying or
in progress). An event is `unmatched` without jobs, `dead` when any job is, `delivered` when all
are, `pending` otherwise. Jobs a replay made through mappings added since (replays are not
archived) are found by probing each current mapping's deterministic key for the event.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from timeline_bridge import TARGETS, archive, aws
from timeline_bridge.archive import ArchivedEvent, ArchivedJob
from timeline_bridge.delivery.records import DeliveredRecords
from timeline_bridge.models import Envelope

from timeline_bridge_tools import dlq
from timeline_bridge_tools.dlq import QueuePair

ARCHIVE_BUCKET_ENV = "EVENTS_ARCHIVE_BUCKET"
STATUSES = ("delivered", "dead", "unmatched", "pending")
DLQ_PEEK_LIMIT = 1000  # dead letters read per target DLQ for one query
READERS = 8  # S3 objects and delivered-records read side by side
_PARTITION = re.compile(r"date=(\d{4}-\d{2}-\d{2})/hour=(\d{2})/source=([^/]+)/")


# --- where the history lives ---------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """One running bridge: its archive bucket, idempotency table, events queue and queue pairs."""

    bucket: str
    table: str
    events_queue_url: str
    queues: dict[str, QueuePair]

    @property
    def dead_letter_queues(self) -> list[QueuePair]:
        return [self.queues[t] for t in TARGETS if t in self.queues]


def local_deployment() -> Deployment:
    """The `bridge dev` running from this folder (`.bridge/dev.json`), else the environment."""
    pairs = dlq.local_queues()  # points this process's settings and clients at it
    return _deployment(
        pairs,
        os.environ.get(ARCHIVE_BUCKET_ENV, ""),
        os.environ.get("IDEMPOTENCY_TABLE", ""),
        f"{ARCHIVE_BUCKET_ENV} is not set (a bridge dev with the event archive sets it)",
    )


def stack_deployment(stack: str, cloudformation: Any = None) -> Deployment:
    """A deployed stack, from its outputs."""
    outputs = dlq.stack_outputs(stack, cloudformation)
    return _deployment(
        dlq.stack_queues(stack, outputs=outputs),
        outputs.get("EventsArchiveBucketName", ""),
        outputs.get("IdempotencyTableName", ""),
        f"stack {stack} has no EventsArchiveBucketName output (deployed before the event archive?)",
    )


def _deployment(pairs: dict[str, QueuePair], bucket: str, table: str, no_bucket: str) -> Deployment:
    if not bucket:
        raise RuntimeError(f"no event archive: {no_bucket}")
    if not table:
        raise RuntimeError("no idempotency table (IDEMPOTENCY_TABLE / IdempotencyTableName)")
    if dlq.EVENTS not in pairs:
        raise RuntimeError("no events queue (EVENTS_QUEUE_URL / EventsQueueUrl)")
    return Deployment(bucket, table, pairs[dlq.EVENTS].queue_url, pairs)


# --- the time window -----------------------------------------------------------------------------


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """`--since` / `--until`: ISO 8601, or a duration back from now (`10m`, `2h`, `3d`)."""
    return dlq.parse_since(text, now=now)


@dataclass(frozen=True)
class Window:
    """Received times from `since` up to `until` (both UTC, inclusive)."""

    since: datetime
    until: datetime

    @classmethod
    def of(cls, since: str, until: str | None = None, *, now: datetime | None = None) -> Window:
        now = now or datetime.now(UTC)
        start = parse_when(since, now=now)
        end = parse_when(until, now=now) if until else now
        if end < start:
            raise ValueError(
                f"--until ({end:%Y-%m-%dT%H:%M:%SZ}) is before --since ({start:%Y-%m-%dT%H:%M:%SZ})"
            )
        return cls(start.astimezone(UTC), end.astimezone(UTC))

    def contains(self, iso_time: str) -> bool:
        when = dlq.parse_time(iso_time)
        return when is not None and self.since <= when <= self.until

    def prefixes(self, source: str | None = None) -> list[str]:
        """The archive prefixes to list: a whole day where the window covers it, else its hours."""
        first = self.since.replace(minute=0, second=0, microsecond=0)
        prefixes: list[str] = []
        day = first.replace(hour=0)
        while day <= self.until:
            if source is None and self.since <= day and day + timedelta(days=1) <= self.until:
                prefixes.append(f"{archive.PREFIX}date={day:%Y-%m-%d}/")
            else:
                hour = max(day, first)
                while hour < day + timedelta(days=1) and hour <= self.until:
                    prefixes.append(
                        archive.partition(hour, source)
                        if source
                        else f"{archive.PREFIX}date={hour:%Y-%m-%d}/hour={hour:%H}/"
                    )
                    hour += timedelta(hours=1)
            day += timedelta(days=1)
        return prefixes

    def holds_partition(self, key: str, source: str | None) -> bool:
        """Whether an archive object's partition (its received hour and source) can hold events
        of this window and source."""
        found = _PARTITION.search(key)
        if found is None:
            return False
        hour = datetime.fromisoformat(f"{found.group(1)}T{found.group(2)}:00:00+00:00")
        in_window = self.since.replace(minute=0, second=0, microsecond=0) <= hour <= self.until
        return in_window and (source is None or found.group(3) == source)


# --- the archive ---------------------------------------------------------------------------------


def archive_objects(s3: Any, bucket: str, window: Window, source: str | None = None) -> list[str]:
    """The keys of the archive objects in `window` (and `source`), oldest first."""
    keys: list[str] = []
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in window.prefixes(source):
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(
                o["Key"] for o in page.get("Contents") or () if window.holds_partition(o["Key"], source)
            )
    return sorted(keys, key=_written_order)


def _written_order(key: str) -> tuple[str, str]:
    """Received hour, then write time (each object's name starts with it)."""
    found = _PARTITION.search(key)
    hour = f"{found.group(1)}T{found.group(2)}" if found else ""
    return hour, key.rsplit("/", 1)[-1]


def read_object(s3: Any, bucket: str, key: str) -> list[ArchivedEvent]:
    return archive.decode(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@dataclass(frozen=True)
class EventFilter:
    """Which archived events a query or replay covers."""

    window: Window
    source: str | None = None
    event_type: str | None = None

    def matches(self, envelope: Envelope) -> bool:
        return (
            self.window.contains(envelope.received_at)
            and (self.source is None or envelope.source == self.source)
            and (self.event_type is None or envelope.event_type == self.event_type)
        )


def archived_events(
    s3: Any, bucket: str, where: EventFilter, keys: Sequence[str] | None = None
) -> Iterator[tuple[str, ArchivedEvent]]:
    """(object key, event) for every archived event `where` matches, object by object, oldest
    object first (the objects are read side by side)."""
    if keys is None:
        keys = archive_objects(s3, bucket, where.window, where.source)
    with ThreadPoolExecutor(READERS) as pool:
        for key, events in zip(keys, pool.map(lambda k: read_object(s3, bucket, k), keys), strict=True):
            for event in events:
                if where.matches(event.envelope):
                    yield key, event


# --- history -------------------------------------------------------------------------------------


@dataclass
class JobHistory:
    mapping: str
    target: str
    key: str
    state: str = "pending"  # delivered | dead | pending
    provider_id: str | None = None
    status: int | None = None  # the provider's HTTP status
    attempts: int | None = None
    delivered_at: str | None = None
    dead_lettered_at: str | None = None
    reason: dict[str, Any] | None = None  # the dead-letter reason record
    in_progress: bool = False  # a worker holds its claim now
    archived: bool = True  # False: found by its key under a mapping the archive line does not name

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class EventHistory:
    envelope: Envelope
    routed_at: str
    archive_key: str
    jobs: list[JobHistory] = field(default_factory=list)

    @property
    def status(self) -> str:
        states = {job.state for job in self.jobs}
        if not states:
            return "unmatched"
        if "dead" in states:
            return "dead"
        return "delivered" if states == {"delivered"} else "pending"

    def to_dict(self) -> dict[str, Any]:
        envelope = self.envelope
        return {
            "source": envelope.source,
            "name": envelope.name,
            "event_type": envelope.event_type,
            "event_id": envelope.event_id,
            "occurred_at": envelope.occurred_at,
            "received_at": envelope.received_at,
            "routed_at": self.routed_at,
            "status": self.status,
            "archive_object": self.archive_key,
            "jobs": [job.to_dict() for job in self.jobs],
            "event": envelope.event,
        }


class History:
    """Queries over one deployment's history. `mappings` (today's `MappingSet`, optional) lets it
    find the jobs replays made through mappings the archive does not name."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        mappings: Any = None,
        s3: Any = None,
        sqs: Any = None,
        dynamodb: Any = None,
        dlq_limit: int = DLQ_PEEK_LIMIT,
    ) -> None:
        self.deployment = deployment
        self.mappings = mappings
        self.s3 = s3 or aws.new_client("s3")
        self.sqs = sqs or aws.new_client("sqs")
        self.dynamodb = dynamodb or aws.new_client("dynamodb")
        self.dlq_limit = dlq_limit
        self._readers: dict[str, DeliveredRecords] = {}
        self._dead: dict[str, dlq.DeadLetter] | None = None

    # -- sources of truth ------------------------------------------------------------------------

    def delivered_record(self, target: str, key: str) -> tuple[str, dict[str, Any]] | None:
        """(status, result) of the delivered-record of job `key`, or None."""
        reader = self._readers.get(target)
        if reader is None:
            reader = DeliveredRecords(
                self.deployment.table, target, dynamodb=self.dynamodb, validate_payload=False
            )
            self._readers[target] = reader
        return reader.record({"key": key})

    def dead_letters(self) -> dict[str, dlq.DeadLetter]:
        """Job key → its dead letter, over every target DLQ (read once per History)."""
        if self._dead is None:
            found: dict[str, dlq.DeadLetter] = {}
            for pair in self.deployment.dead_letter_queues:
                for letter in dlq.peek(pair, limit=self.dlq_limit, sqs=self.sqs):
                    key = (letter.data or {}).get("key")
                    if isinstance(key, str):
                        found.setdefault(key, letter)
            self._dead = found
        return self._dead

    # -- queries ---------------------------------------------------------------------------------

    def events(
        self, where: EventFilter, *, status: str | None = None, limit: int | None = None
    ) -> list[EventHistory]:
        """The events `where` matches, newest first, with what became of them; only those in
        `status` when given, at most `limit`."""
        archived = sorted(
            archived_events(self.s3, self.deployment.bucket, where),
            key=lambda item: item[1].envelope.received_at,
            reverse=True,
        )
        found: list[EventHistory] = []
        chunk = max(50, limit or 0)
        for start in range(0, len(archived), chunk):
            for history in self.resolve(archived[start : start + chunk]):
                if status is None or history.status == status:
                    found.append(history)
                    if limit is not None and len(found) >= limit:
                        return found
        return found

    def find(self, ident: str, where: EventFilter) -> list[EventHistory]:
        """The events in `where` whose event id or one of whose job keys is `ident`."""
        hits = [
            (key, event)
            for key, event in archived_events(self.s3, self.deployment.bucket, where)
            if event.envelope.event_id == ident or ident in {job.key for job in self._candidates(event)}
        ]
        return self.resolve(hits)

    def resolve(self, archived: Iterable[tuple[str, ArchivedEvent]]) -> list[EventHistory]:
        """The history of each archived event (its delivered-records read side by side)."""
        dead = self.dead_letters()
        items = list(archived)
        with ThreadPoolExecutor(READERS) as pool:
            return list(pool.map(lambda item: self._history(item[0], item[1], dead), items))

    def _candidates(self, event: ArchivedEvent) -> list[JobHistory]:
        """The event's archived jobs, then one per current mapping of its source the line does not
        name (kept only where a record or dead letter shows a replay made it)."""
        jobs = [JobHistory(j.mapping, j.target, j.key) for j in event.jobs]
        jobs += [JobHistory(j.mapping, j.target, j.key) for j in event.dead_letters]
        named = {j.mapping for j in jobs}
        if self.mappings is not None:
            envelope = event.envelope
            for mapping in self.mappings.for_source(envelope.source):
                if mapping.name not in named:
                    jobs.append(
                        JobHistory(mapping.name, mapping.target, mapping.key(envelope), archived=False)
                    )
        return jobs

    def _history(
        self, archive_key: str, event: ArchivedEvent, dead: dict[str, dlq.DeadLetter]
    ) -> EventHistory:
        at_route: dict[str, ArchivedJob] = {j.key: j for j in event.dead_letters}
        jobs = []
        for job in self._candidates(event):
            record = self.delivered_record(job.target, job.key)
            letter = dead.get(job.key)
            if not job.archived and record is None and letter is None:
                continue  # that mapping never made a job of this event
            _settle(job, record, letter, at_route.get(job.key))
            jobs.append(job)
        return EventHistory(event.envelope, event.routed_at, archive_key, jobs)


def _settle(
    job: JobHistory,
    record: tuple[str, dict[str, Any]] | None,
    letter: dlq.DeadLetter | None,
    at_route: ArchivedJob | None,
) -> None:
    """Fill in a job's state from its record, its dead letter and its archived route outcome."""
    if record is not None and record[0] == "COMPLETED":
        result = record[1]
        job.state = "delivered"
        job.provider_id = result.get("provider_id")
        job.status = result.get("status")
        job.attempts = result.get("attempts")
        job.delivered_at = result.get("delivered_at")
    elif letter is not None:
        reason = dict((letter.data or {}).get("dead_letter") or {})
        reason.pop("envelope", None)  # the event itself: shown once, with the event
        summary = letter.summary()
        job.state = "dead"
        job.reason = reason or {"reason": summary["reason"]}
        job.status = summary["status"]
        job.attempts = summary["attempts"]
        job.dead_lettered_at = summary["dead_lettered_at"]
    elif at_route is not None:
        job.state = "dead"
        job.reason = {"reason": at_route.reason, "stage": "route"}
    else:
        job.in_progress = record is not None and record[0] == "INPROGRESS"
