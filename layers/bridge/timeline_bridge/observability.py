"""Powertools Logger and Metrics singletons. Tracing is opt-in (`BRIDGE_TRACING=true`): the X-Ray
SDK costs about 0.4 s of cold start, more than a Slack ack can spare."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "TimelineBridge")

logger = Logger(
    service=os.environ.get("POWERTOOLS_SERVICE_NAME", "timeline-bridge"), log_uncaught_exceptions=True
)
metrics = Metrics(namespace=NAMESPACE)

# Header names that may appear in logs. Everything else (Authorization, signatures, cookies) is
# dropped: an allow-list, so a new secret-bearing header is never logged by accident.
LOGGABLE_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "user-agent",
        "host",
        "x-forwarded-proto",
        "x-hubspot-request-timestamp",
        "x-hubspot-signature-version",
        "x-slack-request-timestamp",
        "x-slack-retry-num",
        "x-slack-retry-reason",
        "webhook-id",
        "webhook-timestamp",
    }
)


def safe_headers(headers: dict[str, str]) -> dict[str, str]:
    """Headers fit for a log line: only allow-listed names survive."""
    return {k: v for k, v in headers.items() if k.lower() in LOGGABLE_HEADERS}


def tracing_enabled() -> bool:
    return os.environ.get("BRIDGE_TRACING", "false").lower() == "true"
