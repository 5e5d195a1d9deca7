"""The SQS side of one target: its delivery queue (jobs put back, held) and its DLQ."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from timeline_bridge import aws
from timeline_bridge.models import DeliveryJob

SQS_MAX_DELAY = 900  # DelaySeconds upper bound
SQS_MAX_VISIBILITY = 43_200  # ChangeMessageVisibility upper bound (12 h)


class JobQueues:
    """The target's delivery queue and DLQ."""

    def __init__(self, target: str, *, sqs: Any, queue_url: str, dead_letter_url: str) -> None:
        self.target = target
        self.sqs = sqs
        self.queue_url = queue_url
        self.dead_letter_url = dead_letter_url

    def requeue_batch(self, entries: Sequence[tuple[str, float]]) -> list[int]:
        """Send updated jobs (JSON, delay in seconds ≤ 15 min) back to the delivery queue, batched
        by SendMessageBatch. Returns the positions that did not get on the queue."""
        return aws.send_message_batches(
            self.sqs,
            self.queue_url,
            [
                {"MessageBody": body, "DelaySeconds": int(min(max(delay, 0.0), SQS_MAX_DELAY))}
                for body, delay in entries
            ],
        )

    def hold(self, receipt_handle: str, seconds: float) -> None:
        """Keep a received message invisible for `seconds` (≤ 12 h)."""
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=int(min(max(math.ceil(seconds), 0), SQS_MAX_VISIBILITY - 60)),
        )

    def dead_letter_batch(self, jobs: Sequence[DeliveryJob]) -> list[int]:
        """Send jobs (each with its reason record) to the DLQ with the `reason` and `target`
        attributes, batched by SendMessageBatch. Returns the positions that did not get there."""
        return aws.send_message_batches(
            self.sqs,
            self.dead_letter_url,
            [
                {
                    "MessageBody": job.to_json(),
                    "MessageAttributes": {
                        "reason": {
                            "DataType": "String",
                            "StringValue": str((job.dead_letter or {}).get("reason", "unknown")),
                        },
                        "target": {"DataType": "String", "StringValue": self.target},
                    },
                }
                for job in jobs
            ],
        )
