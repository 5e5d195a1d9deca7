"""Figure 7: cost per million timeline events, at AWS list prices.

Every sample in `events/` (every source, the shipped mappings' real fan-out) is sent ROUNDS times,
each time with fresh event ids, through the `bridge dev` runtime in this process: ingest, route
and deliver run as the template wires them (its batch sizes and batching windows), against moto
and the provider sandboxes. Every AWS call the functions and Lambda's SQS pollers make is counted
by API (a botocore hook on their clients), each invocation is timed, and every line the stages
log (JSON log lines and EMF metric blobs) is captured and measured. `price` turns that usage into
dollars at the one table of list prices below; `usd_per_million` is the cost of what scales with
events, divided by the timeline events the sandboxes stored.

What is counted, and how it is priced (us-east-1, arm64, on-demand):
- Lambda: one request per invocation; billed duration (rounded up to 1 ms) x the function's
  MemorySize from template.yaml. Pacing sleeps are left out: the sandboxes' rate limits run in
  scaled time (TIME_SCALE), and below a target's limit the pacer does not wait.
- SQS: every call the functions make and every non-empty ReceiveMessage and DeleteMessageBatch of
  the pollers; one request per 64 KiB chunk of payload.
- DynamoDB on demand: write units per item written (1 per KB, a failed conditional write
  included), read units per item read (4 KB; half for an eventually consistent read).
- S3: PUTs of the event archive, and a month of storage of what they wrote.
- CloudWatch Logs: the bytes of every JSON log line and EMF blob, plus Lambda's START/END/REPORT
  lines per invocation, plus 26 bytes per log event.
- Fixed per month, not per event (listed apart, see `FIXED`): custom metrics (each distinct
  metric and dimension set the EMF blobs publish), secrets stored, and the GetSecretValue calls
  each warm instance makes to refresh its cached secrets.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import io
import json
import math
import re
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from bench.context import ROOT
from bench.report import Figure, Row

# --- prices -----------------------------------------------------------------------------------

# List prices for us-east-1, arm64, on-demand, as AWS publishes them on its pricing pages (Lambda,
# SQS, DynamoDB, S3, Secrets Manager, CloudWatch). Known as of PRICES_AS_OF; not re-read from the
# live pages when this table was written (no network there): check them before quoting.
PRICES_AS_OF = "2026-12-03"
PRICES: dict[str, float] = {
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second_arm64": 0.0000133334,
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KiB chunk of a request's payload
    "dynamodb_write_unit": 0.625 / 1e6,  # on-demand, since the November 2024 price cut
    "dynamodb_read_unit": 0.125 / 1e6,
    "s3_put": 0.005 / 1000,
    "s3_gb_month": 0.023,
    "secrets_api_call": 0.05 / 10_000,
    "secret_month": 0.40,
    "logs_gb_ingested": 0.50,
    "custom_metric_month": 0.30,  # first 10,000 metrics
}

# --- what one run measures --------------------------------------------------------------------

ROUNDS = 30  # each sample sent this often, with fresh ids
SENDERS = 2  # few: every function shares this process's CPU, and contention would bill as duration
TIME_SCALE = 0.01  # the sandboxes' rate-limit windows and the deliverers' pacing
SETTLE_S = 60.0
GOAL_USD_PER_MILLION = 1.00
MONTHLY_EVENTS = 1_000_000  # the volume the fixed monthly items are spread over, in the README
SQS_CHUNK = 64 * 1024
LOG_EVENT_OVERHEAD = 26  # bytes CloudWatch Logs counts per log event on top of its message
SECRETS_REFRESH_S = 300  # SECRETS_MAX_AGE's default: a warm instance re-reads each secret this often
SECONDS_PER_MONTH = 30 * 86_400


@dataclass
class Usage:
    """What one run used, in the units AWS bills."""

    timeline_events: int = 0
    webhooks: int = 0
    lambda_requests: Counter[str] = field(default_factory=Counter)  # function -> invocations
    lambda_ms: Counter[str] = field(default_factory=Counter)  # function -> billed ms (rounded up)
    memory_mb: dict[str, int] = field(default_factory=dict)  # function -> MemorySize
    sqs_requests: Counter[str] = field(default_factory=Counter)  # "who:Operation" -> 64 KiB chunks
    write_units: Counter[str] = field(default_factory=Counter)  # "who:Operation" -> WCU
    read_units: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # -> RCU
    s3_puts: int = 0
    s3_bytes: int = 0
    log_bytes: Counter[str] = field(default_factory=Counter)  # json | emf | platform | overhead
    log_lines: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)  # "who:service.Operation" -> calls
    metrics: set[tuple[str, str]] = field(default_factory=set)  # (metric name, dimensions)
    secrets: set[tuple[str, str]] = field(default_factory=set)  # (function, secret) per template
    slept_ms: Counter[str] = field(default_factory=Counter)  # function -> pacing sleeps left out
    refused: list[str] = field(default_factory=list)  # samples a webhook function refused


@dataclass
class Item:
    """One billed item: how much of it a million timeline events use, and what that costs."""

    item: str
    quantity_per_million: float
    unit: str
    unit_price: float
    usd_per_million: float
    detail: str = ""


@dataclass
class Fixed:
    """A monthly charge that does not grow with events."""

    item: str
    quantity: float
    unit: str
    unit_price: float
    usd_per_month: float
    detail: str = ""


def price(usage: Usage, prices: dict[str, float] = PRICES) -> tuple[list[Item], list[Fixed]]:
    """The bill of `usage`, per million timeline events, and the fixed monthly items."""
    per = 1e6 / usage.timeline_events if usage.timeline_events else 0.0
    items: list[Item] = []

    def add(name: str, quantity: float, unit: str, key: str, detail: str = "") -> None:
        items.append(Item(name, quantity * per, unit, prices[key], quantity * per * prices[key], detail))

    for fn in sorted(usage.lambda_requests):
        add(f"Lambda requests: {fn}", usage.lambda_requests[fn], "requests", "lambda_request")
    for fn in sorted(usage.lambda_ms):
        memory = usage.memory_mb.get(fn, 128)
        gb_s = usage.lambda_ms[fn] / 1000 * memory / 1024
        invocations = usage.lambda_requests[fn] or 1
        add(
            f"Lambda GB-s: {fn}",
            gb_s,
            "GB-s",
            "lambda_gb_second_arm64",
            f"{memory} MB x {usage.lambda_ms[fn] / invocations:.1f} ms billed per invocation",
        )
    for who in sorted(usage.sqs_requests):
        add(f"SQS requests: {who}", usage.sqs_requests[who], "requests", "sqs_request")
    for who in sorted(usage.write_units):
        add(f"DynamoDB write units: {who}", usage.write_units[who], "WRU", "dynamodb_write_unit")
    for who in sorted(usage.read_units):
        add(f"DynamoDB read units: {who}", usage.read_units[who], "RRU", "dynamodb_read_unit")
    if usage.s3_puts:
        add("S3 PUT: event archive", usage.s3_puts, "PUTs", "s3_put")
        # Each object is kept about a month (ArchiveRetentionDays 30): a month of storage per event.
        add("S3 storage: event archive (30 days)", usage.s3_bytes / 1e9, "GB-month", "s3_gb_month")
    for kind in sorted(usage.log_bytes):
        add(
            f"CloudWatch Logs ingested: {kind}",
            usage.log_bytes[kind] / 1e9,
            "GB",
            "logs_gb_ingested",
            f"{usage.log_lines[kind]} lines in the run" if usage.log_lines[kind] else "",
        )
    fixed = [
        Fixed(
            "CloudWatch custom metrics (EMF)",
            len(usage.metrics),
            "metrics",
            prices["custom_metric_month"],
            len(usage.metrics) * prices["custom_metric_month"],
            "each distinct metric name and dimension values published in the run",
        )
    ]
    secret_ids = {secret for _, secret in usage.secrets}
    fixed.append(
        Fixed(
            "Secrets Manager secrets stored",
            len(secret_ids),
            "secrets",
            prices["secret_month"],
            len(secret_ids) * prices["secret_month"],
            "one per credential the functions read (template.yaml)",
        )
    )
    refreshes = len(usage.secrets) * SECONDS_PER_MONTH / SECRETS_REFRESH_S
    fixed.append(
        Fixed(
            "Secrets Manager GetSecretValue (cache refreshes)",
            refreshes,
            "calls",
            prices["secrets_api_call"],
            refreshes * prices["secrets_api_call"],
            f"{len(usage.secrets)} (function, secret) pairs, each re-read every {SECRETS_REFRESH_S} s "
            "by one warm instance",
        )
    )
    return items, fixed


def total(items: list[Item]) -> float:
    return sum(i.usd_per_million for i in items)


def per_webhook(items: list[Item], usage: Usage) -> float:
    """The same bill per million webhooks received."""
    if not usage.webhooks:
        return 0.0
    return total(items) * usage.timeline_events / usage.webhooks


# --- sizes ------------------------------------------------------------------------------------


def attribute_size(value: dict[str, Any]) -> int:
    """Bytes a DynamoDB attribute value counts towards its item's size (AWS's published rules)."""
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        digits = len(str(inner).lstrip("-").replace(".", "").lstrip("0")) or 1
        return 1 + math.ceil(digits / 2)
    if kind == "B":
        return len(base64.b64decode(inner)) if isinstance(inner, str) else len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "BS"):
        return sum(attribute_size({kind[0]: v}) for v in inner)
    if kind == "NS":
        return sum(attribute_size({"N": v}) for v in inner)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + attribute_size(v) for k, v in inner.items())
    return 0


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return float(units) if consistent else units / 2


def sqs_chunks(payload_bytes: int) -> int:
    return max(1, math.ceil(payload_bytes / SQS_CHUNK))


# --- counting the AWS calls -------------------------------------------------------------------

POLLER = "lambda-poller"
POLLER_OPERATIONS = {"ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility"}
_building_for: contextvars.ContextVar[str | None] = contextvars.ContextVar("building_for", default=None)


def _body(params: dict[str, Any]) -> dict[str, Any]:
    raw = params.get("body")
    if isinstance(raw, bytes | str) and raw[:1] in (b"{", "{"):
        with contextlib.suppress(ValueError):
            parsed = json.loads(raw)
            return parsed if isinstance(parsed, dict) else {}
    return {}


class Meter:
    """Counts what the clients it is attached to call, in billed units, into `usage`."""

    def __init__(self, usage: Usage) -> None:
        self.usage = usage
        self.lock = threading.Lock()
        self.on = False

    def attach(self, client: Any, who: str) -> None:
        client.meta.events.register("before-call", lambda **kw: self._before(who, **kw))
        client.meta.events.register("after-call", lambda **kw: self._after(who, **kw))

    def _before(self, who: str, model: Any, params: dict[str, Any], context: Any = None, **_: Any) -> None:
        if not self.on:
            return
        service = model.service_model.service_name
        op = model.name
        if who == POLLER and op not in POLLER_OPERATIONS:
            return  # the runtime's own look at its queues: no Lambda poller makes these
        body = _body(params)
        if context is not None:
            context["bench_body"] = body
        if op == "ReceiveMessage":
            return  # counted after the call: an empty receive is the idle poller, not the events
        with self.lock:
            u = self.usage
            u.calls[f"{who}:{service}.{op}"] += 1
            key = f"{who}:{op}"
            if service == "sqs":
                size = sum(len(str(e.get("MessageBody", "")).encode()) for e in body.get("Entries") or ())
                size += len(str(body.get("MessageBody", "")).encode())
                u.sqs_requests[key] += sqs_chunks(size)
            elif service == "dynamodb":
                if op == "PutItem":
                    u.write_units[key] += write_units(item_size(body.get("Item") or {}))
                elif op == "UpdateItem":
                    written = {**(body.get("Key") or {}), **(body.get("ExpressionAttributeValues") or {})}
                    u.write_units[key] += write_units(item_size(written))
                elif op == "DeleteItem":
                    u.write_units[key] += 1
                elif op == "BatchWriteItem":
                    for requests in (body.get("RequestItems") or {}).values():
                        for request in requests:
                            put = request.get("PutRequest")
                            u.write_units[key] += write_units(item_size(put["Item"])) if put else 1
            elif service == "s3" and op == "PutObject":
                payload = params.get("body")
                u.s3_puts += 1
                u.s3_bytes += len(payload) if isinstance(payload, bytes | str) else 0

    def _after(self, who: str, model: Any, parsed: dict[str, Any], context: Any = None, **_: Any) -> None:
        if not self.on:
            return
        op = model.name
        body = (context or {}).get("bench_body") or {}
        with self.lock:
            u = self.usage
            if op == "ReceiveMessage":
                messages = parsed.get("Messages") or []
                if messages:
                    u.calls[f"{who}:sqs.{op}"] += 1
                    size = sum(len(m.get("Body", "").encode()) for m in messages)
                    u.sqs_requests[f"{who}:{op}"] += sqs_chunks(size)
            elif op == "GetItem":
                found = parsed.get("Item") or {}
                u.read_units[f"{who}:{op}"] += read_units(item_size(found), bool(body.get("ConsistentRead")))
            elif op == "BatchGetItem":
                for items in (parsed.get("Responses") or {}).values():
                    for found in items:
                        u.read_units[f"{who}:{op}"] += read_units(item_size(found), False)


# --- the samples, with fresh ids ----------------------------------------------------------------


@dataclass
class Sample:
    source: str
    path: str  # the Function URL path, e.g. /hubspot or /generic/billing
    body: bytes
    headers: dict[str, str]
    file: str


def samples() -> list[Sample]:
    """Every sample under events/<source>/ of a source with a webhook function, read as `bridge
    send` reads it (the headers a re-send keeps)."""
    from timeline_bridge.sources import SOURCE_SPECS
    from timeline_bridge_tools.cli.send import load_sample

    out = []
    for folder in sorted((ROOT / "events").iterdir()):
        if folder.name not in SOURCE_SPECS:
            continue  # events/route, events/deliver: queue records, not webhooks
        spec = SOURCE_SPECS[folder.name]
        for file in sorted(folder.iterdir()):
            sample = load_sample(file)
            if sample.event is not None:
                raw_path = sample.raw_path or "/"
                # Locally each function's URL is under /<source>; a generic endpoint's path has it.
                path = raw_path if raw_path.startswith(f"/{folder.name}/") else f"/{folder.name}"
                out.append(Sample(folder.name, path, sample.body, sample.sender_headers(), file.name))
            else:
                headers = {"content-type": spec.sample_content_type(sample.body)}
                out.append(Sample(folder.name, f"/{folder.name}", sample.body, headers, file.name))
    return out


def fresh(sample: Sample, n: int) -> Sample:
    """`sample` as a new event: its identity (what ingest dedupes on) made unique to round `n`."""
    body, headers = sample.body, dict(sample.headers)
    tag = f"{n:04d}"
    if sample.source == "hubspot":
        events = json.loads(body)
        for e in events:
            e["eventId"] = int(e["eventId"]) * 10_000 + n
        body = json.dumps(events, separators=(",", ":")).encode()
    elif sample.source == "pipedrive":
        data = json.loads(body)
        meta = data.setdefault("meta", {})
        if str(data.get("v", "")) == "1" or "timestamp_micro" in meta:
            meta["timestamp_micro"] = int(meta.get("timestamp_micro") or 0) + n
        else:
            meta["id"] = f"{meta.get('id', 'bench')}-{tag}"
        body = json.dumps(data, separators=(",", ":")).encode()
    elif sample.source == "slack":
        form = parse_qs(body.decode())
        if "payload" in form:
            payload = json.loads(form["payload"][0])
            if "trigger_id" in payload:
                payload["trigger_id"] = f"{payload['trigger_id']}.{tag}"
            body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()
        elif body[:1] == b"{":
            data = json.loads(body)
            if "event_id" in data:
                data["event_id"] = f"{data['event_id']}{tag}"
            body = json.dumps(data, separators=(",", ":")).encode()
    elif sample.source == "salesforce":
        body = re.sub(
            rb"(<Notification>\s*<Id>[^<]{0,14})[^<]{4}(</Id>)", rb"\g<1>" + tag.encode() + rb"\2", body
        )
    elif sample.source == "generic":
        headers["webhook-id"] = f"msg_bench{uuid.uuid4().hex}"
    return Sample(sample.source, sample.path, body, headers, sample.file)


# --- the run ------------------------------------------------------------------------------------


class _Capture(io.TextIOBase):
    """A stream that measures the lines written to it (JSON log lines, EMF blobs)."""

    def __init__(self, usage: Usage, meter: Meter) -> None:
        self.usage = usage
        self.meter = meter
        self._partial = threading.local()

    def write(self, text: str) -> int:
        buffered = getattr(self._partial, "text", "") + text
        *lines, rest = buffered.split("\n")
        self._partial.text = rest
        for line in lines:
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        if not line.strip() or not self.meter.on:
            return
        kind = "json log lines"
        with contextlib.suppress(ValueError):
            data = json.loads(line)
            if isinstance(data, dict) and "_aws" in data:
                kind = "EMF metric blobs"
                directives = data["_aws"].get("CloudWatchMetrics") or []
                for directive in directives:
                    for dimensions in directive.get("Dimensions") or [[]]:
                        values = ",".join(f"{d}={data.get(d)}" for d in dimensions)
                        for metric in directive.get("Metrics") or []:
                            self.usage.metrics.add((metric["Name"], values))
        with self.meter.lock:
            self.usage.log_bytes[kind] += len(line.encode()) + 1
            self.usage.log_lines[kind] += 1
            self.usage.log_bytes["per-event overhead (26 B)"] += LOG_EVENT_OVERHEAD


def platform_lines(memory_mb: int) -> int:
    """Bytes of the START, END and REPORT lines Lambda writes for one invocation (text format)."""
    rid = str(uuid.uuid4())
    lines = [
        f"START RequestId: {rid} Version: $LATEST",
        f"END RequestId: {rid}",
        f"REPORT RequestId: {rid}\tDuration: 12.34 ms\tBilled Duration: 13 ms\t"
        f"Memory Size: {memory_mb} MB\tMax Memory Used: 98 MB\t",
    ]
    return sum(len(line) + 1 + LOG_EVENT_OVERHEAD for line in lines)


_invocation = threading.local()


@contextlib.contextmanager
def _instrumented(usage: Usage, meter: Meter) -> Iterator[None]:
    """Count every function's AWS calls, time its invocations, and leave out pacing sleeps."""
    from timeline_bridge import aws, wiring
    from timeline_bridge_tools.local import runtime as local_runtime

    class CountingClients(aws.AwsClients):
        def __init__(self) -> None:
            super().__init__()
            self.who = _building_for.get() or "unknown"

        def __call__(self, service: str) -> Any:
            with self._lock:
                built = self._clients.get(service)
                if built is None:
                    built = self._clients[service] = aws.new_client(service)
                    meter.attach(built, self.who)
                return built

    fn_class = local_runtime.LocalFunction
    original_configure, original_invoke = fn_class.configure, fn_class.invoke
    original_clients, original_sleep = wiring.AwsClients, time.sleep

    def configure(self: Any) -> Any:
        token = _building_for.set(self.logical_id)
        try:
            return original_configure(self)
        finally:
            _building_for.reset(token)

    def invoke(self: Any, event: dict[str, Any], context: Any) -> Any:
        _invocation.slept = 0.0
        started = time.perf_counter()
        try:
            return original_invoke(self, event, context)
        finally:
            elapsed = time.perf_counter() - started - _invocation.slept
            if meter.on:
                with meter.lock:
                    usage.lambda_requests[self.logical_id] += 1
                    usage.lambda_ms[self.logical_id] += max(1, math.ceil(elapsed * 1000))
                    usage.slept_ms[self.logical_id] += round(_invocation.slept * 1000)
            _invocation.slept = 0.0

    def sleep(seconds: float) -> None:
        if hasattr(_invocation, "slept"):
            _invocation.slept += max(seconds, 0.0)
        original_sleep(seconds)

    fn_class.configure, fn_class.invoke = configure, invoke  # type: ignore[method-assign]
    wiring.AwsClients = CountingClients  # type: ignore[misc]
    time.sleep = sleep  # type: ignore[assignment]
    try:
        yield
    finally:
        fn_class.configure, fn_class.invoke = original_configure, original_invoke  # type: ignore[method-assign]
        wiring.AwsClients = original_clients  # type: ignore[misc]
        time.sleep = original_sleep


def _stored(runtime: Any) -> dict[str, int]:
    from timeline_bridge import TARGETS

    return {name: len(s.events()) for name, s in runtime.sandboxes.items() if name in TARGETS}


def _queues_idle(runtime: Any) -> bool:
    from timeline_bridge_tools.local.event_source import queue_counts

    sqs = runtime.aws("sqs")
    return all(
        not any(queue_counts(sqs, url).values()) for url in runtime.queue_urls.values() if "Dead" not in url
    )


def measure(function_env: dict[str, str] | None = None, rounds: int = ROUNDS) -> Usage:
    """One run of every sample `rounds` times through the local runtime; what it used."""
    import os
    import tempfile

    from timeline_bridge.observability import logger
    from timeline_bridge.sources import source_spec
    from timeline_bridge_tools import signing
    from timeline_bridge_tools.local.function_url import HttpRequest
    from timeline_bridge_tools.local.runtime import LocalRuntime

    usage = Usage()
    meter = Meter(usage)
    capture = _Capture(usage, meter)
    environ = dict(os.environ, POWERTOOLS_METRICS_DISABLED="false")
    environ.pop("POWERTOOLS_LOG_LEVEL", None)
    environ.pop("LOG_LEVEL", None)
    handler = logger.registered_handler
    level = logger.log_level
    with (
        tempfile.TemporaryDirectory(prefix="tb-bench-cost-") as state,
        _instrumented(usage, meter),
        contextlib.redirect_stdout(capture),  # EMF blobs are printed
    ):
        old_stream = handler.setStream(capture)  # type: ignore[attr-defined]
        runtime = LocalRuntime(
            ROOT,
            port=0,
            write_state=False,
            state_dir=state,
            log_level="INFO",  # the template's default LogLevel
            environ=environ,
            function_env={"DELIVERY_RATE_TIME_SCALE": str(TIME_SCALE), **(function_env or {})},
            max_batching_window=300.0,  # the template's own windows, uncapped
            echo=None,
        )
        try:
            runtime.start()
            meter.attach(runtime.aws("sqs"), POLLER)
            for sandbox in runtime.sandboxes.values():
                sandbox.set_rate_limits(None, time_scale=TIME_SCALE)
            by_source = {fn.route: fn for fn in runtime.functions.values() if fn.kind == "webhook"}
            usage.memory_mb, usage.secrets = _from_template(runtime)
            host = f"127.0.0.1:{runtime.port}"
            base = _stored(runtime)

            def post(sample: Sample) -> int:
                spec = source_spec(sample.source)
                secret = _secret(runtime, sample)
                url = f"http://{host}{sample.path}"
                if spec.signed_url:
                    url = spec.signed_url(url, secret)
                path, _, query = url.partition("//")[2].partition("/")[2].partition("?")
                name = spec.endpoints.from_path(sample.path) if spec.endpoints else None
                headers = dict(sample.headers, host=host)
                headers.update(
                    signing.sign_request(
                        sample.source,
                        sample.body,
                        secret,
                        url=url,
                        name=name,
                        webhook_id=headers.get((spec.message_id_header or "").lower()),
                    )
                )
                request = HttpRequest(
                    "POST", "/" + path, query, list(headers.items()), sample.body, "127.0.0.1"
                )
                return runtime.invoke_url(by_source[sample.source], request).status

            base_samples = samples()
            batch = [fresh(s, n) for n in range(1, rounds + 1) for s in base_samples]
            meter.on = True
            with ThreadPoolExecutor(SENDERS) as pool:
                statuses = list(pool.map(post, batch))
            deadline = time.monotonic() + SETTLE_S
            last, still = -1, 0.0
            while time.monotonic() < deadline:
                time.sleep(0.5)
                now = sum(_stored(runtime).values())
                if now == last and _queues_idle(runtime):
                    still += 0.5
                    if still >= 2.0:
                        break
                else:
                    still = 0.0
                last = now
            meter.on = False
            stored = _stored(runtime)
            usage.timeline_events = sum(stored.values()) - sum(base.values())
            usage.webhooks = sum(1 for status in statuses if status < 300)
            usage.refused = sorted(
                {f"{s.file}: {status}" for s, status in zip(batch, statuses, strict=True) if status >= 300}
            )
        finally:
            meter.on = False
            runtime.stop()
            handler.setStream(old_stream)  # type: ignore[attr-defined]
            logger.setLevel(level)
    for fn, n in usage.lambda_requests.items():
        usage.log_bytes["Lambda START/END/REPORT"] += n * platform_lines(usage.memory_mb.get(fn, 128))
        usage.log_lines["Lambda START/END/REPORT"] += 3 * n
    return usage


def _secret(runtime: Any, sample: Sample) -> str:
    from timeline_bridge.config import parse_secret_value
    from timeline_bridge.sources import source_spec

    spec = source_spec(sample.source)
    name = spec.endpoints.from_path(sample.path) if spec.endpoints else None
    for variable in spec.secret_names(name):
        values = parse_secret_value(runtime.secret_values.get(variable))
        if values:
            return values[0]
    raise RuntimeError(f"no local secret for {sample.source} ({sample.file})")


def _from_template(runtime: Any) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """Each function's MemorySize, and the (function, secret) pairs it reads from Secrets Manager
    (locally the runtime hands the values in directly, so the calls are not seen in the run)."""
    from timeline_bridge_tools.local import template as tpl

    specs = tpl.functions(tpl.load_template(runtime.template_path))
    memory = {logical_id: spec.memory_size for logical_id, spec in specs.items()}
    secrets = {
        (logical_id, name.removesuffix("_SECRET_ID"))
        for logical_id, spec in specs.items()
        for name in spec.environment
        if name.endswith("_SECRET_ID")
    }
    return memory, secrets


# --- the figure -----------------------------------------------------------------------------------


def rows(fig: Figure, usage: Usage, label: str = "") -> tuple[float, list[Item], list[Fixed]]:
    items, fixed = price(usage)
    usd = total(items)
    suffix = f" ({label})" if label else ""
    breakdown = [item.__dict__ for item in sorted(items, key=lambda i: -i.usd_per_million)]
    fixed_month = sum(f.usd_per_month for f in fixed)
    fig.add(
        Row(
            f"cost per million timeline events{suffix}",
            f"${usd:.2f}",
            f"{usage.timeline_events} timeline events from {usage.webhooks} webhooks; "
            f"+${fixed_month:.2f}/month fixed",
            goal=f"<= ${GOAL_USD_PER_MILLION:.2f}",
            met=usd <= GOAL_USD_PER_MILLION,
            data={
                "usd_per_million": usd,
                "breakdown": breakdown,
                "fixed_monthly": [f.__dict__ for f in fixed],
                "fixed_usd_per_month": fixed_month,
                "timeline_events": usage.timeline_events,
                "webhooks": usage.webhooks,
                "calls": dict(sorted(usage.calls.items())),
                "pacing_sleep_ms_left_out": dict(usage.slept_ms),
                "prices": PRICES,
                "prices_as_of": PRICES_AS_OF,
                "region": "us-east-1",
            },
        )
    )
    fig.add(
        Row(
            f"cost per million webhooks{suffix}",
            f"${per_webhook(items, usage):.2f}",
            f"{usage.timeline_events / max(usage.webhooks, 1):.2f} timeline events per webhook",
            data={"usd_per_million": per_webhook(items, usage)},
        )
    )
    return usd, items, fixed


def run() -> Figure:
    fig = Figure("cost", "7. Cost at AWS list prices")
    try:
        from timeline_bridge_tools.local.runtime import LocalRuntime  # noqa: F401 - present or not measured
    except ImportError as exc:
        return fig.skip(f"local runtime not importable ({exc})")
    usage = measure()
    if not usage.timeline_events:
        return fig.skip("the samples produced no timeline event in the sandboxes")
    rows(fig, usage)
    if usage.refused:
        fig.notes.append(f"refused samples (not counted as webhooks): {', '.join(usage.refused)}")
    fig.notes.append(
        f"list prices us-east-1 arm64 on-demand as of {PRICES_AS_OF}; {ROUNDS} rounds of every "
        f"sample in events/, {SENDERS} senders, the template's batch sizes and windows"
    )
    return fig
