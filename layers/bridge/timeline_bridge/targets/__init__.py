"""Target clients, one module per provider, behind `TargetClient`; each module declares its
`SPEC` (see `timeline_bridge.target_registry`)."""

from __future__ import annotations

from functools import cache

from timeline_bridge.target_registry import target_spec
from timeline_bridge.targets.base import Delivered, Outcome, TargetClient

__all__ = ["Delivered", "Outcome", "TargetClient", "client_for"]


@cache
def client_for(target: str) -> TargetClient:
    """The process-wide client for `target`, built on first use."""
    return target_spec(target).build_client()
