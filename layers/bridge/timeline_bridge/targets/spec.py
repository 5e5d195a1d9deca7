"""What the rest of the bridge knows about a target, declared once in the target's own module.

A `TargetSpec` is data: where the target lives, which request contracts its bodies follow, the
credential and headers it is sent with, its documented rate limits and the body fields the
bridge fills itself. The registry (`timeline_bridge.target_registry`) derives every per-target list and
table from the specs, so the config, the mapping engine, the contracts and the delivery stage
never name a target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from timeline_bridge.config import Secrets, Settings
    from timeline_bridge.targets.base import TargetClient

# A problem a target finds in a mapping's body template: (path inside the body, reason).
TargetProblem = tuple[tuple[str | int, ...], str]


@dataclass(frozen=True, slots=True)
class Contract:
    """One request contract of a target: the JSON Schema its bodies follow and the create call."""

    name: str  # the schema `schemas/targets/<name>.schema.json`, unless `schema_file` says
    path: str  # versioned path of the create call
    method: str = "POST"
    # A field only this contract's bodies have: a body holding it follows this contract.
    named_by: str | None = None
    schema_file: Path | None = None


@dataclass(frozen=True, slots=True)
class KeyField:
    """A body field the bridge sets to the job key: what lets the provider dedupe a retry."""

    path: tuple[str, ...]
    # True: a mapping may set its own value (derived from the event), which the bridge keeps.
    # False: the bridge always sets it, inside an object the body holds at `path[:-1]`.
    mapping_may_set: bool = False


@dataclass(frozen=True, slots=True)
class TargetSpec:
    """One target, as the core modules see it (see the module docstring)."""

    name: str
    base_url: str  # scheme and host; `<NAME>_BASE_URL` overrides it
    credential: str  # the environment variable (or `<name>_SECRET_ID` secret) holding the token
    contracts: tuple[Contract, ...]
    # The client of one function: its host, HTTP bounds and provider knobs from the settings, its
    # credential read from the secrets on each send.
    build_client: Callable[[Settings, Secrets], TargetClient]
    # (requests, window seconds), all enforced at once; `<NAME>_RATE_LIMITS` overrides them.
    rate_limits: tuple[tuple[int, float], ...] = ()
    # False when the limits are a guess: a 429 may then ask for any wait up to the global cap.
    rate_limits_documented: bool = True
    # Lower-case names of headers taken from configuration (beyond Authorization): a bad value
    # there is the operator's to fix, so jobs wait instead of being refused.
    configured_headers: frozenset[str] = frozenset()
    key_fields: tuple[KeyField, ...] = ()
    # The contract of a body naming none (`Contract.named_by`), as the settings choose it; None:
    # the first contract.
    default_contract: Callable[[Settings], str] | None = None
    # Target-specific checks of a body template, given the contract it follows.
    template_problems: Callable[[Mapping[str, Any], str], list[TargetProblem]] | None = field(
        default=None, compare=False
    )

    def contract(self, name: str) -> Contract:
        """The contract called `name` (KeyError if this target has none)."""
        for contract in self.contracts:
            if contract.name == name:
                return contract
        raise KeyError(name)

    def contract_for(self, body: Any, settings: Settings) -> str:
        """The contract `body` follows: the one whose `named_by` field it holds, else the default
        (`default_contract` of `settings`)."""
        if isinstance(body, dict):
            for contract in self.contracts:
                if contract.named_by is not None and contract.named_by in body:
                    return contract.name
        if self.default_contract is not None:
            return self.default_contract(settings)
        return self.contracts[0].name

    def contract_fields_named(self, body: Any) -> list[str]:
        """The contract-naming fields `body` holds: more than one is a body no contract takes."""
        if not isinstance(body, dict):
            return []
        return [c.named_by for c in self.contracts if c.named_by is not None and c.named_by in body]

    @property
    def max_throttle_wait(self) -> float | None:
        """The longest wait a 429 may ask for: the longest documented window (None: undocumented)."""
        if not self.rate_limits_documented or not self.rate_limits:
            return None
        return max(window for _, window in self.rate_limits)
