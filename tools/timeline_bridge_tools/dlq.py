"""Dead letters: list, show and redrive them, on the local runtime or on a deployed stack.

A target DLQ holds `DeliveryJob`s whose `dead_letter` says why (reason, status, provider code and
message, attempts, mapping file); SQS's own redrive also lands messages there that no worker could
read. `EventsDeadLetterQueue` holds source envelopes the route stage could not handle.

Redrive puts each dead letter back where it can succeed after a fix:
- a delivery job → its delivery queue, with a fresh retry budget (`retries`, `throttled` and
  `not_before` reset; `attempts`, first/last failure times and the Stora key generation kept;
  `redrives` + 1). The delivered-record still stops anything already delivered from being sent
  twice.
- a route-stage dead letter (mapping error: it carries the source envelope) → the events queue,
  so the event is routed again through the fixed mapping.
- anything else (unreadable messages, events DLQ) → back to its source queue unchanged.
Each message is sent first and deleted from the DLQ only after, so a failure loses nothing; both
go ten at a time (SendMessageBatch, DeleteMessageBatch).

A `DeadLetterFilter` narrows list and redrive to some dead letters (by mapping, code, HTTP status,
failure time). A filtered redrive holds the letters it does not move out of sight until the pass is
over, so it reads each one once, then makes them visible again; a dry run holds every letter and
moves none.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from timeline_bridge import TARGETS, aws
from timeline_bridge.delivery.outcomes import details_text
from timeline_bridge.models import DeliveryJob
from timeline_bridge.observability import logger

EVENTS = "events"
QUEUE_NAMES = (*TARGETS, EVENTS)
PEEK_VISIBILITY = 30  # seconds a listed message stays hidden before it is released again
MOVE_VISIBILITY = 120  # seconds a message being redriven stays hidden (a failed move comes back)
DURATION = re.compile(r"(\d+)\s*([smhdw])")
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True, slots=True)
class QueuePair:
    """A source queue and its dead-letter queue."""

    name: str  # stora | hubspot | matter | applied | events
    queue_url: str
    dlq_url: str


@dataclass
class DeadLetter:
    """One message in a DLQ."""

    queue: str
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, Any] = field(default_factory=dict)
    message_attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    @property
    def job(self) -> DeliveryJob | None:
        if self.queue == EVENTS or self.data is None:  # not a JSON object: no job
            return None
        try:
            return DeliveryJob.from_json(self.body)
        except (TypeError, ValueError):
            return None

    def summary(self) -> dict[str, Any]:
        """The fields a person scans a list for."""
        data = self.data or {}
        reason = data.get("dead_letter") or {}
        receives = self.attributes.get("ApproximateReceiveCount")
        if self.queue == EVENTS or not data.get("key"):
            return {
                "queue": self.queue,
                "message_id": self.message_id,
                "key": data.get("event_id") or data.get("key"),
                "mapping": None,
                "reason": "route_failed" if self.queue == EVENTS else "unreadable",
                "stage": "route" if self.queue == EVENTS else None,
                "status": None,
                "provider_code": None,
                "provider_message": (data.get("source") and f"{data.get('source')} {data.get('event_type')}")
                or self.body[:120],
                "details": "",
                "attempts": int(receives) if receives else None,
                "dead_lettered_at": None,
            }
        return {
            "queue": self.queue,
            "message_id": self.message_id,
            "key": data.get("key"),
            "mapping": data.get("mapping"),
            "reason": reason.get("reason") or "max_receives",
            "stage": reason.get("stage"),
            "status": reason.get("status"),
            "provider_code": reason.get("provider_code") or reason.get("field"),
            "provider_message": reason.get("provider_message")
            or reason.get("message")
            or reason.get("detail"),
            # The provider's reason per field (Stora's `value at /contact is required by the
            # template`): the message alone rarely says what to fix.
            "details": details_text(reason.get("details")),
            "attempts": reason.get("attempts", data.get("attempts")),
            "dead_lettered_at": reason.get("dead_lettered_at") or reason.get("at"),
        }

    def full(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "message_id": self.message_id,
            "attributes": self.attributes,
            "message_attributes": {k: v.get("StringValue") for k, v in self.message_attributes.items()},
            "body": self.data if self.data is not None else self.body,
        }


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time as an aware datetime (UTC when it names no zone); None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """`--since`: an ISO 8601 time, or a duration (`90s`, `30m`, `2h`, `7d`, `2w`) meaning that long
    before `now`. Raises ValueError for anything else."""
    value = text.strip()
    duration = DURATION.fullmatch(value.lower())
    if duration:
        amount, unit = int(duration.group(1)), duration.group(2)
        if amount <= 0:
            raise ValueError(f"{text!r}: a duration must be more than 0")
        return (now or datetime.now(UTC)) - timedelta(**{DURATION_UNITS[unit]: amount})
    when = parse_time(value)
    if when is None:
        raise ValueError(
            f"{text!r} is neither an ISO 8601 time (2026-11-23T09:00:00Z) nor a duration (30m, 2h, 7d)"
        )
    return when


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters to list or redrive; every field given must hold, none given matches all.

    Read from the reason record, as `DeadLetter.summary()` shows it: `mapping` is the mapping name,
    `code` the provider's error code or the reason (`invalid_content`, `retries_exhausted`,
    `mapping_error`; any case), `status` the provider's HTTP status, `since` the earliest time the
    letter was dead-lettered. A letter without the field (an events-queue or unreadable message has
    no mapping, status or time) does not match a filter on it.
    """

    mapping: str | None = None
    code: str | None = None
    status: int | None = None
    since: datetime | None = None

    @property
    def everything(self) -> bool:
        return self.mapping is None and self.code is None and self.status is None and self.since is None

    def matches(self, dead_letter: DeadLetter) -> bool:
        """True when `dead_letter` carries every field this filter names, with the value asked for."""
        if self.everything:
            return True
        summary = dead_letter.summary()
        if self.mapping is not None and summary["mapping"] != self.mapping:
            return False
        if self.code is not None:
            reason = (dead_letter.data or {}).get("dead_letter") or {}
            codes = {str(c).lower() for c in (summary["reason"], reason.get("provider_code")) if c}
            if self.code.lower() not in codes:
                return False
        if self.status is not None and str(summary["status"]) != str(self.status):
            return False
        if self.since is not None:
            failed_at = parse_time(summary["dead_lettered_at"])
            if failed_at is None or failed_at < self.since:
                return False
        return True


@dataclass
class RedriveReport:
    queue: str
    moved: int = 0  # in a dry run: would move
    to_events: int = 0  # route-stage dead letters sent back through routing
    failed: int = 0
    skipped: int = 0  # not matching the filter: left in the DLQ
    dry_run: bool = False
    errors: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # the delivery jobs moved back, by key


# --- where the queues are ----------------------------------------------------------------------


def stack_outputs(stack: str, cloudformation: Any = None) -> dict[str, str]:
    """A deployed stack's outputs, by output key."""
    cfn = cloudformation or aws.new_client("cloudformation")
    stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def stack_queues(
    stack: str, cloudformation: Any = None, *, outputs: dict[str, str] | None = None
) -> dict[str, QueuePair]:
    """Queue URLs from a deployed stack's outputs (`<Target>DeliveryQueueUrl`, ...)."""
    if outputs is None:
        outputs = stack_outputs(stack, cloudformation)
    pairs: dict[str, QueuePair] = {}
    for target in TARGETS:
        prefix = target.capitalize()  # the stack's outputs: StoraDeliveryQueueUrl, ...
        queue, dlq = (
            outputs.get(f"{prefix}DeliveryQueueUrl"),
            outputs.get(f"{prefix}DeliveryDeadLetterQueueUrl"),
        )
        if queue and dlq:
            pairs[target] = QueuePair(target, queue, dlq)
    if outputs.get("EventsQueueUrl") and outputs.get("EventsDeadLetterQueueUrl"):
        pairs[EVENTS] = QueuePair(EVENTS, outputs["EventsQueueUrl"], outputs["EventsDeadLetterQueueUrl"])
    if not pairs:
        raise RuntimeError(f"stack {stack} has no queue outputs (is it a timeline-bridge stack?)")
    return pairs


def env_queues() -> dict[str, QueuePair]:
    """Queue URLs from the environment (<TARGET>_QUEUE_URL/_DLQ_URL, EVENTS_QUEUE_URL/_DLQ_URL)."""
    pairs: dict[str, QueuePair] = {}
    for target in TARGETS:
        queue = os.environ.get(f"{target.upper()}_QUEUE_URL")
        dlq = os.environ.get(f"{target.upper()}_DLQ_URL")
        if queue and dlq:
            pairs[target] = QueuePair(target, queue, dlq)
    events, events_dlq = os.environ.get("EVENTS_QUEUE_URL"), os.environ.get("EVENTS_DLQ_URL")
    if events and events_dlq:
        pairs[EVENTS] = QueuePair(EVENTS, events, events_dlq)
    return pairs


def local_queues() -> dict[str, QueuePair]:
    """The running `bridge dev` (found through `.bridge/dev.json`), else the environment."""
    from timeline_bridge_tools.local.state import apply_env, read_state

    state = read_state()
    if state:
        apply_env(state)
    pairs = env_queues()
    if not pairs:
        raise RuntimeError(
            "no queues found: start `bridge dev` in this folder, set <TARGET>_QUEUE_URL and "
            "<TARGET>_DLQ_URL, or pass --stack NAME"
        )
    return pairs


def select(pairs: dict[str, QueuePair], wanted: str | None) -> list[QueuePair]:
    if wanted is None:
        return [pairs[n] for n in QUEUE_NAMES if n in pairs]
    if wanted not in QUEUE_NAMES:
        raise ValueError(f"unknown queue {wanted!r} (one of: {', '.join(QUEUE_NAMES)})")
    if wanted not in pairs:
        raise RuntimeError(f"no {wanted} queues configured")
    return [pairs[wanted]]


# --- reading -----------------------------------------------------------------------------------


def depth(pair: QueuePair, sqs: Any = None) -> int:
    """Dead letters waiting (visible + being looked at)."""
    client = sqs or aws.new_client("sqs")
    attrs = client.get_queue_attributes(
        QueueUrl=pair.dlq_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(
        attrs.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def _receive(pair: QueuePair, sqs: Any, visibility: int, count: int = 10) -> list[DeadLetter]:
    answer = sqs.receive_message(
        QueueUrl=pair.dlq_url,
        MaxNumberOfMessages=max(1, min(10, count)),
        VisibilityTimeout=visibility,
        WaitTimeSeconds=0,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    return [
        DeadLetter(
            queue=pair.name,
            message_id=m["MessageId"],
            receipt_handle=m["ReceiptHandle"],
            body=m.get("Body", ""),
            attributes=m.get("Attributes") or {},
            message_attributes=m.get("MessageAttributes") or {},
        )
        for m in answer.get("Messages", [])
    ]


def _release(pair: QueuePair, sqs: Any, letters: list[DeadLetter]) -> None:
    """Make looked-at messages visible again at once."""
    for start in range(0, len(letters), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": dl.receipt_handle, "VisibilityTimeout": 0}
            for i, dl in enumerate(letters[start : start + 10])
        ]
        if entries:
            sqs.change_message_visibility_batch(QueueUrl=pair.dlq_url, Entries=entries)


def peek(
    pair: QueuePair, *, limit: int = 100, sqs: Any = None, where: DeadLetterFilter | None = None
) -> list[DeadLetter]:
    """Up to `limit` dead letters (those `where` matches, if given), without removing them (they
    are hidden briefly, then released)."""
    client = sqs or aws.new_client("sqs")
    filtering = where is not None and not where.everything
    seen: dict[str, DeadLetter] = {}
    found: list[DeadLetter] = []
    try:
        while len(found) < limit:
            # A filter may skip any number of letters: read full batches until the queue runs dry.
            batch = _receive(pair, client, PEEK_VISIBILITY, 10 if filtering else limit - len(found))
            fresh = [dl for dl in batch if dl.message_id not in seen]
            if not fresh:
                break
            for dl in fresh:
                seen[dl.message_id] = dl
                if len(found) < limit and (where is None or where.matches(dl)):
                    found.append(dl)
    finally:
        _release(pair, client, list(seen.values()))
    return found


def find(pairs: list[QueuePair], ident: str, *, sqs: Any = None, limit: int = 1000) -> DeadLetter | None:
    """The dead letter whose message id or job key is (or starts with) `ident`."""
    for pair in pairs:
        for dl in peek(pair, limit=limit, sqs=sqs):
            key = (dl.data or {}).get("key") or ""
            if ident in (dl.message_id, key) or (
                len(ident) >= 6 and (key.startswith(ident) or dl.message_id.startswith(ident))
            ):
                return dl
    return None


# --- redrive -----------------------------------------------------------------------------------


def reset_for_redrive(job: DeliveryJob) -> DeliveryJob:
    """The job with a fresh budget: history kept, counters for this round reset."""
    job.dead_letter = None
    job.not_before = None
    job.retries = 0
    job.throttled = 0
    job.redrives += 1
    return job


def destination(dl: DeadLetter, pair: QueuePair, pairs: dict[str, QueuePair]) -> tuple[str, str, str]:
    """(queue url, body, kind) a dead letter goes back to; kind is "delivery", "events" or "as_is"."""
    if pair.name == EVENTS:
        return pair.queue_url, dl.body, "as_is"
    job = dl.job
    if job is None:
        return pair.queue_url, dl.body, "as_is"
    reason = job.dead_letter or {}
    envelope = reason.get("envelope")
    if reason.get("stage") == "route" and isinstance(envelope, dict):
        events = pairs.get(EVENTS)
        if events is None:
            raise RuntimeError("a route-stage dead letter needs the events queue, which is not configured")
        return events.queue_url, json.dumps(envelope, separators=(",", ":"), ensure_ascii=False), "events"
    return pair.queue_url, reset_for_redrive(job).to_json(), "delivery"


def redrive(
    pair: QueuePair,
    pairs: dict[str, QueuePair],
    *,
    limit: int | None = None,
    sqs: Any = None,
    where: DeadLetterFilter | None = None,
    dry_run: bool = False,
) -> RedriveReport:
    """Move up to `limit` (default: every message there now) dead letters of `pair` back, ten at a
    time: one SendMessageBatch per destination, then one DeleteMessageBatch for those sent.

    With `where`, only the letters it matches move; the others are counted as skipped and stay in
    the DLQ. With `dry_run`, nothing moves: `moved` counts what would. Letters read but not moved
    are made visible again when the pass ends."""
    client = sqs or aws.new_client("sqs")
    report = RedriveReport(pair.name, dry_run=dry_run)
    filtering = where is not None and not where.everything
    there = depth(pair, client) if limit is None or filtering else 0
    budget = there if limit is None else limit  # letters to move
    # Letters to read: a filter may skip any of them, so every one there now. Jobs that fail again
    # while this runs come back to the DLQ as new messages: the bound keeps this finite.
    scan = there if filtering else budget
    held: dict[str, DeadLetter] = {}  # read, not moved: hidden until the pass is over
    received = 0
    try:
        while received < scan and report.moved + report.failed < budget:
            batch = _receive(pair, client, MOVE_VISIBILITY, scan - received)
            if not batch:
                break
            received += len(batch)
            movable: list[DeadLetter] = []
            for dl in batch:
                if dl.message_id in held:  # hidden longer than MOVE_VISIBILITY: already counted
                    held[dl.message_id] = dl
                    continue
                if where is not None and not where.matches(dl):
                    report.skipped += 1
                    held[dl.message_id] = dl
                elif report.moved + report.failed + len(movable) >= budget:
                    held[dl.message_id] = dl  # matches, but over --limit
                else:
                    movable.append(dl)
            if dry_run:
                _count(pair, pairs, movable, report)
                held.update((dl.message_id, dl) for dl in movable)
            else:
                _move(pair, pairs, client, movable, report)
    finally:
        _release(pair, client, list(held.values()))
    return report


def _routed(
    pair: QueuePair, pairs: dict[str, QueuePair], letters: list[DeadLetter], report: RedriveReport
) -> list[tuple[DeadLetter, str, str, str]]:
    """Each letter with its destination `(letter, queue URL, body, kind)`; a letter that can go
    nowhere is counted as failed, with the reason."""
    routed = []
    for dl in letters:
        try:
            routed.append((dl, *destination(dl, pair, pairs)))
        except Exception as exc:
            report.failed += 1
            report.errors.append(f"{dl.message_id}: {exc}")
    return routed


def _count(
    pair: QueuePair, pairs: dict[str, QueuePair], letters: list[DeadLetter], report: RedriveReport
) -> None:
    """A dry run's tally: where each letter would go, and which could not go anywhere."""
    for _dl, _url, _body, kind in _routed(pair, pairs, letters, report):
        report.moved += 1
        if kind == "events":
            report.to_events += 1


def _move(
    pair: QueuePair,
    pairs: dict[str, QueuePair],
    client: Any,
    letters: list[DeadLetter],
    report: RedriveReport,
) -> None:
    """Send `letters` to their destinations (one SendMessageBatch per queue), then delete those sent."""
    by_url: dict[str, list[tuple[DeadLetter, dict[str, Any], str]]] = {}
    for dl, url, body, kind in _routed(pair, pairs, letters, report):
        entry: dict[str, Any] = {"MessageBody": body}
        kept = {k: v for k, v in dl.message_attributes.items() if k not in ("reason",)}
        if kept and kind != "events":
            entry["MessageAttributes"] = {
                k: {key: v[key] for key in ("DataType", "StringValue", "BinaryValue") if key in v}
                for k, v in kept.items()
            }
        by_url.setdefault(url, []).append((dl, entry, kind))
    sent: list[tuple[DeadLetter, str]] = []
    for url, moves in by_url.items():
        unsent = set(aws.send_message_batches(client, url, [entry for _, entry, _ in moves]))
        for position, (dl, _, kind) in enumerate(moves):
            if position in unsent:
                report.failed += 1
                report.errors.append(f"{dl.message_id}: not accepted by {url}")
            else:
                sent.append((dl, kind))
    # Deleted only once it is on its queue: a failure here leaves a copy in the DLQ, never none.
    deleted = _delete(pair, client, [dl for dl, _ in sent])
    for dl, kind in sent:
        if dl.message_id not in deleted:
            report.failed += 1
            report.errors.append(f"{dl.message_id}: sent, but not deleted from the DLQ")
            continue
        report.moved += 1
        if kind == "events":
            report.to_events += 1
        elif key := (dl.data or {}).get("key"):
            report.keys.append(str(key))


def _delete(pair: QueuePair, sqs: Any, letters: list[DeadLetter]) -> set[str]:
    """DeleteMessageBatch `letters` from the DLQ; returns the message ids deleted."""
    deleted: set[str] = set()
    for start in range(0, len(letters), 10):
        chunk = letters[start : start + 10]
        try:
            answer = sqs.delete_message_batch(
                QueueUrl=pair.dlq_url,
                Entries=[{"Id": str(i), "ReceiptHandle": dl.receipt_handle} for i, dl in enumerate(chunk)],
            )
        except Exception as exc:  # reported per message by the caller
            logger.warning("dead letters not deleted", extra={"queue": pair.dlq_url, "error": str(exc)[:300]})
            continue
        deleted.update(chunk[int(ok["Id"])].message_id for ok in answer.get("Successful") or ())
    return deleted
