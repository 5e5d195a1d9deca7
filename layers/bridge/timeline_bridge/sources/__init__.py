"""The webhook sources: one module each (verify + parse + event identity), each declaring a `SPEC`.

`SOURCE_SPECS` maps every source name to its `SourceSpec` (a `registry.Registry`, the type the
targets' registry is too). A shipped source's module is imported the first time its spec is asked
for, so each function loads just its own source. A test (or a tool) can add a source in-process
with `register_source` and take it away with `unregister_source`.

`for_request(source, request, settings)` builds the source object for one request, configured
from the function's settings.
"""

from __future__ import annotations

from timeline_bridge.config import Settings
from timeline_bridge.http import WebhookRequest
from timeline_bridge.registry import Registry
from timeline_bridge.sources.base import (
    EndpointNames,
    ParsedRequest,
    SigningRequest,
    Source,
    SourceEvent,
    SourceSpec,
)

__all__ = [
    "SOURCE_SPECS",
    "EndpointNames",
    "ParsedRequest",
    "SigningRequest",
    "Source",
    "SourceEvent",
    "SourceSpec",
    "endpoint_name_problem",
    "for_request",
    "register_source",
    "source_names",
    "source_spec",
    "unregister_source",
]

# The shipped sources, in the order they are listed: each is `timeline_bridge.sources.<name>`.
_SHIPPED = ("hubspot", "slack", "pipedrive", "salesforce", "generic")


SOURCE_SPECS: Registry[SourceSpec] = Registry("source", __name__, _SHIPPED)


def source_names() -> tuple[str, ...]:
    """Every source name, shipped ones first (no module is imported)."""
    return tuple(SOURCE_SPECS)


def source_spec(name: str) -> SourceSpec:
    """The spec of source `name`; ValueError naming the known ones when there is none."""
    return SOURCE_SPECS.spec(name)


def register_source(spec: SourceSpec) -> None:
    """Add a source in-process (ValueError when its name is taken)."""
    SOURCE_SPECS.add(spec)


def unregister_source(name: str) -> None:
    """Remove a source `register_source` added (shipped sources stay)."""
    SOURCE_SPECS.remove(name)


def for_request(source: str, request: WebhookRequest, settings: Settings) -> Source:
    """The `Source` that handles `request` for `source` (hubspot, slack, ...), configured from
    the function's `settings`."""
    return source_spec(source).source(request, settings)


def endpoint_name_problem(name: str) -> tuple[str, str | None] | None:
    """Why no source with named endpoints records an event under `name`: (the rule it breaks, its
    own spelling, when it has one), or None when one does (or no source names endpoints)."""
    problems = [spec.endpoints.problem(name) for spec in SOURCE_SPECS.values() if spec.endpoints]
    if not problems or any(p is None for p in problems):
        return None
    return problems[0]
