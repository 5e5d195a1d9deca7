"""Shared fixtures.

- `aws`: every AWS resource of the stack, in moto (`mock_aws`), with the environment the functions
  read. Use it in any test that touches SQS, DynamoDB or Secrets Manager.
- `lambda_context`: a stand-in for the Lambda context object (Powertools reads its fields).
- `load_function`: `load_function("hubspot")` imports `functions/hubspot/app.py` (every handler
  file is called app.py, so each is loaded by path under its own module name), once per test: its
  stage builds its dependencies at its first call, from the test's environment.
- `load_event`: `load_event("slack/approve-button.json")` reads a Function URL event from `events/`.
- `shipped_mappings`: `shipped_mappings("hubspot-deal-stage-to-stora")` copies named mappings into a
  folder of the test's own (a user's added mappings never change what such a test counts).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from timeline_bridge import TARGETS

ROOT = Path(__file__).resolve().parent.parent
EVENTS_DIR = ROOT / "events"

REGION = "eu-west-1"
IDEMPOTENCY_TABLE = "timeline-bridge-idempotency"
ARCHIVE_BUCKET = "timeline-bridge-events-archive"


@dataclass
class AwsResources:
    """What the `aws` fixture created: clients and the names/URLs the environment points at.

    queues: logical name → URL, for "events", "events-dlq", and "<target>", "<target>-dlq" for
    every target (stora, hubspot, matter, applied).
    """

    sqs: Any
    dynamodb: Any
    table: str
    queues: dict[str, str] = field(default_factory=dict)
    archive_bucket: str = ARCHIVE_BUCKET

    @property
    def s3(self) -> Any:
        """An S3 client (the archive bucket's), made on first use."""
        import boto3

        return boto3.client("s3", region_name=REGION)

    @property
    def secretsmanager(self) -> Any:
        """A Secrets Manager client, made on first use (most tests never need one)."""
        import boto3

        return boto3.client("secretsmanager", region_name=REGION)

    @property
    def events_queue(self) -> str:
        return self.queues["events"]

    def receive(self, queue: str = "events", *, max_messages: int = 1000) -> list[dict[str, Any]]:
        """Take every message off queue `queue` (logical name or URL); returns the parsed bodies."""
        url = self.queues.get(queue, queue)
        bodies: list[dict[str, Any]] = []
        while len(bodies) < max_messages:
            answer = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], VisibilityTimeout=0
            )
            messages = answer.get("Messages") or []
            if not messages:
                break
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def count(self, queue: str = "events") -> int:
        """Messages waiting on `queue` (visible + in flight), without consuming them."""
        url = self.queues.get(queue, queue)
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def put_secret(self, name: str, value: str | list[str], monkeypatch: pytest.MonkeyPatch) -> str:
        """Store secret `name` in Secrets Manager (a list becomes the rotation JSON list) and point
        `NAME_SECRET_ID` at it, removing any plain `NAME` variable. Returns the secret ARN."""
        text = json.dumps(value) if isinstance(value, list) else value
        arn = self.secretsmanager.create_secret(Name=f"timeline-bridge/{name}", SecretString=text)["ARN"]
        monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(f"{name}_SECRET_ID", arn)
        return arn


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsResources]:
    """The stack's AWS resources in moto, and the environment variables that name them.

    Creates: the events queue and its DLQ (redrive after 5 receives), one delivery queue and DLQ
    per target, the idempotency table (partition key `id`, TTL on `expiration`), the event archive
    bucket. Sets EVENTS_QUEUE_URL, EVENTS_DLQ_URL, <TARGET>_QUEUE_URL, <TARGET>_DLQ_URL,
    IDEMPOTENCY_TABLE, EVENTS_ARCHIVE_BUCKET, AWS_DEFAULT_REGION and dummy credentials. Stages built in the test read them at their first call
    (each handler module is loaded once per test).
    """
    from moto import mock_aws

    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        import boto3

        sqs = boto3.client("sqs", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        resources = AwsResources(sqs=sqs, dynamodb=dynamodb, table=IDEMPOTENCY_TABLE)

        def queue_pair(logical: str, env_prefix: str) -> None:
            dlq = sqs.create_queue(QueueName=f"timeline-bridge-{logical}-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            url = sqs.create_queue(
                QueueName=f"timeline-bridge-{logical}",
                Attributes={
                    "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
                    "VisibilityTimeout": "180",
                },
            )["QueueUrl"]
            resources.queues[logical] = url
            resources.queues[f"{logical}-dlq"] = dlq
            monkeypatch.setenv(f"{env_prefix}_QUEUE_URL", url)
            monkeypatch.setenv(f"{env_prefix}_DLQ_URL", dlq)

        queue_pair("events", "EVENTS")
        for target in TARGETS:
            queue_pair(target, target.upper())

        dynamodb.create_table(
            TableName=IDEMPOTENCY_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.update_time_to_live(
            TableName=IDEMPOTENCY_TABLE,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
        )
        monkeypatch.setenv("IDEMPOTENCY_TABLE", IDEMPOTENCY_TABLE)
        resources.s3.create_bucket(
            Bucket=ARCHIVE_BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        monkeypatch.setenv("EVENTS_ARCHIVE_BUCKET", ARCHIVE_BUCKET)
        yield resources


@dataclass
class FakeLambdaContext:
    function_name: str = "timeline-bridge-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:timeline-bridge-test"
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/timeline-bridge-test"
    log_stream_name: str = "2026/01/01/[$LATEST]0"
    remaining_ms: int = 30_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


# Handler modules loaded in this test: each test gets its own, so a handler's stage builds its
# dependencies from that test's environment, at its first call, as a cold start does.
_LOADED_FUNCTIONS: dict[str, ModuleType] = {}


def _load_function(name: str) -> ModuleType:
    """`functions/<name>/app.py` as module `functions_<name>_app` (imported once per test)."""
    module_name = f"functions_{name}_app"
    if name in _LOADED_FUNCTIONS:
        return _LOADED_FUNCTIONS[name]
    spec = importlib.util.spec_from_file_location(module_name, ROOT / "functions" / name / "app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    _LOADED_FUNCTIONS[name] = module
    return module


def _load_event(relative: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / relative).read_text())


@pytest.fixture
def load_function() -> Any:
    """`load_function("hubspot")` → the module `functions/hubspot/app.py` (its `lambda_handler`)."""
    return _load_function


@pytest.fixture
def cold_start() -> Any:
    """`cold_start("hubspot")` → a new cold start of that handler: its stage configured now from
    this test's environment (a changed variable is a new function configuration in Lambda too).
    Returns the stage's `Dependencies`: patch a call on `.aws("sqs")` to make an AWS API fail for
    that function alone."""
    from timeline_bridge.wiring import Dependencies

    def start(name: str) -> Any:
        dependencies = Dependencies.from_environ()
        _load_function(name).stage.configure(dependencies)
        return dependencies

    return start


@pytest.fixture
def load_event() -> Any:
    """`load_event("hubspot/deal-stage-change.json")` → a fresh copy of that file under `events/`."""
    return _load_event


# --- provider sandboxes --------------------------------------------------------------------------


@pytest.fixture
def sandboxes(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The four provider sandboxes (`timeline_bridge_tools.sandboxes`) on ephemeral loopback ports.

    Yields {"stora": StoraSandbox, "hubspot": ..., "matter": ..., "applied": ...}, each with its
    documented rate limits (`sandbox.set_rate_limits(())` lifts them). Sets STORA_BASE_URL,
    HUBSPOT_BASE_URL, MATTER_BASE_URL, APPLIED_BASE_URL, the credentials they accept
    (STORA_TOKEN, HUBSPOT_ACCESS_TOKEN, MATTER_API_KEY, APPLIED_API_KEY), APPLIED_SHOP_ID and
    MATTER_VERSION.
    """
    from timeline_bridge_tools.sandboxes import env_for, start_all, stop_all

    running = start_all()
    for name, value in env_for(running).items():
        monkeypatch.setenv(name, value)
        monkeypatch.delenv(f"{name}_SECRET_ID", raising=False)
    try:
        yield running
    finally:
        stop_all(running)


# --- mapping folders ----------------------------------------------------------------------------


@pytest.fixture
def shipped_mappings(tmp_path: Path) -> Any:
    """`shipped_mappings(name, ...)`: a folder of the test's own holding copies of the named
    mappings under mappings/. A test that counts jobs or timeline events runs on one, so a mapping
    a user adds beside the shipped ones changes nothing it counts."""
    import shutil

    def copy(*names: str) -> Path:
        folder = tmp_path / "mappings"
        folder.mkdir(exist_ok=True)
        for name in names:
            shutil.copy(ROOT / "mappings" / f"{name}.yaml", folder)
        return folder

    return copy


# --- the local runtime (bridge dev) --------------------------------------------------------------


@pytest.fixture
def local_runtime(tmp_path: Path) -> Iterator[Any]:
    """The whole pipeline in this process, as `bridge dev` runs it, on free loopback ports.

    Yields a started `timeline_bridge_tools.local.runtime.LocalRuntime`: moto, the template's queues,
    table and secrets, the real handlers behind the Function URL emulator and the pollers, the four
    sandboxes (`runtime.sandboxes`), the console at `runtime.url`. Its `.bridge/` folder (secrets,
    dev.json) is `tmp_path`, and it ignores the shell's settings (no real provider, no .env).
    """
    from timeline_bridge_tools.local.runtime import LocalRuntime

    with LocalRuntime(ROOT, port=0, state_dir=tmp_path, environ={}, log_level="WARNING") as runtime:
        yield runtime


# --- log hygiene ---------------------------------------------------------------------------------
# Every log line of the run is checked for secrets, signatures, credentials and e-mail addresses;
@pytest.fixture(autouse=True)
def _restore_environment() -> Iterator[None]:
    """Each test starts from the same environment: the CLI and the local runtime point the process
    at the sandboxes they start (a base URL left set would aim a later test at a stopped port)."""

    before = dict(os.environ)
    _LOADED_FUNCTIONS.clear()
    yield
    _LOADED_FUNCTIONS.clear()
    os.environ.clear()
    os.environ.update(before)


# any finding fails the session (tests/log_hygiene.py). pytester runs the check's own proof.
pytest_plugins = ["pytester"]


def pytest_configure(config: pytest.Config) -> None:
    import log_hygiene

    log_hygiene.configure(config)


@pytest.fixture
def log_hygiene(pytestconfig: pytest.Config) -> Any:
    """The session's log-hygiene plugin: `log_hygiene.register(value)` marks a value as secret."""
    plugin = pytestconfig.pluginmanager.get_plugin("log-hygiene")
    if plugin is None:
        pytest.skip("log hygiene is off (BRIDGE_LOG_HYGIENE=off)")
    return plugin
