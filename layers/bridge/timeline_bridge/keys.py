"""Deterministic identities: the job key every target write carries."""

from __future__ import annotations

import hashlib
import uuid

# Fixed namespace so the same job key always yields the same UUID, on every machine.
JOB_NAMESPACE = uuid.UUID("5f0b6c1e-7d8a-5b3c-9e2f-4a1d6c8b0e73")


def event_scope(source: str, name: str | None = None) -> str:
    """Whose numbering an event id belongs to: the source (`hubspot`), or one generic endpoint
    (`generic.<name>`), since two endpoints are two senders that may pick the same ids. Ingest
    dedupes within a scope and job keys hash it, so both agree on what "the same event" is."""
    return source if name is None else f"{source}.{name}"


def job_key(scope: str, event_id: str, mapping_name: str) -> str:
    """Key of one (source event, mapping) pair: the same on every retry and redelivery.

    `scope` is `event_scope(...)`: for hubspot, slack and pipedrive it is the source name itself,
    so their keys are what they always were."""
    digest = hashlib.sha256(f"{scope}\x1f{event_id}\x1f{mapping_name}".encode()).hexdigest()
    return f"tb-{digest[:40]}"


def job_uuid(key: str) -> str:
    """The job key as a UUIDv5, for providers that require a UUID (Matter, Stora)."""
    return str(uuid.uuid5(JOB_NAMESPACE, key))
