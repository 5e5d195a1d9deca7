"""Replay: put archived events back on the events queue, so today's mappings route them again.

Each event goes back as the archive holds it, with `Envelope.replay` set (`{"id": the replay's id,
"mappings": [one mapping] or None}`): the route stage routes it through those mappings only and
never archives it again. Job keys are deterministic, so a job already delivered is not sent twice:
its delivered-record stops it at the deliver stage.

Events go ten per SendMessageBatch, paced at `rate` messages a second, so a replay of a day is not
a retry storm. Progress is kept in `.bridge/replays/<id>.json` (the window and filters, and the
archive objects done), written after each object: an interrupted replay resumes where it stopped;
at worst the events of one object go twice, which the keys absorb.

A dry run sends nothing: it renders each event through today's mappings and counts, per mapping,
the jobs that would be new, those already delivered (a COMPLETED delivered-record under the key),
those skipped (`--mapping` names another) and those that would fail to render.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from timeline_bridge import aws
from timeline_bridge.archive import ArchivedEvent
from timeline_bridge.models import Envelope, utc_now_iso

from timeline_bridge_tools.history import (
    EventFilter,
    History,
    Window,
    archive_objects,
    archived_events,
    read_object,
)
from timeline_bridge_tools.local.state import state_dir

REPLAYS_DIR = "replays"
DEFAULT_RATE = 50.0  # messages a second
SEND_ATTEMPTS = 3  # a message the queue refuses is sent again this often before the replay stops


def new_id(now: datetime | None = None) -> str:
    return f"rp-{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"


@dataclass
class Progress:
    """One replay: what it covers, and the archive objects it has sent."""

    id: str
    since: str
    until: str
    source: str | None = None
    event_type: str | None = None
    mapping: str | None = None
    started_at: str = field(default_factory=utc_now_iso)
    done: list[str] = field(default_factory=list)  # archive object keys sent
    sent: int = 0  # events sent

    @property
    def where(self) -> EventFilter:
        window = Window(datetime.fromisoformat(self.since), datetime.fromisoformat(self.until))
        return EventFilter(window, self.source, self.event_type)

    @staticmethod
    def path(replay_id: str, root: str | Path | None = None) -> Path:
        return state_dir(root) / REPLAYS_DIR / f"{replay_id}.json"

    def save(self, root: str | Path | None = None) -> Path:
        path = self.path(self.id, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        tmp.replace(path)  # a reader never sees half a file
        return path

    @classmethod
    def load(cls, replay_id: str, root: str | Path | None = None) -> Progress:
        path = cls.path(replay_id, root)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"no replay {replay_id!r} to resume ({path}: {exc})") from None
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def replayed(event: ArchivedEvent, replay_id: str, mapping: str | None) -> Envelope:
    """The archived envelope, marked as put back by replay `replay_id`."""
    envelope = Envelope.from_json(event.envelope.to_json())
    envelope.replay = {"id": replay_id, "mappings": [mapping] if mapping else None}
    return envelope


class Pace:
    """At most `rate` messages a second, averaged from the first send."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("the rate must be more than 0 messages a second")
        self.rate, self.clock, self.sleep = rate, clock, sleep
        self.started: float | None = None
        self.counted = 0

    def wait(self, messages: int) -> None:
        """Return once `messages` more may go."""
        now = self.clock()
        if self.started is None:
            self.started = now
        due = self.started + self.counted / self.rate
        if due > now:
            self.sleep(due - now)
        self.counted += messages


@dataclass
class ReplayReport:
    id: str
    objects: int = 0  # archive objects in the window
    objects_done: int = 0
    sent: int = 0
    complete: bool = False
    error: str | None = None


def run(
    history: History,
    progress: Progress,
    *,
    rate: float = DEFAULT_RATE,
    source_of_mapping: str | None = None,
    root: str | Path | None = None,
    on_progress: Callable[[ReplayReport], None] | None = None,
    pace: Pace | None = None,
) -> ReplayReport:
    """Send the events of `progress`'s window, object by object, skipping the objects it has done;
    `source_of_mapping` (the source of `--mapping`) narrows them to the events that mapping reads."""
    deployment = history.deployment
    where = progress.where
    source = progress.source or source_of_mapping
    keys = archive_objects(history.s3, deployment.bucket, where.window, source)
    report = ReplayReport(progress.id, objects=len(keys), sent=progress.sent)
    done = set(progress.done)
    report.objects_done = sum(1 for k in keys if k in done)
    pace = pace or Pace(rate)
    for key in keys:
        if key in done:
            continue
        envelopes = [
            replayed(event, progress.id, progress.mapping)
            for event in read_object(history.s3, deployment.bucket, key)
            if where.matches(event.envelope) and (source is None or event.envelope.source == source)
        ]
        try:
            _send(history.sqs, deployment.events_queue_url, envelopes, pace)
        except RuntimeError as exc:
            report.error = f"{key}: {exc}"
            return report
        progress.done.append(key)
        progress.sent += len(envelopes)
        progress.save(root)
        report.objects_done += 1
        report.sent = progress.sent
        if on_progress:
            on_progress(report)
    report.complete = True
    return report


def _send(sqs: Any, queue_url: str, envelopes: list[Envelope], pace: Pace) -> None:
    """SendMessageBatch, ten at a time under the pace; refused messages are sent again."""
    for start in range(0, len(envelopes), 10):
        entries = [{"MessageBody": e.to_json()} for e in envelopes[start : start + 10]]
        for _attempt in range(SEND_ATTEMPTS):
            pace.wait(len(entries))
            failed = aws.send_message_batches(sqs, queue_url, entries)
            entries = [entries[i] for i in failed]
            if not entries:
                break
        else:
            raise RuntimeError(f"{len(entries)} event(s) not accepted by the events queue")


# --- dry run -------------------------------------------------------------------------------------


@dataclass
class MappingCounts:
    new: int = 0
    delivered: int = 0  # already delivered: not sent again
    skipped: int = 0  # filtered out by --mapping
    errors: int = 0  # would not render: dead-lettered at route


@dataclass
class DryRun:
    events: int = 0
    mappings: dict[str, MappingCounts] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # the first render errors, for a person

    def count(self, mapping: str) -> MappingCounts:
        return self.mappings.setdefault(mapping, MappingCounts())

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "mappings": {name: asdict(c) for name, c in sorted(self.mappings.items())},
            "errors": self.errors,
        }


MAX_ERRORS_SHOWN = 10


def dry_run(
    history: History,
    where: EventFilter,
    mapping_set: Any,
    *,
    mapping: str | None = None,
    enrich: Any = None,
) -> DryRun:
    """What a replay of `where` through `mapping_set` (only `mapping`, when given) would do."""
    from timeline_bridge.errors import RetryLaterError
    from timeline_bridge.mapping.engine import MappingError, MappingSet, RenderFailure

    chosen = mapping_set.get(mapping) if mapping else None
    report = DryRun()
    # `--mapping`: only the events of the source that mapping reads.
    narrowed = EventFilter(
        where.window, where.source or (chosen.source if chosen else None), where.event_type
    )
    for _key, event in archived_events(history.s3, history.deployment.bucket, narrowed):
        envelope = event.envelope
        report.events += 1
        rendering = MappingSet([chosen]) if chosen else mapping_set
        if chosen:
            for other in mapping_set.for_source(envelope.source):
                try:
                    applies = other is not chosen and other.applies_to(other.context(envelope))
                except MappingError:
                    applies = False
                if applies:
                    report.count(other.name).skipped += 1
        try:
            outcomes = rendering.render_jobs(envelope, enrich)
        except RetryLaterError as exc:
            _note(report, f"{envelope.source} {envelope.event_id}: enrichment cannot run now: {exc}")
            continue
        for outcome in outcomes:
            counts = report.count(
                outcome.mapping.name if isinstance(outcome, RenderFailure) else outcome.mapping
            )
            if isinstance(outcome, RenderFailure):
                counts.errors += 1
                _note(report, str(outcome.error))
                continue
            record = history.delivered_record(outcome.target, outcome.key)
            if record is not None and record[0] == "COMPLETED":
                counts.delivered += 1
            else:
                counts.new += 1
    return report


def _note(report: DryRun, error: str) -> None:
    if len(report.errors) < MAX_ERRORS_SHOWN:
        report.errors.append(error)
