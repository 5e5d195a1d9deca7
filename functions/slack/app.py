"""Slack interactivity and Events API → the events queue.

Thin handler: verification, dedupe and enqueue live in `timeline_bridge.ingest`; the stage builds
its dependencies from the function's environment at the first request.
"""

from typing import Any

from timeline_bridge import ingest
from timeline_bridge.observability import logger, metrics, traced

stage = ingest.stage("slack")


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return stage(event, context)
