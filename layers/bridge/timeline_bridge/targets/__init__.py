"""Target clients, one module per provider, behind `TargetClient`; each module declares its
`SPEC` (see `timeline_bridge.target_registry`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from timeline_bridge.target_registry import target_spec
from timeline_bridge.targets.base import Delivered, Outcome, TargetClient

if TYPE_CHECKING:
    from timeline_bridge.config import Secrets, Settings

__all__ = ["Delivered", "Outcome", "TargetClient", "client_for"]


def client_for(target: str, settings: Settings, secrets: Secrets) -> TargetClient:
    """A new client for `target`, built from one function's settings and secrets (the deliverer
    keeps the one it builds)."""
    return target_spec(target).build_client(settings, secrets)
