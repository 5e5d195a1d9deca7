"""AWS adapters: the boto3 clients of one function, and SQS batching.

boto3 reads its endpoint (`AWS_ENDPOINT_URL`: the local moto server under `bridge dev`), region
and credentials itself.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any


def new_client(service: str) -> Any:
    """A boto3 client for `service`, with standard retries (3 attempts)."""
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(retries={"mode": "standard", "max_attempts": 3}))


class AwsClients:
    """The boto3 clients of one function: each built at its first use (a cold start builds only
    what it calls) and shared by the function's threads (boto3 clients are thread-safe)."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, service: str) -> Any:
        with self._lock:
            built = self._clients.get(service)
            if built is None:
                built = self._clients[service] = new_client(service)
            return built


SQS_BATCH_ENTRIES = 10  # SendMessageBatch: at most ten messages per call
SQS_BATCH_BYTES = 262_144  # and 256 KiB of bodies and attributes together


def _entry_size(entry: dict[str, Any]) -> int:
    """What an entry counts towards SQS's batch payload limit: body plus message attributes."""
    size = len(str(entry.get("MessageBody", "")).encode())
    for name, value in (entry.get("MessageAttributes") or {}).items():
        size += len(name.encode()) + len(str(value.get("DataType", "")).encode())
        size += len(str(value.get("StringValue", "")).encode()) + len(value.get("BinaryValue", b""))
    return size


def send_message_batches(sqs: Any, queue_url: str, entries: Sequence[dict[str, Any]]) -> list[int]:
    """SendMessageBatch `entries` (SendMessageBatch entries without `Id`) in as few calls as SQS
    allows: ten per call, and no more than 256 KiB of payload per call. Returns the positions that
    did not get on the queue (a call that fails fails its whole chunk), each logged."""
    from timeline_bridge.observability import logger

    chunks: list[list[int]] = []
    size = 0
    for position, entry in enumerate(entries):
        entry_size = _entry_size(entry)
        if not chunks or len(chunks[-1]) == SQS_BATCH_ENTRIES or size + entry_size > SQS_BATCH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(position)
        size += entry_size
    failed: list[int] = []
    for chunk in chunks:
        try:
            answer = sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": str(i), **entries[p]} for i, p in enumerate(chunk)]
            )
        except Exception as exc:  # botocore ClientError, endpoint errors: the whole chunk failed
            logger.warning("send_message_batch failed", extra={"queue": queue_url, "error": str(exc)[:300]})
            failed.extend(chunk)
            continue
        for item in answer.get("Failed") or ():
            logger.warning(
                "message not enqueued",
                extra={"queue": queue_url, "code": item.get("Code"), "error": item.get("Message")},
            )
            failed.append(chunk[int(item["Id"])])
    return sorted(failed)
