"""A target's delivery queue → the provider (one function per target, env TARGET).

Thin handler: the delivery policy (dedupe, pacing, retries, dead letters) lives in
`timeline_bridge.delivery`. Answers Lambda's partial batch response (ReportBatchItemFailures).
The core publishes its metrics itself, once per batch, with the `target` dimension
(TimelineEventDelivered, TimelineEventRetried, TimelineEventDeadLettered), so this handler has
no `log_metrics` decorator of its own.
"""

from typing import Any

from timeline_bridge import delivery
from timeline_bridge.observability import logger, traced

stage = delivery.stage()  # the deliverer of the function's TARGET, built at the first batch


@logger.inject_lambda_context(log_event=False)
@traced
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return stage(event, context)
