"""Ingest: one webhook request in, verified and deduped source events out on the events queue.

Order of checks, each answered before the next runs:
1. body over `MAX_BODY_BYTES` → 413 (before decoding anything);
2. no secret configured → 503 (fail closed);
3. bad or missing signature, stale or future timestamp → 401 (before the body is parsed);
4. malformed body → 400; unknown event types → 2xx and a log line (senders retry on 4xx);
5. each source event is claimed in the dedupe table on its own identity (Powertools idempotency,
   DynamoDB, 7 days): a completed claim is a duplicate and is not enqueued again;
6. new events go to the events queue (SendMessageBatch, 10 per call, the `Failed` list checked);
7. 2xx only once every new event is on the queue, and only then is its claim written (COMPLETED).
   Otherwise 5xx (`EnqueueError`): the events that did not reach the queue have no record, so the
   sender's retry goes through.

A dedupe-table failure is a 5xx too: an event is never enqueued without its claim.

Slack interactivity is the exception to 5xx: Slack never retries a click, and a 5xx only shows a
warning icon. A 200 whose text tells the user to click again is the only useful answer.

A source may pass verified requests on to another receiver (Slack: `SLACK_FORWARD_URL`). The
forward starts once the request is verified and parsed, runs beside dedupe and enqueue, and its
answer replaces the bridge's own only when the request was recorded: a refusal (5xx, or the
click-again text) stays the bridge's, so nothing is acknowledged that was not recorded.

The idempotency module (and its jmespath) is imported on first use, inside `IdempotencyStore`:
a Slack ack has 3 s, and cold-start time is benchmarked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from timeline_bridge import sources
from timeline_bridge.claims import ClaimState, ClaimStore
from timeline_bridge.errors import (
    EnqueueError,
    IngestError,
    MalformedBodyError,
    PayloadTooLargeError,
)
from timeline_bridge.http import WebhookRequest, error_response, json_response, text_response
from timeline_bridge.models import Envelope, utc_now_iso
from timeline_bridge.observability import logger, metrics, safe_headers
from timeline_bridge.sources.base import Clock, ParsedRequest, Source, SourceEvent
from timeline_bridge.wiring import Dependencies, Stage

# Longer than every sender's retry horizon (HubSpot 24 h, Standard Webhooks ~3 days) plus a DLQ
# redrive window. A source whose sender redelivers for longer says so (`Source.dedupe_seconds`).
DEDUPE_SECONDS = 7 * 24 * 3600
# Without a Lambda context (local runs, tests), an unfinished claim may be taken over after this.
DEFAULT_REMAINING_MS = 30_000
SQS_BATCH_SIZE = 10
SQS_MAX_BYTES = 256 * 1024  # per message and per SendMessageBatch call
# Claims and sends run in parallel: a HubSpot batch of 100 is 100 conditional writes, and HubSpot
# waits 5 s at most. boto3 clients are thread-safe.
MAX_WORKERS = 16


# --- dedupe -----------------------------------------------------------------------------------


class IdempotencyStore:
    """Claims on source-event identities: one `claims.ClaimStore` per scope (source, or generic
    endpoint), so identities of different senders never collide. Records: key
    `ingest.<scope>#<md5 of the identity>`, the payload hash of the event's fingerprint (same id
    with another body is caught), written once, COMPLETED, when the event is on the queue.

    A claim only reads (`hold_while_working=False`): one write per event instead of two. Two copies
    of one event arriving at the same moment may then both be enqueued; they become the same job
    keys, and the deliver stage claims each job before sending it, so the copy is never sent.
    """

    def __init__(self, table: str, *, client: Any) -> None:
        self.table = table
        self.client = client
        self._stores: dict[str, ClaimStore] = {}
        self._windows: dict[str, int] = {}  # scopes kept longer than DEDUPE_SECONDS
        self._lock = threading.Lock()  # claims run in threads; build each scope's store once

    def _store(self, scope: str) -> ClaimStore:
        with self._lock:
            store = self._stores.get(scope)
            if store is None:
                store = self._stores[scope] = ClaimStore(
                    self.table,
                    key_prefix=f"ingest.{scope}",
                    key_field="id",
                    payload_field="payload",
                    expires_after_seconds=self._windows.get(scope, DEDUPE_SECONDS),
                    dynamodb=self.client,
                    hold_while_working=False,
                )
            return store

    def keep_for(self, scope: str, seconds: int) -> None:
        """Remember the identities of `scope` for `seconds` instead (set before its first claim)."""
        with self._lock:
            self._windows[scope] = seconds

    @staticmethod
    def _data(event: SourceEvent) -> dict[str, Any]:
        return {"id": event.event_id, "payload": event.fingerprint}

    def claim(
        self, scope: str, event: SourceEvent, *, remaining_ms: int = DEFAULT_REMAINING_MS
    ) -> ClaimState:
        """Claim `event`; DynamoDB failures propagate (the caller answers 5xx)."""
        return self._store(scope).claim(self._data(event), remaining_ms).state

    def complete(self, scope: str, event: SourceEvent) -> None:
        """The event is on the queue: later copies are duplicates."""
        self._store(scope).complete(self._data(event), {"enqueued": True})

    def release(self, scope: str, event: SourceEvent) -> None:
        """The event did not reach the queue: let the sender's retry claim it again."""
        self._store(scope).release(self._data(event), EnqueueError("not enqueued"))


def store_for(dependencies: Dependencies) -> IdempotencyStore:
    """The claim store on the function's `IDEMPOTENCY_TABLE`."""
    table = dependencies.settings.idempotency_table
    if not table:
        raise EnqueueError("IDEMPOTENCY_TABLE is not set")
    return IdempotencyStore(table, client=dependencies.aws("dynamodb"))


# --- queue ------------------------------------------------------------------------------------


class EventQueue:
    """The events queue. `send` returns the positions of the envelopes that did not get on it."""

    def __init__(self, url: str, *, client: Any, workers: Workers | None = None) -> None:
        self.url = url
        self.client = client
        self.workers = workers or Workers()

    def send(self, envelopes: Sequence[Envelope]) -> list[int]:
        bodies = [e.to_json() for e in envelopes]
        failed: list[int] = []
        chunks = _chunks(bodies)
        for outcome in self.workers.run_all(lambda chunk: self._send_chunk(chunk, envelopes, bodies), chunks):
            if isinstance(outcome, Exception):
                raise outcome  # SQS answers are handled per chunk: this is a bug, let it surface
            failed.extend(outcome)
        return sorted(failed)

    def _send_chunk(self, chunk: list[int], envelopes: Sequence[Envelope], bodies: list[str]) -> list[int]:
        from botocore.exceptions import BotoCoreError, ClientError

        entries = [
            {
                "Id": str(i),
                "MessageBody": bodies[i],
                "MessageAttributes": {
                    "source": {"DataType": "String", "StringValue": envelopes[i].source},
                    "event_type": {"DataType": "String", "StringValue": envelopes[i].event_type},
                },
            }
            for i in chunk
        ]
        try:
            answer = self.client.send_message_batch(QueueUrl=self.url, Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            logger.warning(
                "events queue refused a batch", extra={"error": type(exc).__name__, "count": len(chunk)}
            )
            return list(chunk)
        failed = [int(f["Id"]) for f in answer.get("Failed") or []]
        if failed:
            codes = sorted({str(f.get("Code")) for f in answer["Failed"]})
            logger.warning("events queue failed some entries", extra={"codes": codes, "count": len(failed)})
        return failed


def _chunks(bodies: list[str]) -> list[list[int]]:
    """Positions grouped into SendMessageBatch calls: at most 10 entries and 256 KiB each."""
    chunks: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, body in enumerate(bodies):
        length = len(body.encode("utf-8"))
        if current and (len(current) == SQS_BATCH_SIZE or size + length > SQS_MAX_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(i)
        size += length
    if current:
        chunks.append(current)
    return chunks


def queue_for(dependencies: Dependencies, workers: Workers | None = None) -> EventQueue:
    """The function's events queue (`EVENTS_QUEUE_URL`)."""
    url = dependencies.settings.events_queue_url
    if not url:
        raise EnqueueError("EVENTS_QUEUE_URL is not set")
    return EventQueue(url, client=dependencies.aws("sqs"), workers=workers)


# --- parallel work ----------------------------------------------------------------------------


class Workers:
    """`run_all(fn, items)`: `fn` over `items`, in parallel threads when there are several; each
    failure is returned in place. The threads are made at the first batch (single-event sources
    never need them) and kept by the stage."""

    def __init__(self, max_workers: int = MAX_WORKERS) -> None:
        self.max_workers = max_workers
        self._pool: Any = None
        self._lock = threading.Lock()

    def run_all[T, R](self, fn: Callable[[T], R], items: Sequence[T]) -> list[R | Exception]:
        def safe(item: T) -> R | Exception:
            try:
                return fn(item)
            except Exception as exc:  # returned to the caller, which decides per item
                return exc

        if len(items) <= 1:
            return [safe(i) for i in items]
        with self._lock:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="ingest")
        return list(self._pool.map(safe, items))


# --- the pipeline -----------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    accepted: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: int = 0


class Ingest:
    """The ingest stage of one webhook function: its source, settings, claim store and events
    queue, built from the function's dependencies (the store and queue on first use)."""

    def __init__(
        self,
        dependencies: Dependencies,
        source: str,
        *,
        store: IdempotencyStore | None = None,
        queue: EventQueue | None = None,
        now: Clock | None = None,
    ) -> None:
        self.dependencies = dependencies
        self.source = source
        self.now = now or dependencies.clock
        self.workers = Workers()
        self._store = store
        self._queue = queue
        make_forwarder = sources.source_spec(source).forwarder
        self.forwarder = make_forwarder(dependencies.settings) if make_forwarder else None

    @property
    def store(self) -> IdempotencyStore:
        if self._store is None:
            self._store = store_for(self.dependencies)
        return self._store

    @property
    def queue(self) -> EventQueue:
        if self._queue is None:
            self._queue = queue_for(self.dependencies, self.workers)
        return self._queue

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Run one Function URL request through ingest; returns the answer to send."""
        source = self.source
        received_at = utc_now_iso()
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        parsed: ParsedRequest | None = None
        settings = self.dependencies.settings
        try:
            request = WebhookRequest.from_function_url_event(event, max_body_bytes=settings.max_body_bytes)
            src = sources.for_request(source, request, settings)
            src.verify(request, src.secrets(self.dependencies.secrets), now=self.now)
            parsed = src.parse(request)
            if parsed.reply is not None:
                logger.info("webhook answered", extra={"source": source, "headers": safe_headers(headers)})
                _count(source, Outcome())
                return json_response(200, parsed.reply)
            # Verified and well formed: passed on (when configured) while this request is ingested.
            pending = self.forwarder.start(request) if self.forwarder else None
            outcome = self._ingest(src, parsed, received_at, context)
        except IngestError as err:
            return _refuse(source, err, headers, parsed)
        relayed = pending.answer() if pending else None
        if relayed is not None:
            return relayed.response()  # recorded, and the other receiver's answer is what the sender sees
        if parsed.interactive:
            return text_response(200, "")  # Slack reads interactivity answers as instructions
        if parsed.recorded_response is not None:
            return parsed.recorded_response
        return json_response(
            200,
            {
                "accepted": outcome.accepted,
                "duplicates": outcome.duplicates,
                "ignored": outcome.ignored,
                "rejected": outcome.rejected,
            },
        )

    def _ingest(self, src: Source, parsed: ParsedRequest, received_at: str, context: Any) -> Outcome:
        outcome = Outcome()
        for event in parsed.events:
            if not event.known:
                outcome.ignored += 1
                logger.info(
                    "event type not handled: acknowledged",
                    extra={"source": src.name, "event_type": event.event_type},
                )
        # Copies inside one request (same identity twice in a batch) count as duplicates up front.
        unique: dict[str | None, SourceEvent] = {}
        no_key: list[SourceEvent] = []
        for event in parsed.events:
            if not event.known:
                continue
            if event.event_id is None:
                no_key.append(event)
            elif event.event_id in unique:
                outcome.duplicates += 1
            else:
                unique[event.event_id] = event
        if no_key and not unique and not outcome.duplicates:
            # Nothing in the request can be deduped: the sender's contract is broken, say so.
            raise MalformedBodyError("no event in the request carries an identity")
        events = no_key + list(unique.values())
        if not events:
            _count(src.name, outcome)
            return outcome

        envelopes = [e.envelope(src.name, src.endpoint_name, received_at) for e in events]
        if any(len(env.to_json().encode("utf-8")) > SQS_MAX_BYTES for env in envelopes):
            raise PayloadTooLargeError(f"an event exceeds the queue's {SQS_MAX_BYTES} bytes")

        store, queue, workers = self.store, self.queue, self.workers
        if src.dedupe_seconds:
            store.keep_for(src.scope, src.dedupe_seconds)
        remaining = _remaining_ms(context)
        claims = workers.run_all(lambda e: store.claim(src.scope, e, remaining_ms=remaining), events)
        failures = [c for c in claims if isinstance(c, Exception)]
        if failures:
            _release(
                workers,
                store,
                src.scope,
                [e for e, c in zip(events, claims, strict=True) if c is ClaimState.NEW],
            )
            logger.error(
                "dedupe table unavailable", extra={"source": src.name, "error": type(failures[0]).__name__}
            )
            raise EnqueueError("dedupe table unavailable, retry later") from failures[0]

        new = [i for i, c in enumerate(claims) if c is ClaimState.NEW]
        for event, claim in zip(events, claims, strict=True):
            if claim is ClaimState.DUPLICATE:
                outcome.duplicates += 1
            elif claim is ClaimState.NO_KEY:
                outcome.rejected += 1
                logger.error(
                    "event has no identity: rejected",
                    extra={"source": src.name, "event_type": event.event_type},
                )
            elif claim is ClaimState.MISMATCH:
                outcome.rejected += 1
                logger.warning(
                    "same event id with a different body: rejected",
                    extra={"source": src.name, "event_type": event.event_type, "event_id": event.event_id},
                )

        failed_positions = set(queue.send([envelopes[i] for i in new])) if new else set()
        sent = [events[i] for n, i in enumerate(new) if n not in failed_positions]
        unsent = [events[i] for n, i in enumerate(new) if n in failed_positions]
        for result in workers.run_all(lambda e: store.complete(src.scope, e), sent):
            if isinstance(result, Exception):
                # Already on the queue, but no record says so: a retry enqueues it again, and the
                # deliver stage's claims (and the targets' idempotency keys) absorb the copy.
                logger.warning(
                    "could not mark event as enqueued",
                    extra={"source": src.name, "error": type(result).__name__},
                )
        outcome.accepted = len(sent)
        if sent:
            request_id = str(getattr(context, "aws_request_id", "") or "")
            self.dependencies.observer.events_enqueued(
                request_id, [envelopes[i] for n, i in enumerate(new) if n not in failed_positions]
            )
        _count(src.name, outcome)
        # DEBUG: at INFO each job logs its outcome once, at delivery (CloudWatch Logs bills per byte).
        logger.debug(
            "webhook ingested",
            extra={
                "source": src.name,
                "accepted": outcome.accepted,
                "duplicates": outcome.duplicates,
                "ignored": outcome.ignored,
                "rejected": outcome.rejected,
                "event_types": sorted({e.event_type for e in sent}),
                # The ids the route and deliver logs carry too: one Logs Insights filter follows an event.
                "event_ids": [e.event_id for e in sent],
            },
        )
        if unsent:
            _release(workers, store, src.scope, unsent)
            raise EnqueueError(f"{len(unsent)} of {len(new)} events could not be enqueued, retry later")
        if any(c is ClaimState.IN_PROGRESS for c in claims):
            raise EnqueueError(
                "an event of this request is still being recorded, retry later", reason="in_progress"
            )
        return outcome


def handle(
    event: dict[str, Any],
    context: Any = None,
    *,
    source: str,
    dependencies: Dependencies | None = None,
    now: Clock | None = None,
    store: IdempotencyStore | None = None,
    queue: EventQueue | None = None,
) -> dict[str, Any]:
    """One request through an ingest stage built for it (default: from this process's environment)."""
    stage = Ingest(dependencies or Dependencies.from_environ(), source, store=store, queue=queue, now=now)
    return stage.handle(event, context)


def stage(source: str) -> Stage:
    """The stage a webhook function's handler holds."""
    return Stage(lambda dependencies: Ingest(dependencies, source).handle)


def _release(workers: Workers, store: IdempotencyStore, scope: str, events: list[SourceEvent]) -> None:
    for result in workers.run_all(lambda e: store.release(scope, e), events):
        if isinstance(result, Exception):
            # The claim expires with the invocation (in_progress_expiration), then a retry gets it.
            logger.warning(
                "could not release a dedupe claim", extra={"scope": scope, "error": type(result).__name__}
            )


def _remaining_ms(context: Any) -> int:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        try:
            return max(int(remaining()), 0)
        except (TypeError, ValueError):
            pass
    return DEFAULT_REMAINING_MS


def _count(source: str, outcome: Outcome) -> None:
    metrics.add_dimension(name="source", value=source)
    # Always published (0 included): a flat line is information, a missing one is not.
    metrics.add_metric(name="WebhookAccepted", unit=MetricUnit.Count, value=outcome.accepted)
    if outcome.duplicates:
        metrics.add_metric(name="WebhookDuplicate", unit=MetricUnit.Count, value=outcome.duplicates)
    if outcome.rejected:
        metrics.add_metric(name="WebhookRejected", unit=MetricUnit.Count, value=outcome.rejected)


def _refuse(
    source: str, err: IngestError, headers: dict[str, str], parsed: ParsedRequest | None
) -> dict[str, Any]:
    """Log, count and answer an ingest error. Never logs the body, a secret or a signature."""
    metrics.add_dimension(name="source", value=source)
    # 4xx: the request was refused (forged, stale, malformed). 5xx: we failed; the sender retries.
    metrics.add_metric(
        name="WebhookFailed" if err.status >= 500 else "WebhookRejected", unit=MetricUnit.Count, value=1
    )
    log = logger.error if err.status >= 500 else logger.warning
    log(
        "webhook refused",
        extra={
            "source": source,
            "status": err.status,
            "reason": err.reason,
            "error": str(err),
            "headers": safe_headers(headers),
        },
    )
    if isinstance(err, EnqueueError) and parsed is not None and parsed.unrecorded_reply is not None:
        # Interactivity has no retry: say so to the user instead of a bare error icon.
        return json_response(200, parsed.unrecorded_reply)
    return error_response(err)
