"""The registry of targets: every per-target list or table the core uses is derived from it.

Each target module (`timeline_bridge/targets/<name>.py`) declares a `SPEC`
(`targets.spec.TargetSpec`), held by `TARGET_SPECS` (a `registry.Registry`, the type the sources'
registry is too): names are known without importing anything, so the ingest functions and the
settings can list targets and stay light; a spec's module is imported when it is first asked
for. `register_target` adds a target in-process (tests, a throwaway target).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from timeline_bridge.registry import Registry

if TYPE_CHECKING:
    from timeline_bridge.targets.spec import TargetSpec

# The shipped targets, in the order every list of targets follows; each spec is imported on use.
BUILTIN_TARGETS = ("stora", "hubspot", "matter", "applied")

TARGET_SPECS: Registry[TargetSpec] = Registry("target", "timeline_bridge.targets", BUILTIN_TARGETS)


def register_target(spec: TargetSpec) -> TargetSpec:
    """Add `spec` to the registry (ValueError if its name is taken)."""
    return TARGET_SPECS.add(spec)


def unregister_target(name: str) -> None:
    """Remove a target registered in-process (a shipped one cannot be removed)."""
    TARGET_SPECS.remove(name)


def target_names() -> tuple[str, ...]:
    """Every target's name: the shipped ones, then those registered in-process."""
    return TARGET_SPECS.names()


def is_target(name: str) -> bool:
    return name in TARGET_SPECS


def target_spec(name: str) -> TargetSpec:
    """The spec of target `name`; ValueError for a name no target has."""
    return TARGET_SPECS.spec(name)


def target_specs() -> tuple[TargetSpec, ...]:
    return TARGET_SPECS.specs()


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
