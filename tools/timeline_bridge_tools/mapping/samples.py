"""Sample inputs for dry runs (`bridge map`, mapping cases): a file becomes envelopes, as ingest
would enqueue them, without checking signatures.

A file is either a Lambda Function URL event (`events/<source>/*.json`: the body inside) or a raw
request body (JSON, or Slack's `payload=` form). The source's own parser splits it into events.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from timeline_bridge.http import WebhookRequest
from timeline_bridge.models import Envelope

# Dry runs have no arrival time; a fixed one keeps their output deterministic.
DRY_RUN_RECEIVED_AT = "1970-01-01T00:00:00.000Z"


class SampleError(ValueError):
    """The sample cannot be read or parsed."""


def is_function_url_event(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and "body" in data
        and ("headers" in data or "requestContext" in data or "rawPath" in data)
    )


def request_from_bytes(source: str, raw: bytes, name: str | None = None) -> WebhookRequest:
    """A WebhookRequest from a sample file's bytes: a Function URL event, or a raw body. `name`
    (a generic endpoint's) makes it a request to `/<source>/<name>`: a raw body has no path."""
    from timeline_bridge.config import Settings

    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if is_function_url_event(data):
        request = WebhookRequest.from_function_url_event(
            data, max_body_bytes=Settings.from_environ().max_body_bytes
        )
        return dataclasses.replace(request, raw_path=f"/{source}/{name}") if name else request
    stripped = raw.lstrip()
    content_type = (
        "application/json" if stripped.startswith((b"{", b"[")) else "application/x-www-form-urlencoded"
    )
    from timeline_bridge.sources import SOURCE_SPECS

    spec = SOURCE_SPECS.get(source)
    # An unknown source fails when parsed.
    path = f"/{source}/{name}" if name else spec.dry_run_path() if spec else f"/{source}"
    return WebhookRequest(
        method="POST", raw_path=path, raw_query="", headers={"content-type": content_type}, body=raw
    )


def envelopes_from_request(
    source: str, request: WebhookRequest, received_at: str = DRY_RUN_RECEIVED_AT
) -> list[Envelope]:
    """Parse a request with the source's own parser (no signature check) into envelopes."""
    from timeline_bridge.config import Settings
    from timeline_bridge.errors import IngestError
    from timeline_bridge.sources import for_request

    try:
        src = for_request(source, request, Settings.from_environ())
        parsed = src.parse(request)
    except (IngestError, ValueError) as exc:
        raise SampleError(f"cannot parse the {source} request: {exc}") from exc
    return [e.envelope(source, src.endpoint_name, received_at) for e in parsed.events if e.known]


def envelopes_from_file(source: str, path: str | Path, name: str | None = None) -> list[Envelope]:
    """The envelopes a sample file (Function URL event or raw body) would become; `name` is the
    generic endpoint it is sent to (`/generic/<name>`)."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise SampleError(f"cannot read {path}: {exc}") from exc
    return envelopes_from_request(source, request_from_bytes(source, raw, name))


def envelope_from_dict(data: dict[str, Any], *, source: str, default_id: str) -> Envelope:
    """An inline envelope (mapping cases): `event` plus any of the envelope's fields. A generic
    endpoint `name` must be spelled as ingest spells it, or the case tests an event that never comes."""
    if "event" not in data:
        raise SampleError("an inline input needs `event` (and optionally event_type, event_id, ...)")
    source = str(data.get("source", source))
    name = data.get("name")
    if name is not None:
        from timeline_bridge.sources import SOURCE_SPECS

        spec = SOURCE_SPECS.get(source)
        problem = spec.endpoints.problem(str(name)) if spec and spec.endpoints else None
        if problem is not None:
            rule, canonical = problem
            hint = f", so ingest names it {canonical!r}" if canonical else ""
            raise SampleError(f"name {name!r}: {rule}{hint}")
    return Envelope(
        source=source,
        event_type=str(data.get("event_type", "")),
        event_id=str(data.get("event_id", default_id)),
        occurred_at=data.get("occurred_at"),
        received_at=str(data.get("received_at", DRY_RUN_RECEIVED_AT)),
        event=data["event"],
        name=data.get("name"),
    )
