"""Target request contracts: the JSON Schema of each target's body, compiled once per process.

The schemas live in `timeline_bridge/schemas/targets/` (written from the providers' docs); they
are compiled with fastjsonschema, which turns a schema into plain Python code: validating a
body costs a few microseconds, so every rendered job is checked before it is enqueued.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from timeline_bridge import TARGETS

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"

# Method and versioned path of the create call per target, for dry runs (`bridge map`).
ENDPOINTS: dict[str, tuple[str, str]] = {
    "stora": ("POST", "/2025-09/timeline/events"),
    "hubspot": ("POST", "/integrators/timeline/v3/events"),
    "matter": ("POST", "/v1/timeline_events"),
    "applied": ("POST", "/v2026-04/events/"),
}

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


class ContractViolation(ValueError):
    """A body breaks its target's contract. `field` is a dotted path inside the body."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def schema_path(target: str) -> Path:
    return SCHEMAS_DIR / "targets" / f"{target}.schema.json"


@cache
def target_schema(target: str) -> dict[str, Any]:
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}")
    return json.loads(schema_path(target).read_text())


@cache
def mapping_schema() -> dict[str, Any]:
    return json.loads((SCHEMAS_DIR / "mapping.schema.json").read_text())


@cache
def _validator(target: str) -> Callable[[Any], Any]:
    import fastjsonschema  # lazy: only the route stage and the CLI validate bodies

    return fastjsonschema.compile(
        target_schema(target), formats={"uuid": _UUID.pattern}, use_default=False, detailed_exceptions=True
    )


def validate_body(target: str, body: Any) -> None:
    """Raise ContractViolation naming the first offending field of `body`."""
    import fastjsonschema

    try:
        _validator(target)(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        raise _violation(exc) from None


def _violation(exc: Any) -> ContractViolation:
    # exc.name is "data.variables.deal_name" (or "data" for the root); exc.message repeats it.
    name = exc.name or "data"
    field = name[len("data") :].lstrip(".") if name.startswith("data") else name
    message = exc.message or "is not valid"
    if message.startswith(name):
        message = message[len(name) :].strip()
    # A schema may word a rule's failure itself ("x-messages": {"anyOf": "..."}).
    custom = (
        (exc.definition or {}).get("x-messages", {}).get(exc.rule)
        if isinstance(exc.definition, dict)
        else None
    )
    return ContractViolation(field, custom or message)


def top_level_fields(target: str) -> frozenset[str] | None:
    """The fields a target's body may have at the top, or None when it allows any."""
    schema = target_schema(target)
    if schema.get("additionalProperties", True) is not False:
        return None
    return frozenset(schema.get("properties", {}))
