"""The log-hygiene check itself (tests/log_hygiene.py): what it flags, what it lets through, and
proof that a pytest session in which something logs a secret really fails."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from log_hygiene import looks_like_log_record, scan

TESTS_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ('{"headers": {"authorization": "Bearer stora-token-1"}}', "bearer-token"),
        ("Authorization: Basic aG9vazpaazNwTDlxVzJ4VjduQjRt", "basic-credentials"),
        ('{"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}', "standard-webhooks-secret"),
        ("key sk_test_sandbox in use", "api-key"),
        ("token=xoxb-1234-abcd", "slack-token"),
        ("pat-na1-11111111-2222-3333-4444-555555555555", "hubspot-private-app-token"),
        ("sig v0=" + "a" * 64, "slack-signature"),
        ("webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=", "standard-webhooks-signature"),
        ('{"x-hubspot-signature-v3": "abc"}', "credential-header-value"),
        ("'Cookie': 'session=1'", "credential-header-value"),
        ("contact jane.doe+crm@example.co.uk changed", "email-address"),
    ],
)
def test_rule_flags_the_value_when_a_line_carries_it(text, rule):
    rules, masked = scan(text, set())
    assert rule in rules
    assert "[MASKED]" in masked


@pytest.mark.parametrize(
    "text",
    [
        '{"message": "webhook refused", "error": "missing Basic credentials", "reason": "signature_missing"}',
        "Bearer token missing",
        "X-HubSpot-Signature-v3 does not match",
        '{"headers": {"content-type": "application/json", "x-slack-request-timestamp": "1763900000"}}',
        '{"key": "tb-0123456789abcdef0123456789abcdef01234567", "event_id": "1:2:3:4:1763899315724"}',
        "missing authorization header",
        '{"authorization": ""}',
    ],
)
def test_line_passes_when_it_names_credentials_without_values(text):
    assert scan(text, {"hs-client-secret-1"}) == ((), text)


def test_known_secret_is_masked_wherever_it_appears():
    rules, masked = scan("a hs-client-secret-1 b hs-client-secret-1", {"hs-client-secret-1"})
    assert rules == ("known-secret",)
    assert masked == "a [MASKED] b [MASKED]"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"level":"INFO","location":"x:1","message":"ok","service":"timeline-bridge"}', True),
        ("WARNING  botocore:client.py:1 something", True),
        ("2026-01-01 00:00:00,000 ERROR timeline_bridge_tools.local.runtime failed", True),
        ('{"_aws": {"CloudWatchMetrics": []}, "WebhookAccepted": [1]}', False),
        ('{"to": "jane@example.com"}', False),  # printed data (a CLI's output), not a log record
        ("POST https://hooks.example.com 200", False),
    ],
)
def test_printed_line_is_read_as_a_log_record_only_when_it_looks_like_one(line, expected):
    assert looks_like_log_record(line) is expected


# --- the session fails ---------------------------------------------------------------------------

CHILD_CONFTEST = """
    import log_hygiene


    def pytest_configure(config):
        log_hygiene.configure(config)
"""

LEAKY_TESTS = """
    import json
    import logging
    import subprocess
    import sys

    from timeline_bridge.observability import logger
    from timeline_bridge_tools.signing import sign_request


    def test_env_token(monkeypatch):
        monkeypatch.setenv("STORA_TOKEN", "stora-token-not-for-logs")
        logger.info("calling stora", extra={"auth": "stora-token-not-for-logs"})


    def test_signature():
        headers = sign_request("slack", b"{}", "slack-signing-secret-1", now=1763900000)
        logger.warning("bad request", extra={"sig": headers["X-Slack-Signature"].removeprefix("v0=")})


    def test_authorization_header():
        logger.info("request in", extra={"headers": {"authorization": "Token abc"}})


    def test_email():
        logger.info("contact updated", extra={"contact": "jane.doe@example.com"})


    def test_other_library():
        logging.getLogger("some.library").warning("using %s", "xoxb-1234-abcd")


    def test_subprocess_output():
        line = json.dumps({"level": "INFO", "message": "x", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZI"})
        subprocess.run([sys.executable, "-c", f"print({line!r})"], check=True)


    def test_clean():
        logger.warning("webhook refused", extra={"error": "missing Basic credentials", "event_id": "evt-1"})
"""

LEAKY = [
    "test_env_token",
    "test_signature",
    "test_authorization_header",
    "test_email",
    "test_other_library",
    "test_subprocess_output",
]
VALUES = ["stora-token-not-for-logs", "Token abc", "jane.doe@example.com", "xoxb-1234-abcd", "whsec_MfKQ9r8G"]


@pytest.fixture
def child(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A separate pytest run with the log-hygiene plugin, as tests/conftest.py installs it."""
    monkeypatch.setenv("PYTHONPATH", str(TESTS_DIR))
    monkeypatch.delenv("BRIDGE_LOG_HYGIENE", raising=False)
    pytester.makeconftest(textwrap.dedent(CHILD_CONFTEST))
    return pytester


def test_session_fails_naming_each_leaking_test_when_secrets_are_logged(child):
    child.makepyfile(test_leaky=textwrap.dedent(LEAKY_TESTS))

    result = child.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=len(LEAKY) + 1)
    output = result.stdout.str()
    assert "log hygiene" in output
    report = [line for line in result.stdout.lines if line.startswith("  - test_leaky.py::")]
    flagged = {line.split("::")[1].split(" ")[0] for line in report}
    assert flagged == set(LEAKY)
    for value in VALUES:
        assert value not in output  # the report masks what it found
    signature = json.dumps(report)
    assert "known-secret" in signature and "email-address" in signature


def test_session_passes_when_logs_carry_ids_only(child):
    child.makepyfile(
        test_clean=textwrap.dedent(LEAKY_TESTS.split("def test_env_token")[0])
        + textwrap.dedent(
            """
        def test_clean():
            logger.warning("webhook refused", extra={"error": "missing Basic credentials", "event_id": "evt-1"})
            logger.info("event routed", extra={"key": "tb-0123456789abcdef0123456789abcdef01234567"})
        """
        )
    )

    result = child.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.OK
    assert "log hygiene" not in result.stdout.str()
