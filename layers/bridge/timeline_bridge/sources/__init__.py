"""The webhook sources: one module each (verify + parse + event identity), each declaring a `SPEC`.

`SOURCE_SPECS` maps every source name to its `SourceSpec`. A shipped source's module is imported
the first time its spec is asked for, so each function loads just its own source. A test (or a
tool) can add a source in-process with `register_source` and take it away with
`unregister_source`.

`for_request(source, request)` builds the source object for one request, with its settings read
from the environment.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from timeline_bridge.http import WebhookRequest
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
_SHIPPED = ("hubspot", "slack", "pipedrive", "generic")


class _Registry(Mapping[str, SourceSpec]):
    """Source name → spec; a shipped module is imported on first lookup."""

    def __init__(self, shipped: tuple[str, ...]) -> None:
        self._specs: dict[str, SourceSpec | None] = dict.fromkeys(shipped)

    def __getitem__(self, name: str) -> SourceSpec:
        spec = self._specs[name]
        if spec is None:
            spec = importlib.import_module(f"{__name__}.{name}").SPEC
            if not isinstance(spec, SourceSpec) or spec.name != name:
                raise TypeError(f"{__name__}.{name}.SPEC is not the SourceSpec of {name!r}")
            self._specs[name] = spec
        return spec

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    def add(self, spec: SourceSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"source {spec.name!r} is already registered")
        self._specs[spec.name] = spec

    def remove(self, name: str) -> None:
        if name in _SHIPPED:
            raise ValueError(f"source {name!r} ships with the bridge")
        self._specs.pop(name, None)


_REGISTRY = _Registry(_SHIPPED)
SOURCE_SPECS: Mapping[str, SourceSpec] = _REGISTRY


def source_names() -> tuple[str, ...]:
    """Every source name, shipped ones first (no module is imported)."""
    return tuple(SOURCE_SPECS)


def source_spec(name: str) -> SourceSpec:
    """The spec of source `name`; ValueError naming the known ones when there is none."""
    try:
        return SOURCE_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown source {name!r} (known: {', '.join(SOURCE_SPECS)})") from None


def register_source(spec: SourceSpec) -> None:
    """Add a source in-process (ValueError when its name is taken)."""
    _REGISTRY.add(spec)


def unregister_source(name: str) -> None:
    """Remove a source `register_source` added (shipped sources stay)."""
    _REGISTRY.remove(name)


def for_request(source: str, request: WebhookRequest) -> Source:
    """The configured `Source` that handles `request` for `source` (hubspot, slack, ...)."""
    return source_spec(source).source(request)


def endpoint_name_problem(name: str) -> tuple[str, str | None] | None:
    """Why no source with named endpoints records an event under `name`: (the rule it breaks, its
    own spelling, when it has one), or None when one does (or no source names endpoints)."""
    problems = [spec.endpoints.problem(name) for spec in SOURCE_SPECS.values() if spec.endpoints]
    if not problems or any(p is None for p in problems):
        return None
    return problems[0]
