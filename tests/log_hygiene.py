"""Log hygiene for the whole test run: no secret, signature, credential or e-mail address in any log.

A pytest plugin (registered by tests/conftest.py). It sees every log record of the run and every
line the tests print that looks like a log record, and fails the session when one of them carries:

- a known secret: every value the bridge read as a secret (`config.parse_secret_value` is wrapped),
  the values of the secret variables in the environment at the time of the record, the sandbox
  credentials, and anything registered with `LogHygiene.register`;
- a signature or credential the run produced: the outputs of the senders' signing functions
  (HubSpot v1/v2/v3, Slack v0, Standard Webhooks, plain HMAC, Pipedrive Basic) are recorded;
- something shaped like one: `Bearer <token>`, `Basic <user:password in base64>`, `whsec_...`,
  `sk_test_...`/`sk_live_...`, Slack `xox?-` tokens, `v0=<64 hex>`, `v1,<base64>`, a header
  dict entry for Authorization or a signature header with a value, an e-mail address.

How records are seen: `logging.Logger.handle` is wrapped for the session, so every record of every
logger (Powertools' loggers do not propagate to the root, so a root handler would miss them) is
checked before its handlers run, formatted as its own handlers would write it. Captured stdout and
stderr of each test are also read, for log lines written around the logging module (subprocesses).

The session fails (exit status 1) with a report naming the test, the logger, the rule and the
offending line, the matched text masked. Set `BRIDGE_LOG_HYGIENE=off` to turn the check off.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

# Environment variables whose values are credentials (and the generic per-endpoint secrets).
SECRET_VARIABLES = (
    "HUBSPOT_CLIENT_SECRET",
    "SLACK_SIGNING_SECRET",
    "PIPEDRIVE_BASIC_AUTH",
    "SALESFORCE_WEBHOOK_TOKEN",
    "GENERIC_WEBHOOK_SECRET",
    "STORA_TOKEN",
    "HUBSPOT_ACCESS_TOKEN",
    "MATTER_API_KEY",
    "APPLIED_API_KEY",
    "SLACK_BOT_TOKEN",
)
_GENERIC_SECRET = re.compile(r"^GENERIC_[A-Z0-9_]+_SECRET$")
# Shorter values are too common to mean anything ("test", "x").
MIN_SECRET_LENGTH = 6

# Attributes every LogRecord has; anything else on a record is an `extra` field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


def _basic_credentials(match: re.Match[str]) -> bool:
    """`Basic <token>` is a leak when the token decodes to "user:password"."""
    token = match.group(1)
    try:
        decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    confirm: Callable[[re.Match[str]], bool] | None = None

    def matches(self, text: str) -> list[re.Match[str]]:
        return [m for m in self.pattern.finditer(text) if self.confirm is None or self.confirm(m)]


RULES = (
    # A token after "Bearer" with a digit, "-" or "_" in it ("Bearer token" in prose is not one).
    Rule(
        "bearer-token",
        re.compile(r"(?i)\bbearer\s+(?=[A-Za-z0-9._~+/-]*[0-9_-])[A-Za-z0-9._~+/-]{8,}=*"),
    ),
    Rule("basic-credentials", re.compile(r"(?i)\bbasic\s+([A-Za-z0-9+/]{4,}={0,2})"), _basic_credentials),
    Rule("standard-webhooks-secret", re.compile(r"\bwhsec_[A-Za-z0-9+/=]{8,}")),
    Rule("api-key", re.compile(r"\b(?:sk|rk)_(?:test|live)_[A-Za-z0-9_]{4,}")),
    Rule("slack-token", re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{4,}")),
    Rule("hubspot-private-app-token", re.compile(r"\bpat-[a-z]{2}\d-[0-9a-f-]{20,}")),
    Rule("slack-signature", re.compile(r"\bv0=[0-9a-fA-F]{64}\b")),
    Rule("standard-webhooks-signature", re.compile(r"\bv1,[A-Za-z0-9+/]{43}=")),
    Rule(
        "credential-header-value",
        re.compile(
            r"(?i)[\"']?(?:authorization|proxy-authorization|cookie|x-api-key|x-hubspot-signature(?:-v3)?"
            r"|x-slack-signature|webhook-signature|x-hub-signature(?:-256)?)[\"']?\s*[:=]\s*[\"']?"
            r"(?![\"',}\s])[^\s\"',}]+"
        ),
    ),
    Rule("email-address", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
)

# A printed line that is a log record: Powertools JSON, or a level name up front.
_LEVEL_PREFIX = re.compile(
    r"^\s*(?:\[?(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL)\]?[\s:]|\d{4}-\d\d-\d\d[ T][\d:,.]+\s+\S*\s*"
    r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\b)"
)


def looks_like_log_record(line: str) -> bool:
    """True for a Powertools JSON line (an object with `level` and `message`) or a `LEVEL ...` line."""
    text = line.strip()
    if text.startswith("{") and text.endswith("}"):
        try:
            data = json.loads(text)
        except ValueError:
            return False
        return isinstance(data, dict) and "level" in data and ("message" in data or "msg" in data)
    return bool(_LEVEL_PREFIX.match(text))


@dataclass(frozen=True)
class Finding:
    test: str
    origin: str  # logger name, or "stdout"/"stderr"
    rules: tuple[str, ...]
    line: str  # with every match masked

    def describe(self) -> str:
        return f"{self.test or '(outside a test)'} [{self.origin}] {', '.join(self.rules)}: {self.line}"


class Secrets:
    """The values that must never appear in a log line, gathered as the run goes."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: Any) -> None:
        fresh = {v.strip() for v in values if isinstance(v, str) and len(v.strip()) >= MIN_SECRET_LENGTH}
        if fresh:
            with self._lock:
                self._values |= fresh

    def current(self) -> set[str]:
        """Registered values plus the secret variables of the environment right now (which stay
        registered: a value a test set once is still a secret after the test restored the env)."""
        for name, raw in list(os.environ.items()):
            if name in SECRET_VARIABLES or _GENERIC_SECRET.match(name):
                self.add(*_secret_list(raw))
        with self._lock:
            return set(self._values)


def _secret_list(raw: str) -> list[str]:
    text = raw.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [str(v).strip() for v in items if isinstance(v, str)]
    return [text]


def scan(text: str, secrets: Iterable[str]) -> tuple[tuple[str, ...], str]:
    """The rules a piece of log output breaks and the text with every match masked; ((), text)
    when it is clean."""
    hits: list[str] = []
    spans: list[tuple[int, int]] = []
    for value in secrets:
        if value in text:
            if "known-secret" not in hits:
                hits.append("known-secret")
            spans.extend((m.start(), m.end()) for m in re.finditer(re.escape(value), text))
    for rule in RULES:
        found = rule.matches(text)
        if found:
            hits.append(rule.name)
            spans.extend((m.start(), m.end()) for m in found)
    return (tuple(hits), _mask(text, spans)) if hits else ((), text)


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    out, position = [], 0
    for start, end in sorted(spans):
        if end <= position:
            continue
        out.append(text[position : max(start, position)])
        out.append("[MASKED]")
        position = end
    out.append(text[position:])
    masked = "".join(out)
    return masked if len(masked) <= 400 else masked[:397] + "..."


def _powertools_formatter(handler: logging.Handler) -> logging.Formatter | None:
    from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter

    formatter = handler.formatter
    return formatter if isinstance(formatter, BasePowertoolsFormatter) else None


def render(logger: logging.Logger, record: logging.LogRecord) -> str:
    """The record as its handlers would write it: the Powertools JSON line when the logger has a
    Powertools handler, else message, extra fields and traceback."""
    for handler in logger.handlers:
        formatter = _powertools_formatter(handler)
        if formatter is not None:
            return formatter.format(record)
    extras = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
    parts = [record.getMessage()]
    if extras:
        parts.append(json.dumps(extras, default=str, ensure_ascii=False))
    if record.exc_info:
        parts.append(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        parts.append(record.stack_info)
    return " ".join(parts)


# Functions whose results are credentials or signatures: module path, attribute.
SIGNERS = (
    ("timeline_bridge.sources.hubspot", "v3_signature"),
    ("timeline_bridge.sources.hubspot", "v2_signature"),
    ("timeline_bridge.sources.hubspot", "v1_signature"),
    ("timeline_bridge.sources.slack", "signature"),
    ("timeline_bridge.sources.generic", "standard_signature"),
    ("timeline_bridge.sources.generic", "hmac_signature"),
    ("timeline_bridge.sources.pipedrive", "authorization"),
)


class LogHygiene:
    """The plugin: wraps logging and the signers for the session, reports at the end."""

    def __init__(self) -> None:
        self.secrets = Secrets()
        self.findings: dict[tuple[str, str, str], Finding] = {}  # (test, origin, line)
        self.current_test = ""
        self._restore: list[Callable[[], None]] = []
        self._seen_lock = threading.Lock()

    # -- registering what must not leak ---------------------------------------------------------

    def register(self, *values: str) -> None:
        """Values a test wants treated as secrets."""
        self.secrets.add(*values)

    def _record_result(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            if isinstance(result, str):
                parts = [result]
                # "Basic <token>", "sha256=<hex>", "v1,<b64>", "v0=<hex>": the bare value as well.
                for separator in (" ", "=", ","):
                    head, sep, tail = result.partition(separator)
                    if sep and head and len(tail) >= MIN_SECRET_LENGTH:
                        parts.append(tail)
                self.secrets.add(*parts)
            elif isinstance(result, list):
                self.secrets.add(*(v for v in result if isinstance(v, str)))
            return result

        recorded.__wrapped_for_log_hygiene__ = True  # type: ignore[attr-defined]
        return recorded

    def _wrap(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)
        if getattr(original, "__wrapped_for_log_hygiene__", False):
            return
        setattr(owner, name, self._record_result(original))
        self._restore.append(lambda: setattr(owner, name, original))

    def install(self) -> None:
        import importlib

        from timeline_bridge import config
        from timeline_bridge_tools.sandboxes import DEFAULT_TOKENS

        self.secrets.add(*DEFAULT_TOKENS.values())
        self._wrap(config, "parse_secret_value")
        for module, name in SIGNERS:
            self._wrap(importlib.import_module(module), name)

        original_handle = logging.Logger.handle
        plugin = self

        def handle(logger: logging.Logger, record: logging.LogRecord) -> Any:
            plugin.check_record(logger, record)
            return original_handle(logger, record)

        logging.Logger.handle = handle  # type: ignore[method-assign]
        self._restore.append(lambda: setattr(logging.Logger, "handle", original_handle))

    def uninstall(self) -> None:
        while self._restore:
            self._restore.pop()()

    # -- checking -------------------------------------------------------------------------------

    def _add(self, origin: str, text: str) -> None:
        rules, masked = scan(text, self.secrets.current())
        if rules:
            finding = Finding(self.current_test, origin, rules, masked)
            with self._seen_lock:
                self.findings.setdefault((finding.test, origin, masked), finding)

    def check_record(self, logger: logging.Logger, record: logging.LogRecord) -> None:
        try:
            text = render(logger, record)
        except Exception as exc:  # a record our renderer cannot format must not pass unseen
            text = f"{record.msg!r} {record.args!r} (not renderable: {type(exc).__name__})"
        self._add(record.name, text)

    def check_output(self, origin: str, output: str) -> None:
        for line in output.splitlines():
            if looks_like_log_record(line):
                self._add(origin, line)

    # -- pytest hooks ---------------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.current_test = nodeid

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Each phase's own sections (report.capstdout would repeat the earlier phases' output).
        for name, content in report.sections:
            for stream in ("stdout", "stderr"):
                if name == f"Captured {stream} {report.when}":
                    self.check_output(stream, content)

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.current_test = ""

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.uninstall()
        if self.findings and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.findings:
            return
        terminalreporter.section("log hygiene", sep="=", red=True, bold=True)
        terminalreporter.line(
            f"{len(self.findings)} log line(s) carry a secret, signature, credential or e-mail "
            "address (matches masked):",
            red=True,
        )
        for finding in self.findings.values():
            terminalreporter.line(f"  - {finding.describe()}")
        terminalreporter.line("Log ids and names only; headers through observability.safe_headers().")


PLUGIN_NAME = "log-hygiene"


def enabled() -> bool:
    return os.environ.get("BRIDGE_LOG_HYGIENE", "on").strip().lower() not in ("off", "0", "false")


def configure(config: pytest.Config) -> None:
    """Install and register the plugin for this session (from a conftest's `pytest_configure`)."""
    if enabled() and not config.pluginmanager.has_plugin(PLUGIN_NAME):
        plugin = LogHygiene()
        plugin.install()
        config.pluginmanager.register(plugin, PLUGIN_NAME)
