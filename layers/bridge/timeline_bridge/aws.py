"""AWS adapters: boto3 clients built once and lazily (cold starts stay short, tests need no tricks).

`AWS_ENDPOINT_URL` (honoured by boto3 itself) points every client at the local moto server
under `bridge dev`.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    """A shared boto3 client for `service` (sqs, dynamodb, secretsmanager, cloudformation)."""
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(retries={"mode": "standard", "max_attempts": 3}))


def reset_clients() -> None:
    """Forget cached clients (tests switch endpoints and credentials)."""
    client.cache_clear()
