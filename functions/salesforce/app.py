"""Salesforce Outbound Messages → the events queue, answered with the SOAP acknowledgement.

Thin handler: verification, dedupe and enqueue live in `timeline_bridge.ingest`; the stage builds
its dependencies from the function's environment at the first request.
"""

from typing import Any

from timeline_bridge import ingest
from timeline_bridge.observability import logger, metrics, traced

stage = ingest.stage("salesforce")


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return stage(event, context)
