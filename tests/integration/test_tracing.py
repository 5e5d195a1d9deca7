"""X-Ray tracing (`BRIDGE_TRACING`, template parameter `EnableTracing`).

Each handler runs in a fresh process dressed as a Lambda worker (`LAMBDA_TASK_ROOT`, the trace
header Lambda sets, `AWS_XRAY_DAEMON_ADDRESS`), and a UDP socket of this test is the X-Ray daemon:
what it receives is what the SDK would send to X-Ray. Nothing in the tracer is patched or faked.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge_tools.local.template import functions, load_template, resolve

ROOT = Path(__file__).resolve().parents[2]

TRACE_ID = "1-5759e988-bd862e3fe1be46a994272793"
LAMBDA_SEGMENT_ID = "53995c3f42cd8ad8"  # the segment Lambda opened for the invocation

# Each handler with an event it answers without AWS (whose endpoint is a closed port): the webhooks
# have no secret configured (503, fail closed), the batches are empty.
HANDLERS = {
    "hubspot": "hubspot/deal-stage-change.json",
    "slack": "slack/approve-button.json",
    "pipedrive": "pipedrive/deal-stage-change-v2.json",
    "generic": "generic/standard-webhook.json",
    "route": None,
    "deliver": None,
}

PROBE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)

class Context:
    function_name = "timeline-bridge-probe"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:timeline-bridge-probe"
    aws_request_id = "probe-request"

    def get_remaining_time_in_millis(self):
        return 10000

answers = []
for _ in range(2):
    try:
        answers.append(module.lambda_handler(json.loads(sys.argv[2]), Context()))
    except Exception as err:
        answers.append({"raised": type(err).__name__, "message": str(err)})
print("--probe " + json.dumps({"answers": answers, "xray_loaded": "aws_xray_sdk" in sys.modules}))
"""


@pytest.fixture
def daemon() -> Iterator[socket.socket]:
    """A UDP socket on loopback standing in for the X-Ray daemon."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock
    finally:
        sock.close()


def _invoke_twice(
    name: str, daemon: socket.socket, tmp_path: Path, *, tracing: str, **env: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run handler `name` twice (a cold, then a warm invocation) in a Lambda-like process;
    returns the probe's report and every entity the daemon received."""
    relative = HANDLERS[name]
    event = (ROOT / "events" / relative).read_text() if relative else '{"Records": []}'
    host, port = daemon.getsockname()
    with socket.socket() as closed:  # a port nobody listens on: an AWS call fails at once
        closed.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{closed.getsockname()[1]}"
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "HOME": str(tmp_path),
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL": nowhere,
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_LAMBDA_FUNCTION_NAME": "timeline-bridge-probe",
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "_X_AMZN_TRACE_ID": f"Root={TRACE_ID};Parent={LAMBDA_SEGMENT_ID};Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": f"{host}:{port}",
        # What the template sets for each value of EnableTracing.
        "BRIDGE_TRACING": tracing,
        "POWERTOOLS_TRACE_DISABLED": "false" if tracing == "true" else "true",
        "POWERTOOLS_SERVICE_NAME": "timeline-bridge",
        "BRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"),
        "TARGET": "stora",
        "IDEMPOTENCY_TABLE": "timeline-bridge-idempotency",
        "STORA_QUEUE_URL": f"{nowhere}/123456789012/stora",
        "STORA_DLQ_URL": f"{nowhere}/123456789012/stora-dlq",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(ROOT / "functions" / name / "app.py"), event],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=tmp_path,
        env=environment,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("--probe "))
    report = json.loads(line.removeprefix("--probe "))
    # The process has ended: whatever it sent waits in the socket's buffer.
    entities = []
    daemon.settimeout(0.5)
    while True:
        try:
            datagram = daemon.recv(65536).decode()
        except TimeoutError:
            break
        header, _, body = datagram.partition("\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        entities.append(json.loads(body))
    return report, entities


def _handler_subsegments(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entities if e["name"] == "## lambda_handler"]


@pytest.mark.parametrize("name", sorted(HANDLERS))
def test_each_invocation_is_a_subsegment_of_the_lambda_trace_when_tracing_is_on(name, daemon, tmp_path):
    report, entities = _invoke_twice(name, daemon, tmp_path, tracing="true")

    assert not any("raised" in answer for answer in report["answers"]), report
    cold, warm = _handler_subsegments(entities)
    for subsegment in (cold, warm):
        assert subsegment["type"] == "subsegment" and subsegment["in_progress"] is False
        assert subsegment["trace_id"] == TRACE_ID
        assert subsegment["parent_id"] == LAMBDA_SEGMENT_ID
        assert subsegment["annotations"]["Service"] == "timeline-bridge"
        assert subsegment["end_time"] >= subsegment["start_time"]
        # The answer may hold what a sender or a provider sent: it stays out of X-Ray.
        assert "lambda_handler response" not in json.dumps(subsegment.get("metadata", {}))
    assert (cold["annotations"]["ColdStart"], warm["annotations"]["ColdStart"]) == (True, False)


def test_aws_calls_and_errors_are_traced_inside_the_invocation_when_tracing_is_on(daemon, tmp_path):
    # The secret is read from Secrets Manager, which is nowhere: the call fails, the handler raises.
    report, entities = _invoke_twice(
        "hubspot",
        daemon,
        tmp_path,
        tracing="true",
        HUBSPOT_CLIENT_SECRET_SECRET_ID="arn:aws:secretsmanager:eu-west-1:123456789012:secret:hubspot",
    )

    assert all("raised" in answer for answer in report["answers"]), report
    handler = _handler_subsegments(entities)[0]
    calls = [e for e in entities if e.get("namespace") == "aws" and e["parent_id"] == handler["id"]]
    assert calls and calls[0]["name"] == "secretsmanager"
    assert calls[0]["aws"]["operation"] == "GetSecretValue"
    assert handler["cause"]["exceptions"][0]["type"] == report["answers"][0]["raised"]


@pytest.mark.parametrize("name", ["hubspot", "route"])
def test_nothing_is_traced_nor_the_xray_sdk_loaded_when_tracing_is_off(name, daemon, tmp_path):
    report, entities = _invoke_twice(name, daemon, tmp_path, tracing="false")

    assert not any("raised" in answer for answer in report["answers"]), report
    assert entities == []
    assert report["xray_loaded"] is False


@pytest.mark.parametrize(("enabled", "mode"), [("true", "Active"), ("false", "PassThrough")])
def test_every_function_follows_the_tracing_switch_when_deployed(enabled, mode):
    template = load_template(ROOT / "template.yaml")
    parameters = {"EnableTracing": enabled}
    default_mode = template["Globals"]["Function"]["Tracing"]
    for logical_id, fn in functions(template, parameters=parameters).items():
        own = template["Resources"][logical_id]["Properties"].get("Tracing", default_mode)
        assert resolve(own, template, parameters=parameters) == mode, logical_id
        env = {
            k: resolve(fn.environment[k], template, parameters=parameters)
            for k in ("BRIDGE_TRACING", "POWERTOOLS_TRACE_DISABLED")
        }
        assert env == {
            "BRIDGE_TRACING": enabled,
            "POWERTOOLS_TRACE_DISABLED": "false" if enabled == "true" else "true",
        }, logical_id
