"""Figure 3b: the route stage's CPU per event against that event's AWS round trips. For every
shipped mapping, its case's event goes through the route stage as an SQS record (a batch of one:
parse, `when`, render, contract check, job JSON, SendMessageBatch) with its case's enrichment,
to a loopback SQS stub that answers at once. The route thread's CPU time per event is set
against the wall time of the event's SendMessageBatch calls on the stub: on Lambda the round
trip is a network one and longer, so this ratio is an upper bound of the share rendering takes."""

from __future__ import annotations

import time
from typing import Any

from bench.awsstub import AwsStub
from bench.context import MAPPINGS_DIR, environment, quiet_logs
from bench.mapping import measured_input
from bench.report import Figure, Row

EVENTS = 300


class _TimedSqs:
    """The SQS client with its SendMessageBatch calls counted and timed (wall)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.calls = 0
        self.seconds = 0.0
        self.cpu_seconds = 0.0  # this thread's CPU inside the calls: botocore building and parsing

    def send_message_batch(self, **kwargs: Any) -> Any:
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            return self.client.send_message_batch(**kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.cpu_seconds += time.thread_time() - cpu_started
            self.calls += 1


def _fixed(enrichment: dict[str, Any]) -> Any:
    """An enricher giving the case's own enrichment: the figure calls no provider API."""
    return lambda _mapping, _envelope: enrichment


def run() -> Figure:
    fig = Figure("route", "3b. Route CPU per event vs its AWS round trips (loopback stub)")
    with AwsStub(accept_messages=True) as stub:
        queues = {
            f"{t.upper()}_QUEUE_URL": f"{stub.url}/123456789012/{t}-jobs"
            for t in ("hubspot", "stora", "matter", "applied")
        }
        env = {
            "AWS_ENDPOINT_URL": stub.url,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "POWERTOOLS_METRICS_NAMESPACE": "Bench",
            **queues,
        }
        with environment(**env), quiet_logs():
            _measure(fig)
    fig.notes.append(
        f"{EVENTS} events per mapping, one SQS record per batch; CPU = the route thread's "
        "time.thread_time() (the SQS client's share in brackets), round trips = wall time of its "
        "SendMessageBatch calls to the stub, that client CPU included"
    )
    return fig


def _measure(fig: Figure) -> None:
    from timeline_bridge import route
    from timeline_bridge.mapping import load_mappings
    from timeline_bridge.mapping.engine import MappingSet
    from timeline_bridge.wiring import Dependencies

    deps = Dependencies.from_environ()
    for mapping in load_mappings(MAPPINGS_DIR, settings=deps.settings):
        label = f"route {mapping.name}"
        measured = measured_input(mapping)
        if measured is None:
            fig.add(Row(label, "not measured: no case with an expected body"))
            continue
        case, envelope, enrichment = measured
        sqs = _TimedSqs(deps.aws("sqs"))
        router = route.Router(
            mappings=MappingSet([mapping]),
            queue=route.SqsJobQueue(sqs),
            queue_url=deps.settings.queue_url,
            enrich=_fixed(enrichment),
        )
        event = {
            "Records": [
                {"messageId": "m-1", "receiptHandle": "rh-1", "body": envelope.to_json(), "attributes": {}}
            ]
        }
        answer = route.handle(event, None, router=router, dependencies=deps)  # warm: clients, imports
        if answer.get("batchItemFailures") or sqs.calls != 1:
            fig.add(Row(label, f"not measured: the event was not routed ({answer}, {sqs.calls} calls)"))
            continue
        sqs.calls, sqs.seconds, sqs.cpu_seconds = 0, 0.0, 0.0
        cpu_started = time.thread_time()
        for _ in range(EVENTS):
            route.handle(event, None, router=router, dependencies=deps)
        cpu_us = (time.thread_time() - cpu_started) / EVENTS * 1e6
        trip_us = sqs.seconds / EVENTS * 1e6
        send_cpu_us = sqs.cpu_seconds / EVENTS * 1e6
        fig.add(
            Row(
                label,
                f"CPU {cpu_us:.0f} µs/event ({send_cpu_us:.0f} in the SQS client)",
                f"{sqs.calls / EVENTS:.0f} round trip(s) {trip_us:.0f} µs/event",
                cpu_us / trip_us if trip_us else None,
                data={
                    "cpu_us": cpu_us,
                    "sqs_client_cpu_us": send_cpu_us,
                    "round_trips_per_event": sqs.calls / EVENTS,
                    "round_trip_us": trip_us,
                    "target": mapping.target,
                    "case": case.name,
                },
            )
        )
