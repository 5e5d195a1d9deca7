"""The route stage: envelopes from the events queue become delivery jobs on the targets' queues.

For each envelope, every mapping whose source matches and whose `when` holds renders one job
(fan-out); each job goes to its target's delivery queue. A mapping that cannot render (missing
field, wrong type, empty required value, a body that breaks the target's contract) dead-letters
that job to its target's DLQ with the file, line, field and reason; the event's other jobs still
go out. An event no mapping wants is logged (and archived, unmatched).

Idempotency: a job's key is derived from (source, or generic endpoint: `keys.event_scope`; source
event id; mapping name), so routing the same envelope again (an SQS redelivery, a retry after a
failed send) produces the same jobs with the same keys. The deliver stage dedupes on the key and
the providers dedupe on the idempotency fields built from it, so this stage needs no store of its
own: re-routing is safe.

The jobs of every record of an SQS batch are sent together: one SendMessageBatch per queue and
ten messages (or 256 KiB), not one per event and target. Failures of a whole record (an
unreadable envelope, a queue that refuses one of its jobs) are reported as `batchItemFailures`:
SQS delivers the record again and, after the queue's maxReceiveCount, moves it to
EventsDeadLetterQueue.

Enrichment (the mappings' `enrich:` fetches) runs here, before rendering. A fetch that fails for
good dead-letters its job (reason `enrichment_error`, naming the fetch and the status). A fetch to
retry (429, 5xx, timeout, credentials) fails the whole record before anything of the event is
enqueued: the event is routed again when its message becomes visible, no sooner than the source
API's Retry-After (the message's visibility is extended to it).

The archive (`timeline_bridge.archive`): once a batch's jobs are on their queues, every envelope
routed, matched or not, is written to the stack's archive bucket with its jobs and dead letters,
before the batch is acknowledged. An archive write that fails fails every record not failed
already: routing them again yields the same job keys (deliver dedupes), so nothing accepted is
missing from the archive. An envelope put back by a replay (`Envelope.replay`) is routed through
the mappings it names only, and never archived again.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from timeline_bridge.archive import ArchivedEvent, ArchivedJob, EventArchive
from timeline_bridge.errors import BridgeError, RetryLaterError
from timeline_bridge.mapping.engine import Enricher, MappingSet, RenderFailure, no_enrichment
from timeline_bridge.models import DeliveryJob, Envelope
from timeline_bridge.observability import logger, metrics
from timeline_bridge.wiring import NO_OBSERVER, Dependencies, Stage, StageObserver

if TYPE_CHECKING:
    from timeline_bridge.replies import Replies

MAX_VISIBILITY = 43_200  # SQS's ceiling: 12 hours


class UnreadableEnvelopeError(BridgeError):
    """A record on the events queue is not an envelope: redrive it to the events DLQ."""


class EnqueueJobsError(BridgeError):
    """A delivery queue refused jobs: the record is retried (the same keys come out again)."""


class JobQueue(Protocol):
    def send(self, queue_url: str, messages: Sequence[DeliveryJob]) -> list[int]:
        """Enqueue `messages`; return the positions that did not get on the queue."""


class SqsJobQueue:
    """Delivery queues on SQS: SendMessageBatch, as few calls as the batch limits allow."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def send(self, queue_url: str, messages: Sequence[DeliveryJob]) -> list[int]:
        from timeline_bridge.aws import send_message_batches

        return send_message_batches(
            self.client,
            queue_url,
            [
                {
                    "MessageBody": job.to_json(),
                    "MessageAttributes": {
                        "target": {"DataType": "String", "StringValue": job.target},
                        "mapping": {"DataType": "String", "StringValue": job.mapping},
                    },
                }
                for job in messages
            ],
        )


@dataclass
class RouteResult:
    """What happened to one envelope."""

    envelope: Envelope | None = None
    jobs: list[DeliveryJob] = field(default_factory=list)
    dead_letters: list[DeliveryJob] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        return bool(self.jobs or self.dead_letters)

    def archived(self, routed_at: str) -> ArchivedEvent:
        """This envelope's archive line: the jobs it became and those dead-lettered at route."""
        assert self.envelope is not None
        return ArchivedEvent(
            envelope=self.envelope,
            routed_at=routed_at,
            jobs=[ArchivedJob(j.mapping, j.target, j.key) for j in self.jobs],
            dead_letters=[
                ArchivedJob(j.mapping, j.target, j.key, reason=str((j.dead_letter or {}).get("reason") or ""))
                for j in self.dead_letters
            ],
        )


def replay_mappings(envelope: Envelope) -> frozenset[str] | None:
    """The mapping names a replayed envelope is limited to; None for every mapping."""
    names = envelope.replay.get("mappings") if isinstance(envelope.replay, dict) else None
    return frozenset(str(n) for n in names) if isinstance(names, list) else None


def default_enricher(dependencies: Dependencies | None = None) -> Enricher:
    """The enrich hook: a `timeline_bridge.enrichment.Enrichment` on `dependencies` (default: this
    process's settings, secrets and AWS clients), else no enrichment when that package is absent
    (expressions see an empty `enrichment`)."""
    try:
        module = importlib.import_module("timeline_bridge.enrichment")
    except ModuleNotFoundError as exc:
        if exc.name not in ("timeline_bridge.enrichment", "timeline_bridge"):
            raise
        return no_enrichment
    return module.Enrichment.of(dependencies or Dependencies.from_environ())


@dataclass
class Router:
    mappings: MappingSet
    queue: JobQueue
    queue_url: Callable[..., str]  # the settings' `queue_url(target, dead_letter=...)`
    enrich: Enricher = no_enrichment
    observer: StageObserver = NO_OBSERVER
    # Posts the not-recorded note of a dead-lettered job with a `reply:` (None: no replies).
    replies: Replies | None = None

    def route(self, envelope: Envelope) -> RouteResult:
        """Render and enqueue every job of one envelope. Raises EnqueueJobsError if any send fails."""
        result = self.plan(envelope)
        if result.matched and self.enqueue([result]):
            raise EnqueueJobsError(_unsent_message(result))
        return result

    def plan(self, envelope: Envelope) -> RouteResult:
        """Enrich and render every job of one envelope (mapping errors become dead letters);
        nothing is sent yet."""
        result = RouteResult(envelope)
        mappings = self.mappings
        limit = replay_mappings(envelope)
        if limit is not None:
            # A replay limited to some mappings renders those only; the others are skipped.
            mappings = MappingSet(m for m in mappings if m.name in limit)
        for outcome in mappings.render_jobs(envelope, self.enrich):
            if isinstance(outcome, RenderFailure):
                # Where it failed, never why in words: the reason quotes event values (an e-mail
                # an enrichment could not find, a value that is not a time). It is in the dead letter.
                logger.warning(
                    "mapping error: job dead-lettered",
                    extra={
                        "mapping": outcome.mapping.name,
                        "target": outcome.target,
                        "key": outcome.key,
                        "reason": outcome.reason,
                        "mapping_file": outcome.error.mapping_file,
                        "line": outcome.error.line,
                        "field": outcome.error.field,
                        **{
                            k: outcome.details[k] for k in ("fetch", "status", "code") if k in outcome.details
                        },
                        "source": envelope.source,
                        "event_id": envelope.event_id,
                    },
                )
                result.dead_letters.append(outcome.dead_letter(envelope))
            else:
                result.jobs.append(outcome)
        if not result.matched:
            logger.info(
                "no mapping applies",
                extra={
                    "source": envelope.source,
                    "event_type": envelope.event_type,
                    "event_id": envelope.event_id,
                    **_replay_field(envelope.replay),
                },
            )
        return result

    def enqueue(self, results: Sequence[RouteResult]) -> list[int]:
        """Send the jobs and dead letters of several envelopes together, per queue (a batch of
        events costs one SendMessageBatch per ten messages, not one per event and target). Returns
        the positions of the results whose jobs did not all get on their queues."""
        queue_url = self.queue_url
        by_queue: dict[str, list[tuple[int, DeliveryJob]]] = {}
        for position, result in enumerate(results):
            for job in result.jobs:
                by_queue.setdefault(queue_url(job.target), []).append((position, job))
            for job in result.dead_letters:
                by_queue.setdefault(queue_url(job.target, dead_letter=True), []).append((position, job))
        unsent: set[int] = set()
        for url, entries in by_queue.items():
            failed = self.queue.send(url, [job for _, job in entries])
            unsent.update(entries[i][0] for i in failed)
        for position, result in enumerate(results):
            if position in unsent or result.envelope is None:
                continue
            # DEBUG unless replayed: at INFO each job logs its outcome once, at delivery (CloudWatch
            # Logs bills per byte); an operator's replay stays visible.
            log = logger.info if result.envelope.replay else logger.debug
            log(
                "event routed",
                extra={
                    "source": result.envelope.source,
                    "event_id": result.envelope.event_id,
                    "jobs": [f"{j.target}:{j.mapping}" for j in result.jobs],
                    "keys": [j.key for j in result.jobs],
                    "dead_lettered": len(result.dead_letters),
                    **_replay_field(result.envelope.replay),
                },
            )
            if result.jobs:
                self.observer.jobs_enqueued(result.jobs)
            for job in result.dead_letters:
                self.observer.job_outcome(job, "dead-lettered")
                if job.reply and self.replies is not None:
                    self.replies.not_recorded(job)
        return sorted(unsent)

    @staticmethod
    def read(body: str) -> Envelope:
        """An events-queue message body as an Envelope; raises UnreadableEnvelopeError."""
        try:
            envelope = Envelope.from_json(body)
        except (ValueError, TypeError) as exc:
            raise UnreadableEnvelopeError(f"not an envelope: {type(exc).__name__}: {str(exc)[:200]}") from exc
        if not isinstance(envelope.source, str) or not isinstance(envelope.event_id, str):
            raise UnreadableEnvelopeError("not an envelope: source and event_id must be strings")
        return envelope


def _replay_field(replay: dict[str, Any] | None) -> dict[str, Any]:
    """`{"replay": <its id>}` for a log line about an envelope a replay put back (its `replay`),
    else nothing. Takes the field, not the envelope: log calls never pass an envelope."""
    return {"replay": replay.get("id")} if isinstance(replay, dict) else {}


def _unsent_message(result: RouteResult) -> str:
    jobs = result.jobs + result.dead_letters
    names = ", ".join(sorted({f"{j.target}:{j.mapping}" for j in jobs}))
    return f"job(s) not enqueued ({names}); the event will be routed again"


def router_for(dependencies: Dependencies) -> Router:
    """The router of a route function: every mapping loaded and compiled once, its enrichment,
    the delivery queues its settings name."""
    from timeline_bridge.mapping.loader import load_mappings
    from timeline_bridge.replies import replies_for

    settings = dependencies.settings
    mappings = load_mappings(settings.mappings_dir, settings=settings)
    logger.info("mappings loaded", extra={"mappings": [m.name for m in mappings]})
    return Router(
        mappings=mappings,
        queue=SqsJobQueue(dependencies.aws("sqs")),
        enrich=default_enricher(dependencies),
        queue_url=settings.queue_url,
        observer=dependencies.observer,
        replies=replies_for(dependencies),
    )


def delay_redelivery(record: Any, seconds: float | None, queue_url: str, sqs: Any) -> None:
    """Keep a failed record invisible for `seconds` (a source API's Retry-After) instead of the
    queue's visibility timeout. Best effort: without it the record returns after the timeout."""
    if not seconds or seconds <= 0:
        return
    arn = str(getattr(record, "event_source_arn", "") or "")
    parts = arn.split(":")
    url = queue_url
    if not url and len(parts) == 6:
        url = f"https://sqs.{parts[3]}.amazonaws.com/{parts[4]}/{parts[5]}"
    if not url:
        return
    try:
        sqs.change_message_visibility(
            QueueUrl=url,
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=min(max(int(seconds + 0.999), 1), MAX_VISIBILITY),
        )
    except Exception as exc:  # botocore errors: the record still fails and comes back later
        logger.warning("could not delay the retry", extra={"error": str(exc)[:300]})


def archive_for(dependencies: Dependencies) -> EventArchive | None:
    """The event archive its settings name (`EVENTS_ARCHIVE_BUCKET`), or None when none is set."""
    bucket = dependencies.settings.archive_bucket
    return EventArchive(bucket, dependencies.aws("s3")) if bucket else None


class Route:
    """The route stage of the route function: its router and archive (built on first use) and
    dependencies."""

    def __init__(self, dependencies: Dependencies, router: Router | None = None) -> None:
        self.dependencies = dependencies
        self._router = router
        self._archive: EventArchive | None = None

    @property
    def router(self) -> Router:
        if self._router is None:
            self._router = router_for(self.dependencies)
        return self._router

    @property
    def archive(self) -> EventArchive | None:
        if self._archive is None:
            self._archive = archive_for(self.dependencies)
        return self._archive

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return _handle(event, self.router, self.archive, self.dependencies)


def stage() -> Stage:
    """The stage the route function's handler holds."""
    return Stage(lambda dependencies: Route(dependencies).handle)


def handle(
    event: dict[str, Any],
    context: Any,
    *,
    router: Router | None = None,
    dependencies: Dependencies | None = None,
) -> dict[str, Any]:
    """One SQS batch through a route stage built for it (default: from this process's environment)."""
    return Route(dependencies or Dependencies.from_environ(), router).handle(event, context)


def _handle(
    event: dict[str, Any], router: Router, archive: EventArchive | None, dependencies: Dependencies
) -> dict[str, Any]:
    """SQS batch from the events queue → partial batch response (ReportBatchItemFailures).

    Every record is read, enriched and rendered on its own (its failure fails only that record);
    then the jobs of all of them go out together, and a record whose jobs did not all get on their
    queues is failed back to SQS (routed again later, with the same keys). Then every envelope
    routed is archived; if that fails, every record not failed yet is failed too."""
    from aws_lambda_powertools.metrics import MetricUnit
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    totals = {
        "JobsRouted": 0,
        "JobsDeadLettered": 0,
        "EventsUnmatched": 0,
        "EnvelopesUnreadable": 0,
        "EventsRetried": 0,
        "WebhookReplayed": 0,
    }
    failed: list[str] = []
    planned: list[tuple[SQSRecord, RouteResult]] = []
    unmatched: list[tuple[SQSRecord, RouteResult]] = []

    def fail(record: SQSRecord, detail: str) -> None:
        """Give the record back to SQS (it is routed again) and say so to the observer."""
        failed.append(record.message_id)
        dependencies.observer.route_failed(record.body, _receives(record), detail)

    for raw in event.get("Records") or []:
        record = SQSRecord(raw)
        try:
            result = router.plan(router.read(record.body))
        except UnreadableEnvelopeError:
            totals["EnvelopesUnreadable"] += 1
            logger.error("unreadable envelope", extra={"message_id": record.message_id})
            fail(record, "not an envelope")
            continue
        except RetryLaterError as exc:
            # An enrichment fetch to retry (throttled, 5xx, credentials): nothing of this event is
            # enqueued; the whole event is routed again once the source API's delay has passed.
            totals["EventsRetried"] += 1
            logger.warning(
                "event will be routed again",
                extra={
                    "message_id": record.message_id,
                    "error": str(exc)[:300],
                    "retry_after": exc.retry_after,
                },
            )
            delay_redelivery(
                record, exc.retry_after, dependencies.settings.events_queue_url, dependencies.aws("sqs")
            )
            fail(record, f"{type(exc).__name__}: {exc}")
            continue
        except Exception as exc:
            logger.exception(
                "record not routed; SQS delivers it again",
                extra={"message_id": record.message_id, "error": f"{type(exc).__name__}"},
            )
            fail(record, f"{type(exc).__name__}: {exc}")
            continue
        (planned if result.matched else unmatched).append((record, result))
    unsent = set(router.enqueue([result for _, result in planned]))
    routed: list[tuple[SQSRecord, RouteResult]] = list(unmatched)
    for position, (record, result) in enumerate(planned):
        if position in unsent:
            logger.warning(
                "event will be routed again",
                extra={"message_id": record.message_id, "error": _unsent_message(result)},
            )
            fail(record, _unsent_message(result))
            continue
        totals["JobsRouted"] += len(result.jobs)
        totals["JobsDeadLettered"] += len(result.dead_letters)
        routed.append((record, result))
    if archive is not None and not _archive_routed(archive, routed, dependencies):
        for record, _ in routed:
            fail(record, "the event archive could not be written")
        routed = []
    for _, result in routed:
        envelope = result.envelope
        assert envelope is not None
        totals["EventsUnmatched"] += not result.matched
        totals["WebhookReplayed"] += envelope.replay is not None
    order = {str(r.get("messageId")): i for i, r in enumerate(event.get("Records") or [])}
    for name, value in totals.items():
        if value:
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    return {"batchItemFailures": [{"itemIdentifier": m} for m in sorted(failed, key=order.__getitem__)]}


def _archive_routed(
    archive: EventArchive, routed: Sequence[tuple[Any, RouteResult]], dependencies: Dependencies
) -> bool:
    """Write the archive lines of the envelopes routed (a replayed one is archived already).
    False when the archive could not be written: the caller fails the records."""
    now = datetime.fromtimestamp(dependencies.clock(), UTC)
    routed_at = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    lines = [
        result.archived(routed_at)
        for _, result in routed
        if result.envelope and result.envelope.replay is None
    ]
    if not lines:
        return True
    try:
        archive.write(lines, now=now)
    except Exception as exc:  # botocore errors, endpoint errors: the batch is routed again
        logger.error(
            "archive not written: the batch will be routed again",
            extra={"records": len(routed), "error": f"{type(exc).__name__}: {str(exc)[:300]}"},
        )
        return False
    return True


def _receives(record: Any) -> int:
    try:
        return int(record.attributes.approximate_receive_count)
    except (AttributeError, KeyError, TypeError, ValueError):  # a record without the attribute
        return 1
