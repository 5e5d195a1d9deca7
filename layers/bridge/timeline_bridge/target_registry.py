"""The registry of targets: every per-target list or table the core uses is derived from it.

Each target module (`timeline_bridge/targets/<name>.py`) declares a `SPEC`
(`targets.spec.TargetSpec`). Names are known without importing anything, so the ingest functions
and the settings can list targets and stay light; a spec's module is imported when it is first
asked for. `register_target` adds a target in-process (tests, a throwaway target).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from timeline_bridge.targets.spec import TargetSpec

# The shipped targets, in the order every list of targets follows; each spec is imported on use.
BUILTIN_TARGETS = ("stora", "hubspot", "matter", "applied")

_specs: dict[str, TargetSpec | None] = dict.fromkeys(BUILTIN_TARGETS)


def register_target(spec: TargetSpec) -> TargetSpec:
    """Add `spec` to the registry (ValueError if its name is taken)."""
    if spec.name in _specs:
        raise ValueError(f"target {spec.name!r} is already registered")
    _specs[spec.name] = spec
    return spec


def unregister_target(name: str) -> None:
    """Remove a target registered in-process (a shipped one cannot be removed)."""
    if name in BUILTIN_TARGETS:
        raise ValueError(f"target {name!r} ships with the bridge")
    _specs.pop(name, None)


def target_names() -> tuple[str, ...]:
    """Every target's name: the shipped ones, then those registered in-process."""
    return tuple(_specs)


def is_target(name: str) -> bool:
    return name in _specs


def target_spec(name: str) -> TargetSpec:
    """The spec of target `name`; ValueError for a name no target has."""
    if name not in _specs:
        raise ValueError(f"unknown target {name!r}")
    spec = _specs[name]
    if spec is None:
        spec = _specs[name] = importlib.import_module(f"timeline_bridge.targets.{name}").SPEC
    return spec


def target_specs() -> tuple[TargetSpec, ...]:
    return tuple(target_spec(name) for name in target_names())


def endpoints() -> dict[str, tuple[str, str]]:
    """Method and versioned path of the create call per contract (dry runs: `bridge map`)."""
    return {c.name: (c.method, c.path) for spec in target_specs() for c in spec.contracts}


def default_base_urls() -> dict[str, str]:
    return {spec.name: spec.base_url for spec in target_specs()}


def documented_rate_limits() -> dict[str, tuple[tuple[int, float], ...]]:
    return {spec.name: spec.rate_limits for spec in target_specs()}


def max_throttle_waits() -> dict[str, float]:
    """The longest wait a 429 of each target may ask for, for the targets that document limits."""
    return {s.name: s.max_throttle_wait for s in target_specs() if s.max_throttle_wait is not None}


def configured_headers() -> frozenset[str]:
    """Lower-case names of the headers any target takes from configuration."""
    names = {"authorization"}
    for spec in target_specs():
        names |= spec.configured_headers
    return frozenset(names)
