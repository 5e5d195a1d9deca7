"""Lambda's SQS event source mapping, emulated for the local runtime and the tests.

What it reproduces from the real one (the parts the bridge depends on):
- polls the queue with `ReceiveMessage` (up to `batch_size` records, gathered for at most
  `batching_window` seconds; the queue's own visibility timeout unless overridden);
- invokes the handler with the Lambda SQS event (`Records[]` with `messageId`, `receiptHandle`,
  `body`, `attributes.ApproximateReceiveCount`, `messageAttributes`, `eventSourceARN`, ...) and a
  context whose `get_remaining_time_in_millis()` counts down from the function timeout;
- `ReportBatchItemFailures`: deletes every record not named in `batchItemFailures` and leaves the
  named ones in flight until their visibility timeout ends. A handler exception, an invalid
  `itemIdentifier` or a run past the function timeout fails the whole batch (nothing deleted).

Redrive to the DLQ after `maxReceiveCount` is done by SQS itself (moto does it too) when the
queue has a `RedrivePolicy`.

Use `EventSourceMapping(...).start()` / `.stop()` for background pollers (`bridge dev`), or
`drain(mappings)` in tests to pump until every queue is empty and nothing is in flight.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any], Any], Any]

MAX_RECEIVE = 10  # SQS ReceiveMessage returns at most 10 messages per call


@dataclass
class FakeLambdaContext:
    """The parts of the Lambda context object the bridge (and Powertools) read."""

    function_name: str
    timeout: float
    memory_limit_in_mb: int = 512
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self._deadline = time.monotonic() + self.timeout

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/[{self.function_version}]{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def lambda_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One SQS message as Lambda hands it to the function."""
    region = queue_arn.split(":")[3] if queue_arn.count(":") >= 5 else "us-east-1"
    attributes = {k: str(v) for k, v in (message.get("Attributes") or {}).items()}
    attributes.setdefault("ApproximateReceiveCount", "1")
    body = message.get("Body", "")
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": {
            name: {
                "stringValue": value.get("StringValue"),
                "binaryValue": value.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 (SQS's own checksum)
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def queue_counts(sqs: Any, queue_url: str) -> dict[str, int]:
    """Visible, in-flight and delayed message counts of a queue."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {
        "visible": int(attrs.get("ApproximateNumberOfMessages", 0)),
        "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
    }


class EventSourceMapping:
    """One queue → one function, like `AWS::Lambda::EventSourceMapping` with `ReportBatchItemFailures`.

    `concurrency` pollers run in parallel once started (Lambda's `MaximumConcurrency`).
    """

    def __init__(
        self,
        queue_url: str,
        handler: Handler,
        *,
        sqs: Any,
        function_name: str = "function",
        batch_size: int = 10,
        batching_window: float = 0.0,
        visibility_timeout: int | None = None,
        function_timeout: float = 30.0,
        concurrency: int = 1,
        poll_wait: int = 1,
        idle_wait: float = 0.02,
    ) -> None:
        self.queue_url = queue_url
        self.handler = handler
        self.function_name = function_name
        self.batch_size = max(1, batch_size)
        self.batching_window = max(0.0, batching_window)
        self.visibility_timeout = visibility_timeout
        self.function_timeout = function_timeout
        self.concurrency = max(1, concurrency)
        self.poll_wait = max(0, int(poll_wait))
        self.idle_wait = max(0.0, idle_wait)
        self.sqs = sqs  # the poller's own client, like Lambda's event source mapping
        self._queue_arn: str | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        # One receive at a time per mapping, like Lambda's poller handing batches to invocations;
        # it also keeps an in-process moto from giving one message to two pollers at once.
        self._receive_lock = threading.Lock()
        self._busy = 0
        # counters, for tests and the console
        self.invocations = 0
        self.records = 0
        self.failed_records = 0
        self.errors = 0

    # -- plumbing -------------------------------------------------------------------------------

    @property
    def queue_arn(self) -> str:
        if self._queue_arn is None:
            attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
            self._queue_arn = attrs["Attributes"]["QueueArn"]
        return self._queue_arn

    @property
    def busy(self) -> bool:
        """True while a handler invocation is running."""
        with self._lock:
            return self._busy > 0

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def counts(self) -> dict[str, int]:
        return queue_counts(self.sqs, self.queue_url)

    # -- one poll -------------------------------------------------------------------------------

    def _receive(self, wait: int) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        window_end = time.monotonic() + self.batching_window
        first = True
        while len(messages) < self.batch_size:
            kwargs: dict[str, Any] = {
                "QueueUrl": self.queue_url,
                "MaxNumberOfMessages": min(MAX_RECEIVE, self.batch_size - len(messages)),
                "WaitTimeSeconds": wait if first else 0,
                "MessageSystemAttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
            }
            if self.visibility_timeout is not None:
                kwargs["VisibilityTimeout"] = int(self.visibility_timeout)
            with self._receive_lock:
                got = self.sqs.receive_message(**kwargs).get("Messages", [])
            first = False
            messages.extend(got)
            if not messages:
                break
            if len(got) < kwargs["MaxNumberOfMessages"]:
                # The queue ran dry: keep gathering only while the batching window is open.
                if time.monotonic() >= window_end:
                    break
                time.sleep(min(0.05, max(0.0, window_end - time.monotonic())))
        return messages

    def poll_once(self, wait: int | None = None) -> int:
        """Receive one batch, invoke the handler, settle the batch. Returns the number of records."""
        messages = self._receive(self.poll_wait if wait is None else wait)
        if not messages:
            return 0
        with self._lock:
            self._busy += 1
        try:
            self._invoke(messages)
        finally:
            with self._lock:
                self._busy -= 1
        return len(messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        arn = self.queue_arn
        event = {"Records": [lambda_record(m, arn) for m in messages]}
        context = FakeLambdaContext(function_name=self.function_name, timeout=self.function_timeout)
        started = time.monotonic()
        self.invocations += 1
        self.records += len(messages)
        try:
            response = self.handler(event, context)
        except Exception:
            # Lambda: a function error returns the whole batch to the queue (after visibility).
            self.errors += 1
            self.failed_records += len(messages)
            log.exception(
                "handler %s failed; %d records return after visibility timeout",
                self.function_name,
                len(messages),
            )
            return
        if time.monotonic() - started > self.function_timeout:
            self.errors += 1
            self.failed_records += len(messages)
            log.warning(
                "handler %s ran past its %.1fs timeout; batch fails",
                self.function_name,
                self.function_timeout,
            )
            return
        failed = self._failed_ids(response, {m["MessageId"] for m in messages})
        if failed is None:
            self.errors += 1
            self.failed_records += len(messages)
            log.warning("handler %s returned invalid batchItemFailures; batch fails", self.function_name)
            return
        self.failed_records += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        self._delete(done)

    @staticmethod
    def _failed_ids(response: Any, ids: set[str]) -> set[str] | None:
        """The ids named in `batchItemFailures`; None when Lambda would fail the whole batch."""
        if not isinstance(response, dict) or not response.get("batchItemFailures"):
            return set()
        failed: set[str] = set()
        for item in response["batchItemFailures"]:
            ident = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not ident or ident not in ids:
                return None
            failed.add(ident)
        return failed

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), MAX_RECEIVE):
            chunk = messages[start : start + MAX_RECEIVE]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            result = self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
            for failure in result.get("Failed", []):
                log.warning("delete failed on %s: %s", self.queue_url, failure)

    # -- background pollers ---------------------------------------------------------------------

    def start(self) -> EventSourceMapping:
        """Start `concurrency` poller threads (daemon). Idempotent."""
        if self.running:
            return self
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, name=f"esm-{self.function_name}-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def request_stop(self) -> None:
        """Ask the pollers to stop after their current poll (see `stop_all`)."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the pollers to stop and wait for the current invocations to finish."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self.poll_once():
                    self._stop.wait(self.idle_wait)
            except Exception:
                # The AWS endpoint went away or answered an error: back off, keep polling.
                log.exception("poller %s: receive failed", self.function_name)
                self._stop.wait(0.5)

    def __enter__(self) -> EventSourceMapping:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def stop_all(mappings: Iterable[EventSourceMapping], timeout: float = 10.0) -> None:
    """Stop several mappings at once (each may be in a long poll: they wait in parallel)."""
    mappings = list(mappings)
    for mapping in mappings:
        mapping.request_stop()
    for mapping in mappings:
        mapping.stop(timeout)


def drain(
    mappings: Iterable[EventSourceMapping],
    *,
    timeout: float = 60.0,
    extra_queues: Iterable[str] = (),
    sqs: Any = None,
) -> None:
    """Pump until every mapping's queue (and `extra_queues`) is empty, nothing is in flight or
    delayed, and no handler is running. Mappings that are not started are polled here, in turn;
    started ones are left to their own threads. Raises TimeoutError with the counts on timeout."""
    mappings = list(mappings)
    client = sqs or (mappings[0].sqs if mappings else None)
    if client is None:
        return
    urls = [m.queue_url for m in mappings] + list(extra_queues)
    deadline = time.monotonic() + timeout
    while True:
        worked = 0
        for mapping in mappings:
            if not mapping.running:
                worked += mapping.poll_once(wait=0)
        before = sum(m.invocations for m in mappings)
        if worked or any(m.busy for m in mappings):
            if time.monotonic() > deadline:
                raise TimeoutError(f"queues still busy after {timeout:.0f}s")
            if not worked:
                # Started pollers are at work: look again shortly (a spin here would hold the GIL
                # the pollers need).
                time.sleep(0.02)
            continue
        # Queue counts are the expensive question: stop at the first queue that still holds work.
        idle = not any(sum(queue_counts(client, url).values()) for url in urls)
        if idle and not any(m.busy for m in mappings) and before == sum(m.invocations for m in mappings):
            return
        if time.monotonic() > deadline:
            counts = {url: queue_counts(client, url) for url in urls}
            raise TimeoutError(f"queues not drained after {timeout:.0f}s: {counts}")
        time.sleep(0.05)
