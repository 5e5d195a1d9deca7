"""The events queue → one delivery job per matching mapping, on each target's queue.

Thin handler: matching, rendering and enqueueing live in `timeline_bridge.route`; the stage builds
its dependencies (mappings, enrichment, queues) from the function's environment at the first
batch. Answers Lambda's partial batch response (ReportBatchItemFailures).
"""

from typing import Any

from timeline_bridge import route
from timeline_bridge.observability import logger, metrics, traced

stage = route.stage()


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@traced
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return stage(event, context)
