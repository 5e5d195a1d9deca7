"""Deterministic identities: the job key every target write carries."""

from __future__ import annotations

import hashlib
import uuid

# Fixed namespace so the same job key always yields the same UUID, on every machine.
JOB_NAMESPACE = uuid.UUID("5f0b6c1e-7d8a-5b3c-9e2f-4a1d6c8b0e73")


def job_key(source: str, event_id: str, mapping_name: str) -> str:
    """Key of one (source event, mapping) pair: the same on every retry and redelivery."""
    digest = hashlib.sha256(f"{source}\x1f{event_id}\x1f{mapping_name}".encode()).hexdigest()
    return f"tb-{digest[:40]}"


def job_uuid(key: str) -> str:
    """The job key as a UUIDv5, for providers that require a UUID (Matter, Stora)."""
    return str(uuid.uuid5(JOB_NAMESPACE, key))
