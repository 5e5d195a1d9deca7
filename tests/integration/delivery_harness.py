"""The pipeline after ingest, on one machine, for the delivery tests: envelopes on the events queue →
route → one delivery queue per target → the deliver policy → the provider sandboxes over loopback.

SQS and DynamoDB are moto (the `aws` fixture); Lambda's SQS event source mappings are
`timeline_bridge_tools.local.event_source`. Time is scaled so a suite of thousands of deliveries runs in
seconds: small backoff, short HTTP timeouts, and the providers' rate-limit windows shrunk by
TIME_SCALE on both sides (the sandboxes enforce them, the workers pace under them).

What counts is read from the sandboxes' stores and the DLQs, never from the bridge's own logs:
`delivered_keys` maps each stored timeline event back to the job key it carries (HubSpot `id`,
Applied `metric.deduping_key`, and `meta.key` written by the suite's mappings into Stora
`variables.bridge_key` and Matter `ref`).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from timeline_bridge import TARGETS, delivery, route
from timeline_bridge.config import Settings
from timeline_bridge.mapping.engine import no_enrichment
from timeline_bridge.mapping.loader import load_mappings
from timeline_bridge.models import DeliveryJob, Envelope
from timeline_bridge.targets import client_for
from timeline_bridge.targets.base import Outcome, TargetClient
from timeline_bridge.wiring import Dependencies
from timeline_bridge_tools.local import moto_sqs
from timeline_bridge_tools.local.event_source import EventSourceMapping, drain, stop_all

FAULT_MAPPINGS = Path(__file__).resolve().parent / "fault_mappings"
TIME_SCALE = 0.01  # one provider rate-limit minute lasts 0.6 s

# Environment for scaled time (the knobs are documented in timeline_bridge.delivery).
SCALED_ENV = {
    "DELIVERY_BACKOFF_BASE_SECONDS": "0.05",
    "DELIVERY_BACKOFF_CAP_SECONDS": "0.5",
    "DELIVERY_THROTTLE_PAUSE_SECONDS": "0.2",
    "DELIVERY_TIME_MARGIN_SECONDS": "0.5",
    "DELIVERY_MAX_PACE_SLEEP_SECONDS": "1.0",
    "DELIVERY_BUSY_RECHECK_SECONDS": "0.5",
    "DELIVERY_RATE_TIME_SCALE": str(TIME_SCALE),
    # The sandboxes play a HubSpot Free/Starter account (100/10 s) and a Matter test key.
    "HUBSPOT_RATE_LIMITS": "100/10",
    "MATTER_RATE_LIMITS": "25/1,250/60",
    "DELIVER_MAX_CONCURRENCY": "1",  # one process: its worker threads share one pacer per target
    "BRIDGE_HTTP_CONNECT_TIMEOUT": "0.5",
    "BRIDGE_HTTP_READ_TIMEOUT": "0.4",
}

BATCH_SIZE = {"stora": 5, "hubspot": 100, "matter": 10, "applied": 10}


def set_scaled_env(monkeypatch: Any, **overrides: str) -> None:

    for name, value in {**SCALED_ENV, **overrides}.items():
        monkeypatch.setenv(name, value)


def scale_sandboxes(sandboxes: dict[str, Any]) -> None:
    """Shrink every sandbox's rate-limit windows by TIME_SCALE (Applied gets a limit of its own)."""
    for name in TARGETS:
        limits = ((50, 1.0), (2000, 60.0)) if name == "applied" else None
        sandboxes[name].set_rate_limits(limits, time_scale=TIME_SCALE)


# --- the events ---------------------------------------------------------------------------------

STAGES = ("qualifiedtobuy", "presentationscheduled", "contractsent", "closedwon")


def envelopes(count: int, run: str) -> list[Envelope]:
    """`count` source events from every source, in a fixed mix. Per 10 events: 3 HubSpot (→ Stora
    and HubSpot), 3 Slack (→ Matter), 2 Pipedrive (→ Applied), 2 generic (→ Matter and HubSpot)."""
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    out: list[Envelope] = []
    for i in range(count):
        at = start + timedelta(seconds=i)
        iso = at.isoformat().replace("+00:00", "Z")
        received = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        slot = i % 10
        if slot < 3:
            event: dict[str, Any] = {
                "eventId": 7_000_000 + i,
                "subscriptionType": "deal.propertyChange",
                "objectId": 1_000_000 + i,
                "portalId": 62515,
                "propertyName": "dealstage",
                "propertyValue": STAGES[i % len(STAGES)],
                "occurredAt": int(at.timestamp() * 1000),
                "changeSource": "CRM_UI",
            }
            out.append(Envelope("hubspot", "deal.propertyChange", f"{run}-hs-{i}", iso, received, event))
        elif slot < 6:
            event = {
                "type": "block_actions",
                "user": {"id": f"U{i:08d}", "name": "maria.lopez"},
                "team": {"id": "T01ABCDEF12"},
                "actions": [
                    {"action_id": "approve", "value": f"request-{i}", "action_ts": f"{at.timestamp():.6f}"}
                ],
            }
            out.append(Envelope("slack", "block_actions", f"{run}-sl-{i}", iso, received, event))
        elif slot < 8:
            event = {
                "meta": {"version": "2.0", "action": "change", "entity": "deal", "timestamp": iso},
                "data": {"id": 50_000 + i, "stage_id": 2 + i % 3},
                "previous": {"stage_id": 1},
            }
            out.append(Envelope("pipedrive", "change.deal", f"{run}-pd-{i}", iso, received, event))
        else:
            event = {
                "type": "invoice.paid",
                "timestamp": iso,
                "data": {"invoice_id": f"in_{run}_{i}", "deal_id": 2_000_000 + i, "amount": 100 + i},
            }
            out.append(
                Envelope("generic", "invoice.paid", f"{run}-gw-{i}", iso, received, event, name="billing")
            )
    return out


def enqueue(sqs: Any, queue_url: str, bodies: Iterable[str]) -> int:
    """SendMessageBatch `bodies` onto a queue, ten at a time."""
    items = list(bodies)
    for start in range(0, len(items), 10):
        chunk = items[start : start + 10]
        answer = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": b} for i, b in enumerate(chunk)]
        )
        assert not answer.get("Failed"), answer.get("Failed")
    return len(items)


def set_max_receives(aws: Any, count: int) -> None:
    """Redrive each delivery queue's messages to its DLQ after `count` receives (SQS's crash
    safety net; the `aws` fixture sets 5)."""
    for target in TARGETS:
        dlq_arn = aws.sqs.get_queue_attributes(
            QueueUrl=aws.queues[f"{target}-dlq"], AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        aws.sqs.set_queue_attributes(
            QueueUrl=aws.queues[target],
            Attributes={
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(count)})
            },
        )


JUNK = ("{not json", json.dumps({"key": "tb-x"}), json.dumps([1, 2]))  # not delivery jobs


def enqueue_malformed(aws: Any) -> dict[str, str]:
    """Put JUNK and one job every provider refuses on each delivery queue; returns the refused
    jobs' key → target."""
    rejected: dict[str, str] = {}
    for target in TARGETS:
        enqueue(aws.sqs, aws.queues[target], JUNK)
        job = DeliveryJob(
            key=f"tb-rejected-{target}",
            target=target,
            mapping="fault-suite-invalid-body",
            mapping_file="tests/integration/fault_mappings/none.yaml",
            source="generic",
            event_id=f"invalid-{target}",
            event_type="invoice.paid",
            occurred_at=None,
            body={"unexpected": True},  # every provider refuses this body
        )
        enqueue(aws.sqs, aws.queues[target], [job.to_json()])
        rejected[job.key] = target
    return rejected


# --- counting ------------------------------------------------------------------------------------


def delivered_keys(sandboxes: dict[str, Any]) -> dict[str, Counter[str]]:
    """target → job key → timeline events the provider stored under it (its own store)."""
    found: dict[str, Counter[str]] = {}
    for target in TARGETS:
        keys: Counter[str] = Counter()
        for event in sandboxes[target].events():
            if target == "stora":
                key = (event.get("variables") or {}).get("bridge_key")
            elif target == "hubspot":
                key = event.get("id")
            elif target == "matter":
                key = event.get("ref")
            else:
                key = (event.get("metric") or {}).get("deduping_key")
            keys[str(key)] += 1
        found[target] = keys
    return found


def dead_letters(sqs: Any, dlq_url: str) -> list[dict[str, Any]]:
    """Every message on a DLQ (parsed when it is JSON), left in place."""
    seen: dict[str, dict[str, Any]] = {}
    handles = []
    while True:
        answer = sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30)
        messages = [m for m in answer.get("Messages", []) if m["MessageId"] not in seen]
        if not messages:
            break
        for message in messages:
            handles.append(message["ReceiptHandle"])
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = None
            seen[message["MessageId"]] = body if isinstance(body, dict) else {"unreadable": message["Body"]}
    for start in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0}
                for i, h in enumerate(handles[start : start + 10])
            ],
        )
    return list(seen.values())


@dataclass
class Tally:
    """A scenario's result, counted from the providers' stores and the DLQs."""

    scenario: str
    sent: int
    delivered: int
    dead_lettered: int
    duplicates: int
    lost: int
    in_both: int  # delivered and also dead-lettered: must stay 0
    unexpected: int  # stored events no job of this run accounts for: must stay 0
    reasons: Counter[str] = field(default_factory=Counter)
    missing: list[tuple[str, str]] = field(default_factory=list)  # (key, target) of the lost jobs

    def line(self) -> str:
        return (
            f"{self.scenario}: sent={self.sent} delivered={self.delivered} "
            f"dead_lettered={self.dead_lettered} duplicates={self.duplicates} lost={self.lost}"
        )


def tally(scenario: str, expected: dict[str, str], sandboxes: dict[str, Any], aws: Any) -> Tally:
    """`expected`: job key → target, for every job the routed events must produce."""
    stored = delivered_keys(sandboxes)
    delivered = {k for k, t in expected.items() if stored[t][k] > 0}
    duplicates = sum(n - 1 for keys in stored.values() for n in keys.values() if n > 1)
    unexpected = sum(n for keys in stored.values() for k, n in keys.items() if k not in expected)
    dead: set[str] = set()
    reasons: Counter[str] = Counter()
    for target in TARGETS:
        for body in dead_letters(aws.sqs, aws.queues[f"{target}-dlq"]):
            key = body.get("key")
            if key in expected and key not in dead:  # a job may sit there twice (SQS duplicates)
                dead.add(key)
                reasons[(body.get("dead_letter") or {}).get("reason", "max_receives")] += 1
    in_both = len(dead & delivered)
    dead_only = dead - delivered
    lost = len(expected) - len(delivered) - len(dead_only)
    missing = sorted((k, t) for k, t in expected.items() if k not in delivered and k not in dead)
    return Tally(
        scenario,
        len(expected),
        len(delivered),
        len(dead_only),
        duplicates,
        lost,
        in_both,
        unexpected,
        reasons,
        missing,
    )


# --- the pipeline --------------------------------------------------------------------------------


class Pipeline:
    """Route plus the four deliver functions, each fed by an event-source emulator."""

    def __init__(
        self,
        aws: Any,
        *,
        mappings_dir: Path = FAULT_MAPPINGS,
        concurrency: dict[str, int] | None = None,
        visibility_timeout: int = 4,
        function_timeout: float = 4.0,
        clients: dict[str, TargetClient] | None = None,
        wrap: Callable[[str, Callable[..., Any]], Callable[..., Any]] | None = None,
    ) -> None:
        self.aws = aws
        self.router = route.Router(
            mappings=load_mappings(mappings_dir),
            queue=route.SqsJobQueue(aws.sqs),
            queue_url=Settings.from_environ().queue_url,
            enrich=no_enrichment,
        )
        deps = Dependencies.from_environ()
        self.deliverers = {
            t: delivery.build(deps, t, (clients or {}).get(t) or client_for(t, deps.settings, deps.secrets))
            for t in TARGETS
        }
        concurrency = {"stora": 1, "hubspot": 1, "matter": 2, "applied": 2, **(concurrency or {})}

        def route_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            return route.handle(event, context, router=self.router)

        self.route = EventSourceMapping(
            aws.queues["events"],
            route_handler,
            function_name="RouteFunction",
            batch_size=10,
            visibility_timeout=visibility_timeout,
            function_timeout=function_timeout,
            concurrency=2,
            poll_wait=0,
            idle_wait=0.1,
            sqs=aws.sqs,
        )
        self.deliver: dict[str, EventSourceMapping] = {}
        for target in TARGETS:
            handler: Callable[..., Any] = self._handler(target)
            if wrap:
                handler = wrap(target, handler)
            self.deliver[target] = EventSourceMapping(
                aws.queues[target],
                handler,
                function_name=f"{target.capitalize()}DeliverFunction",
                batch_size=BATCH_SIZE[target],
                batching_window=0.05 if target == "hubspot" else 0.0,
                visibility_timeout=visibility_timeout,
                function_timeout=function_timeout,
                concurrency=concurrency[target],
                poll_wait=0,
                idle_wait=0.1,
                sqs=aws.sqs,
            )

    def _handler(self, target: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        deliverer = self.deliverers[target]

        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            return deliverer.process(event.get("Records") or [], context)

        return handler

    @property
    def mappings(self) -> list[EventSourceMapping]:
        return [self.route, *self.deliver.values()]

    def expected_jobs(self, events: Sequence[Envelope]) -> dict[str, str]:
        """job key → target for every job the events route to (rendered, not sent)."""
        expected: dict[str, str] = {}
        for envelope in events:
            for outcome in self.router.mappings.render_jobs(envelope, no_enrichment):
                assert isinstance(outcome, DeliveryJob), f"the suite's mappings must render: {outcome}"
                expected[outcome.key] = outcome.target
        return expected

    def send(self, events: Sequence[Envelope]) -> None:
        enqueue(self.aws.sqs, self.aws.queues["events"], (e.to_json() for e in events))

    def run(self, timeout: float = 60.0) -> None:
        """Run every poller until all queues are empty and nothing is in flight."""
        for mapping in self.mappings:
            mapping.start()
        try:
            drain(self.mappings, timeout=timeout)
        finally:
            stop_all(self.mappings)


# --- faults spread over a long run ------------------------------------------------------------

Fault = tuple[str, int, dict[str, Any]]  # kind, consecutive requests, parameters


def spread_faults(sandbox: Any, plan: Sequence[Fault], requests: int) -> None:
    """Queue `plan` on `sandbox` spread evenly over `requests` API requests (at least as many as
    the run sends without faults; every faulted request adds its retry): each fault comes after a
    run of normal answers ('pass'), so the faults hit the whole run, not its start."""
    gap = max(1, requests // len(plan))
    for kind, count, params in plan:
        sandbox.inject("pass", gap)
        sandbox.inject(kind, count, **params)


# --- faults the sandboxes cannot play ------------------------------------------------------------


class WorkerCrash(Exception):
    """The worker died: raised out of the handler, so Lambda fails the whole batch."""


class _Killed(BaseException):
    """Raised inside the client after the provider answered, so no `except Exception` in the
    delivery code can tidy up: the claim stays INPROGRESS and nothing is acknowledged, as when
    the process is killed."""


class CrashingClient(TargetClient):
    """Delegates to the real client; every `every`-th send crashes the worker right after the
    provider stored the events (before the delivered-record is COMPLETED)."""

    def __init__(self, inner: TargetClient, every: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_batch_size = inner.max_batch_size
        self.every = every
        self.sends = 0
        self.crashes = 0
        self._lock = threading.Lock()

    def send(self, jobs: Sequence[DeliveryJob]) -> list[Outcome]:
        outcomes = self.inner.send(jobs)
        with self._lock:
            self.sends += 1
            crash = self.sends % self.every == 0
            if crash:
                self.crashes += 1
        if crash:
            raise _Killed
        return outcomes


def crash_to_batch_failure(target: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a simulated kill into what Lambda sees: the invocation failed."""

    def wrapped(event: dict[str, Any], context: Any) -> Any:
        try:
            return handler(event, context)
        except _Killed:
            raise WorkerCrash(f"{target} worker killed mid-batch") from None

    return wrapped


def fast_moto(monkeypatch: Any) -> None:
    """Take out costs of in-process moto that have nothing to do with what is tested, so suites of
    thousands of messages stay exact and fast (measured with a sampling profiler), and make its SQS
    safe under concurrent pollers (`timeline_bridge_tools.local.moto_sqs`):

    - it reads the clock through a datetime round trip for every message of a queue on every call
      (send, receive, attributes): the same time from `time.time()`;
    - every received message checks its retention period, and every sent message a FIFO setting,
      by computing all of the queue's attributes: the period is read from the queue instead, and
      the message counts those attributes hold are taken with one clock read per scan instead of
      two per message;
    - every call lists the response class's methods by introspection: listed once per class;
    - every call is signed (SigV4), which moto never checks: only the credential scope is sent.
    """
    import time
    from functools import cache

    import botocore.auth
    import moto.core.responses as moto_responses
    import moto.sqs.models as sqs_models

    def unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else (dt - datetime(1970, 1, 1)).total_seconds()

    def retained(backend: Any, queue_name: str, message: Any) -> bool:
        period = int(backend.get_queue(queue_name).message_retention_period)
        return period + message.sent_timestamp / 1000 > time.time()

    monkeypatch.setattr(sqs_models, "unix_time", unix_time)
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda dt=None: unix_time(dt) * 1000.0)
    monkeypatch.setattr(sqs_models.SQSBackend, "is_message_valid_based_on_retention_period", retained)

    def now_ms() -> float:
        return time.time() * 1000.0

    def visible(queue: Any) -> list[Any]:
        now = now_ms()
        return [m for m in queue._messages if m.visible_at < now and m.delayed_until <= now]

    def in_flight(queue: Any) -> int:
        now = now_ms()
        return sum(1 for m in queue._messages if m.visible_at >= now)

    def delayed(queue: Any) -> int:
        now = now_ms()
        return sum(1 for m in queue._messages if m.delayed_until > now)

    queue_class = sqs_models.Queue
    monkeypatch.setattr(queue_class, "messages", property(visible))
    monkeypatch.setattr(queue_class, "approximate_number_of_messages", property(lambda q: len(visible(q))))
    monkeypatch.setattr(queue_class, "approximate_number_of_messages_not_visible", property(in_flight))
    monkeypatch.setattr(queue_class, "approximate_number_of_messages_delayed", property(delayed))
    listed = cache(moto_responses.method_names_from_class)
    monkeypatch.setattr(moto_responses, "method_names_from_class", listed)

    def unsigned(self: Any, request: Any) -> None:
        # moto reads the region (and the account) from the credential scope, never the signature.
        scope = (
            f"{self.credentials.access_key}/20260101/{self._region_name}/{self._service_name}/aws4_request"
        )
        request.headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"
        )

    monkeypatch.setattr(botocore.auth.SigV4Auth, "add_auth", unsigned)
    moto_sqs.thread_safe(monkeypatch.setattr)
