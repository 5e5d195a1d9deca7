"""Powertools Logger and Metrics singletons, and the X-Ray tracer of every handler (`traced`).

Tracing is opt-in (`BRIDGE_TRACING=true`, template parameter `EnableTracing`): the X-Ray SDK costs
about 0.4 s of cold start, more than a Slack ack can spare. With tracing off it is never imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics

from timeline_bridge.config import metrics_namespace, service_name, tracing_enabled

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

NAMESPACE = metrics_namespace()

logger = Logger(service=service_name(), log_uncaught_exceptions=True)
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


@functools.cache
def tracer() -> Tracer:
    """The process's Tracer, built on the first traced invocation. Powertools patches boto3 and
    requests then (each AWS and provider call becomes a subsegment) and still disables itself
    outside Lambda, where no X-Ray daemon listens (`bridge dev`, tests)."""
    from aws_lambda_powertools import Tracer

    return Tracer(service=logger.service)


def traced(handler: Handler) -> Handler:
    """`handler` inside a `## <name>` X-Ray subsegment (annotated ColdStart and Service, errors as
    metadata) when `BRIDGE_TRACING=true`, else `handler` as it is. Decides at the first call, not
    at import, so a handler file reads no environment. The answer stays out of the trace: it can
    hold what a sender or a provider sent."""
    capture: Handler | None = None

    @functools.wraps(handler)
    def run(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal capture
        if not tracing_enabled():
            return handler(event, context)
        if capture is None:
            capture = tracer().capture_lambda_handler(handler, capture_response=False)
        return capture(event, context)

    return run
