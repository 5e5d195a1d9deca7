"""Target clients, one module per provider, behind `TargetClient`."""

from __future__ import annotations

import importlib
from functools import cache

from timeline_bridge.targets.base import Delivered, Outcome, TargetClient

__all__ = ["Delivered", "Outcome", "TargetClient", "client_for"]


@cache
def client_for(target: str) -> TargetClient:
    """The process-wide client for `target` (stora, hubspot, matter, applied), built on first use."""
    module = importlib.import_module(f"timeline_bridge.targets.{target}")
    return module.build_client()
