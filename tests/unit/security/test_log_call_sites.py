"""Every log call of the bridge logs ids and names only (FM-24).

Statically: each `logger.<level>(...)` in the core package and the handlers passes its fields as
a literal `extra={...}`, headers only through `safe_headers()`, and nothing that holds a body, a
raw event, a payload or a credential. Dynamically: a mapping failure whose reason quotes an event
value (an e-mail address) is logged by location, the value staying in the dead letter.
"""

from __future__ import annotations

import ast
import io
import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from log_hygiene import scan
from timeline_bridge.mapping.engine import MappingSet
from timeline_bridge.mapping.loader import check_text
from timeline_bridge.models import Envelope
from timeline_bridge.observability import logger
from timeline_bridge.route import Router

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "layers" / "bridge" / "timeline_bridge"
# Test doubles of the providers and the local runtime log about themselves, not about customer data.
SKIPPED = ("sandboxes", "local")
LEVELS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})
LOGGER_NAMES = frozenset({"logger", "log"})
# Names whose values are bodies, raw events or credentials.
FORBIDDEN = frozenset(
    {
        "body",
        "raw",
        "event",
        "payload",
        "parsed",
        "envelope",
        "token",
        "secret",
        "secrets",
        "api_key",
        "password",
        "credentials",
        "authorization",
        "signature",
        "request",
        "response",
        "enrichment",
        "context",
    }
)


def _sources() -> list[Path]:
    files = [p for p in PACKAGE.rglob("*.py") if not any(part in SKIPPED for part in p.parts)]
    return sorted(files + list((ROOT / "functions").glob("*/app.py")))


def _log_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LEVELS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in LOGGER_NAMES
        ):
            yield node


def _leaf_names(node: ast.AST) -> Iterator[str]:
    """The names whose values `node` shows: `job.body` shows `body`, `envelope.event_id` only
    `event_id` (an id read off an object is fine), `str(exc)` what `exc` shows."""
    if isinstance(node, ast.Attribute):
        yield node.attr
    elif isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Call):
        for arg in (*node.args, *(k.value for k in node.keywords)):
            yield from _leaf_names(arg)
    else:
        for child in ast.iter_child_nodes(node):
            yield from _leaf_names(child)


def _forbidden_names(node: ast.AST) -> set[str]:
    """Names in `node` that hold data we never log."""
    return {name for name in _leaf_names(node) if name in FORBIDDEN}


def _problems(call: ast.Call) -> list[str]:
    problems = []
    for arg in call.args:
        names = _forbidden_names(arg)
        if names:
            problems.append(f"message built from {sorted(names)}")
    for keyword in call.keywords:
        if keyword.arg != "extra":
            continue
        if not isinstance(keyword.value, ast.Dict):
            problems.append("extra is not a literal dict (its fields cannot be reviewed here)")
            continue
        for key, value in zip(keyword.value.keys, keyword.value.values, strict=True):
            name = key.value if isinstance(key, ast.Constant) else None
            if key is None:
                # `**{...}`: review what is spread
                names = _forbidden_names(value)
                if names:
                    problems.append(f"extra spreads {sorted(names)}")
                continue
            if name == "headers":
                if not (
                    isinstance(value, ast.Call)
                    and isinstance(value.func, ast.Name)
                    and value.func.id == "safe_headers"
                ):
                    problems.append("headers logged without safe_headers()")
                continue
            if isinstance(name, str) and name in FORBIDDEN:
                problems.append(f"extra field {name!r}")
            names = _forbidden_names(value)
            if names:
                problems.append(f"extra field {name!r} built from {sorted(names)}")
    return problems


def test_log_calls_pass_ids_only_when_the_code_is_read():
    offences = []
    calls = 0
    for path in _sources():
        for call in _log_calls(ast.parse(path.read_text(), str(path))):
            calls += 1
            for problem in _problems(call):
                offences.append(f"{path.relative_to(ROOT)}:{call.lineno}: {problem}")
    assert calls > 30  # the walk found the bridge's log calls
    assert offences == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('logger.info("x", extra={"headers": headers})', ["headers logged without safe_headers()"]),
        ('logger.info("x", extra={"headers": safe_headers(headers)})', []),
        (
            'logger.warning("x", extra={"body": job.body})',
            ["extra field 'body'", "extra field 'body' built from ['body']"],
        ),
        ('logger.info("x", extra={"event_id": envelope.event_id})', []),
        ('logger.info("x", extra={"who": envelope.event})', ["extra field 'who' built from ['event']"]),
        ('logger.info("x", extra={"event_id": event_id, "key": job.key})', []),
        ('logger.error(f"bad {request.body!r}")', ["message built from ['body']"]),
        (
            'logger.info("x", extra=fields)',
            ["extra is not a literal dict (its fields cannot be reviewed here)"],
        ),
        ('logger.info("x", extra={**{"t": token}})', ["extra spreads ['token']"]),
    ],
)
def test_checker_flags_a_log_call_when_it_would_leak(source, expected):
    (call,) = _log_calls(ast.parse(source))
    assert _problems(call) == expected


# --- a mapping failure is logged by location, its words stay in the dead letter ------------------


class _Queue:
    def __init__(self) -> None:
        self.sent: dict[str, list] = {}

    def send(self, queue_url, messages):
        self.sent.setdefault(queue_url, []).extend(messages)
        return []


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)


def test_mapping_failure_logged_without_the_event_value_when_the_reason_quotes_it(log_lines):
    mapping, errors = check_text(
        textwrap.dedent(
            """\
            name: contact-time
            source: hubspot
            target: matter
            body:
              kind: audit
              title: Contact changed
              occurred_at: "${{ to_iso8601(event.when) }}"
            """
        ),
        "mappings/contact-time.yaml",
    )
    assert mapping is not None, errors
    queue = _Queue()
    router = Router(
        MappingSet([mapping]),
        queue,
        queue_url=lambda target, dead_letter=False: f"{target}-{'dlq' if dead_letter else 'queue'}",
    )
    email = "jane.doe@example.com"
    envelope = Envelope(
        "hubspot", "contact.propertyChange", "evt-9", None, "2026-01-01T00:00:00Z", {"when": email}
    )

    result = router.route(envelope)

    (letter,) = result.dead_letters
    assert email in letter.dead_letter["detail"]  # the operator reads it in the dead letter
    out = log_lines.getvalue()
    assert "mapping error: job dead-lettered" in out
    assert '"mapping_file":"mappings/contact-time.yaml"' in out and '"field":"body.occurred_at"' in out
    assert email not in out
    assert scan(out, set()) == ((), out)
