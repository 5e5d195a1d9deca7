"""A source and a target that exist only in this test go through the whole pipeline: ingest, route,
deliver, out to a sandbox over loopback.

Both are registered in-process (`register_source`, `register_target`) and removed afterwards; the
mapping between them is a file in `tmp_path` found through BRIDGE_MAPPINGS_DIR. Nothing else names
them: if any stage still keeps its own list of sources or targets, this test is where it shows.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge import delivery, ingest, keys
from timeline_bridge.errors import DeliveryFailure, PermanentDeliveryError, RetryLaterError, SignatureError
from timeline_bridge.http import WebhookRequest
from timeline_bridge.mapping import contracts
from timeline_bridge.models import DeliveryJob
from timeline_bridge.sources import (
    ParsedRequest,
    Source,
    SourceEvent,
    SourceSpec,
    register_source,
    unregister_source,
)
from timeline_bridge.sources.base import Clock, equal, fixed_secret, load_json, require_secrets, scalar
from timeline_bridge.target_registry import register_target, unregister_target
from timeline_bridge.targets.base import Delivered, Outcome, TargetClient
from timeline_bridge.targets.http import as_dict, as_str, json_body
from timeline_bridge.targets.spec import Contract, KeyField, TargetSpec
from timeline_bridge_tools.local.event_source import lambda_record
from timeline_bridge_tools.signing import sign_event

# Names no shipped module uses (and unlike the unit tests' `echo` and `beacon`, so the compiled
# contract of one test never stands in for another's).
SOURCE = "chime"
TARGET = "lantern"
MAPPING = "chime-to-lantern"

SIGNING_SECRET_NAME = "CHIME_SIGNING_SECRET"
SIGNING_SECRET = "chime-test-secret-7d2e0b"
SIGNATURE_HEADER = "X-Chime-Signature"

CREDENTIAL = "LANTERN_TOKEN"
TOKEN = "lantern-test-token-91c4aa"
EVENTS_PATH = "/v1/lanterns"
SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": TARGET,
    "type": "object",
    "additionalProperties": False,
    "required": ["title", "dedupe_key"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "count": {"type": "integer"},
        "dedupe_key": {"type": "string"},
    },
}


# --- the throwaway source ------------------------------------------------------------------------


def _signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ChimeSource(Source):
    """A sender that signs hex(HMAC-SHA256(secret, body)) and posts one JSON event."""

    name = SOURCE
    secret_name = SIGNING_SECRET_NAME
    scope = SOURCE

    def verify(self, request: WebhookRequest, secrets: Sequence[str], *, now: Clock = time.time) -> None:
        given = request.header(SIGNATURE_HEADER) or ""
        if not any(
            equal(_signature(k, request.body), given) for k in require_secrets(secrets, self.secret_name)
        ):
            raise SignatureError(f"{SIGNATURE_HEADER} does not match")

    def parse(self, request: WebhookRequest) -> ParsedRequest:
        body = load_json(request.body, "chime body")
        return ParsedRequest(
            events=[
                SourceEvent(
                    event_type=str(body["type"]),
                    event_id=scalar(body.get("id")),
                    occurred_at=None,
                    event=body,
                    fingerprint=body,
                )
            ]
        )


CHIME = SourceSpec(
    name=SOURCE,
    source=lambda _request, _settings: ChimeSource(),
    identity="id",
    secret_names=fixed_secret(SIGNING_SECRET_NAME),
    sign=lambda request: {SIGNATURE_HEADER: _signature(request.secret, request.body)},
)


# --- the throwaway target ------------------------------------------------------------------------


class LanternClient(TargetClient):
    """One POST per job; success is a 2xx whose body is `{"lantern": {"id": ...}}`."""

    name = TARGET
    credential = CREDENTIAL

    def _send_one(self, job: DeliveryJob) -> Outcome:
        try:
            headers = {"Authorization": f"Bearer {self._require_token()}", "Content-Type": "application/json"}
            response = self._transport.post(EVENTS_PATH, job.body, headers)
        except DeliveryFailure as failure:
            return failure
        status = response.status_code
        if 200 <= status < 300:
            provider_id = as_str(as_dict(as_dict(json_body(response)).get(TARGET)).get("id"))
            if provider_id is None:
                self._note_unexpected_success(response, f"{TARGET}.id", [job.key])
            return Delivered(provider_id, status)
        if status == 429 or status >= 500:
            return RetryLaterError(f"{TARGET} answered {status}", status=status)
        return PermanentDeliveryError(f"{TARGET} answered {status}", status=status)


# --- the sandbox ---------------------------------------------------------------------------------


@dataclass
class Sandbox:
    """A loopback HTTP server standing in for the target's API: it records every request and
    answers the target's success shape with an id of its own making."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    ids = itertools.count(1)
    lock = threading.Lock()
    box = Sandbox(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                provider_id = f"ltn_{next(ids)}"
                box.requests.append(
                    {
                        "method": "POST",
                        "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": json.loads(raw),
                    }
                )
                box.issued.append(provider_id)
            answer = json.dumps({TARGET: {"id": provider_id}}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_args: Any) -> None:  # the server's access log is not the bridge's
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- registration, queues and environment ----------------------------------------------------------


def _clear_process_caches() -> None:
    """What is built once per process from the registries: the target contracts' schemas."""
    contracts.contract_schema.cache_clear()


@pytest.fixture
def throwaway(aws: Any, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Register the source and the target, give the target its queues, point the bridge at the
    sandbox and at a mappings folder holding only the throwaway mapping; undo it all afterwards.

    It depends on `aws` so the fixture's queues are made before the target exists: the target's
    own queues are created here, the way the stack would create them for a new target."""
    schema_file = tmp_path / f"{TARGET}.schema.json"
    schema_file.write_text(json.dumps(SCHEMA))
    spec = TargetSpec(
        name=TARGET,
        base_url="https://api.lantern.example.test",
        credential=CREDENTIAL,
        contracts=(Contract(TARGET, EVENTS_PATH, schema_file=schema_file),),
        build_client=LanternClient,
        key_fields=(KeyField(("dedupe_key",)),),
    )
    mappings_dir = tmp_path / "mappings"
    mappings_dir.mkdir()
    (mappings_dir / f"{MAPPING}.yaml").write_text(
        f"name: {MAPPING}\n"
        f"source: {SOURCE}\n"
        "when: \"event.type == 'lamp.lit'\"\n"
        f"target: {TARGET}\n"
        "body:\n"
        '  title: "${{ event.title }}"\n'
        '  count: "${{ event.count }}"\n'
    )

    queues: dict[str, str] = {}
    dlq = aws.sqs.create_queue(QueueName=f"timeline-bridge-{TARGET}-dlq")["QueueUrl"]
    dlq_arn = aws.sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queues["queue"] = aws.sqs.create_queue(
        QueueName=f"timeline-bridge-{TARGET}",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"})},
    )["QueueUrl"]
    queues["dlq"] = dlq

    monkeypatch.setenv(f"{TARGET.upper()}_QUEUE_URL", queues["queue"])
    monkeypatch.setenv(f"{TARGET.upper()}_DLQ_URL", queues["dlq"])
    monkeypatch.setenv(f"{TARGET.upper()}_BASE_URL", sandbox.url)
    monkeypatch.setenv(CREDENTIAL, TOKEN)
    monkeypatch.setenv(SIGNING_SECRET_NAME, SIGNING_SECRET)
    monkeypatch.setenv("BRIDGE_MAPPINGS_DIR", str(mappings_dir))
    monkeypatch.setenv("TARGET", TARGET)

    register_source(CHIME)
    register_target(spec)
    _clear_process_caches()
    try:
        yield queues
    finally:
        unregister_target(TARGET)
        unregister_source(SOURCE)
        _clear_process_caches()


# --- driving the stages --------------------------------------------------------------------------


def _function_url_event(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "rawPath": f"/{SOURCE}",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "abc.lambda-url.eu-west-1.on.aws"},
        "requestContext": {
            "domainName": "abc.lambda-url.eu-west-1.on.aws",
            "http": {"method": "POST", "path": f"/{SOURCE}"},
            "requestId": "req-chime-1",
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


def _take(aws: Any, queue_url: str) -> dict[str, Any]:
    """Every message on a queue, as the event source mapping hands them to a function (and, as it
    does, off the queue: a handler that fails a record would have it back in its answer)."""
    arn = aws.sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    records: list[dict[str, Any]] = []
    while True:
        messages = aws.sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            VisibilityTimeout=0,
        ).get("Messages", [])
        if not messages:
            return {"Records": records}
        for message in messages:
            records.append(lambda_record(message, arn))
            aws.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def _metric(stdout: str, name: str) -> list[dict[str, Any]]:
    """The EMF documents on stdout that carry metric `name`."""
    documents = [
        json.loads(line) for line in stdout.splitlines() if line.startswith("{") and '"_aws"' in line
    ]
    return [d for d in documents if name in d]


def test_a_throwaway_source_reaches_a_throwaway_target_when_both_are_only_registered_in_process(
    throwaway, aws, sandbox, lambda_context, load_function, capsys
):
    event = {"id": "evt-42", "type": "lamp.lit", "title": "Porch lamp lit", "count": 3}

    # Ingest: the signed webhook is accepted and its envelope lands on the events queue.
    answer = ingest.handle(
        sign_event(SOURCE, _function_url_event(event), SIGNING_SECRET), lambda_context, source=SOURCE
    )
    assert answer["statusCode"] == 200, answer
    assert json.loads(answer["body"])["accepted"] == 1

    # Route: the deployed handler, which loads the mappings from BRIDGE_MAPPINGS_DIR.
    routed = load_function("route").lambda_handler(_take(aws, aws.events_queue), lambda_context)
    assert routed == {"batchItemFailures": []}
    assert aws.count(throwaway["dlq"]) == 0, aws.receive(throwaway["dlq"])

    # Deliver: the deployed handler, TARGET=lantern, fed what route put on the target's queue.
    batch = _take(aws, throwaway["queue"])
    [job] = [DeliveryJob.from_json(record["body"]) for record in batch["Records"]]
    expected_key = keys.job_key(keys.event_scope(SOURCE), "evt-42", MAPPING)
    assert (job.target, job.mapping, job.key) == (TARGET, MAPPING, expected_key)
    capsys.readouterr()  # only the deliver stage's metrics below
    delivered = load_function("deliver").lambda_handler(batch, lambda_context)
    assert delivered == {"batchItemFailures": []}

    # The sandbox got exactly one request: the mapped body (key field filled by the bridge from the
    # job key) at the contract's path, with the credential.
    [request] = sandbox.requests
    assert (request["method"], request["path"]) == ("POST", EVENTS_PATH)
    assert request["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert request["body"] == {"title": "Porch lamp lit", "count": 3, "dedupe_key": expected_key}

    # Counted as delivered: the deliver stage's metric, the delivered-record COMPLETED with the id
    # the sandbox issued, and nothing retried or dead-lettered.
    [published] = _metric(capsys.readouterr().out, delivery.METRIC_DELIVERED)
    assert published["target"] == TARGET
    assert published[delivery.METRIC_DELIVERED] == [1]
    items = aws.dynamodb.scan(TableName=aws.table)["Items"]
    [record] = [i for i in items if i["id"]["S"].startswith(f"deliver#{TARGET}")]
    assert record["status"]["S"] == "COMPLETED"
    assert json.loads(record["data"]["S"])["provider_id"] == sandbox.issued[0]
    assert aws.count(throwaway["queue"]) == 0
    assert aws.count(throwaway["dlq"]) == 0
