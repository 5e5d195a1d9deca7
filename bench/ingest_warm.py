"""Figure 2: ingest warm. One signed request through the real ingest path (verify, parse, build the
envelopes and the SendMessageBatch entries) with a recording SQS client and a no-op dedupe store,
next to the floor: HMAC-SHA256 of the same body and `hmac.compare_digest`. Dedupe is measured apart:
the Powertools DynamoDB persistence layer against an in-memory DynamoDB client."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import itertools
import warnings
from typing import Any

from timeline_bridge import SOURCES

from bench.context import environment, quiet_logs
from bench.report import Figure, Row
from bench.stats import fmt_us, percentile, ratio, timed_samples_us
from bench.webhooks import BODIES, SECRETS, TIMESTAMP, hubspot_body, local_settings, sign

WARMUP = 100
SAMPLES = 1000
QUEUE_URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/events"


class RecordingSQS:
    """The part of a boto3 SQS client ingest uses: every entry is kept, every entry succeeds."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.entries.extend(Entries)
        del self.entries[:-100]  # keep memory flat over thousands of requests
        return {"Successful": [{"Id": e["Id"], "MessageId": e["Id"]} for e in Entries], "Failed": []}


class InMemoryDynamoDB:
    """The calls Powertools' DynamoDB persistence layer makes; conditions always hold (fresh ids)."""

    def __init__(self) -> None:
        self.writes = 0

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        self.writes += 1
        return {}

    def update_item(self, **kwargs: Any) -> dict[str, Any]:
        self.writes += 1
        return {}

    def delete_item(self, **kwargs: Any) -> dict[str, Any]:
        return {}

    def get_item(self, **kwargs: Any) -> dict[str, Any]:
        return {}


def _noop_store(ingest: Any) -> Any:
    from timeline_bridge.claims import ClaimState

    class NoopStore(ingest.IdempotencyStore):
        """Every claim is new; nothing is stored."""

        def __init__(self) -> None:
            super().__init__("none", client=None)

        def claim(self, scope: str, event: Any, *, remaining_ms: int = 0) -> Any:
            return ClaimState.NEW

        def complete(self, scope: str, event: Any) -> None:
            return None

        def release(self, scope: str, event: Any) -> None:
            return None

    return NoopStore()


def _floor(body: bytes) -> list[float]:
    key = b"bench-secret"
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()

    def verify() -> bool:
        return hmac.compare_digest(hmac.new(key, body, hashlib.sha256).hexdigest(), expected)

    timed_samples_us(verify, WARMUP)
    return timed_samples_us(verify, SAMPLES)


def _row(name: str, samples: list[float], floor: list[float], extra: dict[str, Any]) -> Row:
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    f50 = percentile(floor, 50)
    return Row(
        name,
        f"p50 {fmt_us(p50)}, p99 {fmt_us(p99)}",
        f"HMAC+compare_digest p50 {fmt_us(f50)}",
        ratio(p50, f50),
        data={"p50_us": p50, "p99_us": p99, "floor_p50_us": f50, "samples": len(samples), **extra},
    )


def run() -> Figure:
    fig = Figure("ingest_warm", "2. Ingest warm (per request)")
    try:
        from timeline_bridge import ingest
    except ImportError as exc:
        return fig.skip(f"timeline_bridge.ingest not importable ({exc})")
    params = inspect.signature(ingest.handle).parameters
    if not {"store", "queue", "now"} <= set(params):
        return fig.skip("ingest.handle takes no injected store/queue/clock")

    env = dict(
        SECRETS,
        **local_settings(),
        EVENTS_QUEUE_URL=QUEUE_URL,
        IDEMPOTENCY_TABLE="idempotency",
        POWERTOOLS_METRICS_NAMESPACE="Bench",
    )
    with environment(**env), quiet_logs(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Powertools' per-call warnings would flood the table
        from timeline_bridge.observability import metrics
        from timeline_bridge.wiring import Dependencies

        requests = [(s, BODIES[s](0)) for s in SOURCES]
        requests.append(("hubspot", hubspot_body(100)))
        for source, body in requests:
            label = f"warm {source}" + (" (batch of 100)" if body.count(b"eventId") > 1 else "")
            event = sign(source, body).function_url_event()
            sqs = RecordingSQS()
            queue = ingest.EventQueue(QUEUE_URL, client=sqs)
            store = _noop_store(ingest)

            # A warm function: its stage built once, at the cold start.
            stage = ingest.Ingest(
                Dependencies.from_environ(), source, store=store, queue=queue, now=lambda: TIMESTAMP
            )

            def call(event: dict[str, Any] = event, stage: Any = stage) -> Any:
                answer = stage.handle(event, None)
                metrics.flush_metrics()  # what @metrics.log_metrics does after every invocation
                return answer

            answer = call()
            if answer.get("statusCode") != 200 or not sqs.entries:
                fig.add(Row(label, f"not measured: answered {answer.get('statusCode')} {answer.get('body')}"))
                continue
            timed_samples_us(call, WARMUP)
            samples = timed_samples_us(call, SAMPLES if "100" not in label else SAMPLES // 20)
            fig.add(_row(label, samples, _floor(body), {"body_bytes": len(body)}))

        # Dedupe apart: claim + complete of one event through Powertools' persistence layer.
        from timeline_bridge.sources.base import SourceEvent

        store = ingest.IdempotencyStore("idempotency", client=InMemoryDynamoDB())
        ids = itertools.count()

        def dedupe() -> None:
            n = next(ids)
            event = SourceEvent(
                "deal.propertyChange", f"62515:{n}", None, {"eventId": n}, fingerprint={"eventId": n}
            )
            store.claim("hubspot", event)
            store.complete("hubspot", event)

        timed_samples_us(dedupe, WARMUP)
        samples = timed_samples_us(dedupe, SAMPLES)
        fig.add(_row("dedupe claim+complete (in-memory DynamoDB)", samples, _floor(hubspot_body(1)), {}))
    fig.notes.append("ingest.handle with a recording SQS client, no-op dedupe, metrics flushed per request")
    return fig
