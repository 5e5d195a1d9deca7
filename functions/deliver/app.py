"""A target's delivery queue → the provider (one function per target, env TARGET).

Thin handler: the delivery policy (dedupe, pacing, retries, dead letters) lives in
`timeline_bridge.delivery`. Answers Lambda's partial batch response (ReportBatchItemFailures).
"""

from typing import Any

from timeline_bridge import delivery
from timeline_bridge.observability import logger, metrics


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return delivery.handle(event, context)
