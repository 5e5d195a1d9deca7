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
from typing import TYPE_CHECKING, Any

import jmespath

from timeline_bridge.mapping.expressions import split_template
from timeline_bridge.target_registry import target_names, target_spec, target_specs

if TYPE_CHECKING:
    from timeline_bridge.config import Settings

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")


class ContractViolation(ValueError):
    """A body breaks its target's contract. `field` is a dotted path inside the body."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def contract_name(target: str, body: Any, settings: Settings) -> str:
    """The contract a target's bodies follow. For a target with several APIs the body's own field
    names it (`Contract.named_by`); a body naming none follows the target's default API in
    `settings`, so its errors say what that API needs."""
    return target_spec(target).contract_for(body, settings)


def schema_path(contract: str) -> Path:
    """The schema file of `contract`: the one its target's spec names, else the shipped one."""
    for spec in target_specs():
        for candidate in spec.contracts:
            if candidate.name == contract and candidate.schema_file is not None:
                return candidate.schema_file
    return SCHEMAS_DIR / "targets" / f"{contract}.schema.json"


def target_schema(target: str, body: Any, settings: Settings) -> dict[str, Any]:
    return contract_schema(contract_name(target, body, settings))


def text_fields(target: str, body: Any, settings: Settings) -> tuple[str, ...]:
    """Top-level object fields whose values the provider takes as strings only, marked
    `"x-bridge-text": true` in the contract: the bridge writes their numbers and booleans as text
    (3 → "3", true → "true") before the body is checked, so what is checked is what is sent."""
    properties = target_schema(target, body, settings).get("properties", {})
    return tuple(
        name for name, sub in properties.items() if isinstance(sub, dict) and sub.get("x-bridge-text")
    )


@cache
def contract_schema(contract: str) -> dict[str, Any]:
    return json.loads(schema_path(contract).read_text())


def mapping_schema() -> dict[str, Any]:
    """The mapping file schema; its `source` and `target` enums list the registered ones."""
    from timeline_bridge.sources import source_names

    return mapping_schema_for(target_names(), source_names())


@cache
def mapping_schema_for(targets: tuple[str, ...], sources: tuple[str, ...]) -> dict[str, Any]:
    schema = json.loads((SCHEMAS_DIR / "mapping.schema.json").read_text())
    for key, names in (("target", targets), ("source", sources)):
        prop = schema["properties"][key]
        prop["enum"] = list(names)
        prop["x-message"] = f"must be one of {', '.join(names)}"
    return schema


@cache
def _contract_validator(contract: str) -> Check:
    return _subvalidator(contract_schema(contract), "")


def validate_body(target: str, body: Any, settings: Settings) -> None:
    """Raise ContractViolation naming the first offending field of `body` (a body naming no
    contract is checked against the default of `settings`)."""
    _contract_validator(contract_name(target, body, settings))(body)


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


def top_level_fields(target: str, body: Any, settings: Settings) -> frozenset[str] | None:
    """The fields a target's body (of the API `body` writes) may have at the top, or None when it
    allows any."""
    schema = target_schema(target, body, settings)
    if schema.get("additionalProperties", True) is not False:
        return None
    return frozenset(schema.get("properties", {}))


# --- what a body template breaks for good ---------------------------------------------------------
#
# A mapping's body has a fixed shape: constants never change, text templates always render
# strings, and only whole `${{ }}` values are free (any JSON, or left out when null). So part of
# the target contract can be checked once against the template when the mapping loads; every
# rendered body is still validated against the full schema (`validate_body`).

_OBJECT_KEYWORDS = frozenset(
    {"type", "properties", "additionalProperties", "required", "anyOf", "minProperties", "propertyNames"}
)
_ANNOTATIONS = frozenset(
    {"title", "description", "$comment", "$id", "$schema", "definitions", "x-messages", "x-bridge-text"}
)

Check = Callable[[Any], None]


class _Unmodelled(Exception):
    """`template_problems` does not model this schema: each rendered body is checked in full."""


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    """The schema with every local `$ref` replaced by its definition."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/definitions/"):
                raise _Unmodelled(ref)
            return _resolve(root["definitions"][ref.rsplit("/", 1)[1]], root)
        return {k: _resolve(v, root) for k, v in schema.items() if k != "definitions"}
    if isinstance(schema, list):
        return [_resolve(v, root) for v in schema]
    return schema


@cache
def _compiled(schema_json: str) -> Callable[[Any], Any]:
    import fastjsonschema

    schema = json.loads(schema_json)
    schema.setdefault("$schema", "http://json-schema.org/draft-07/schema#")
    return fastjsonschema.compile(
        schema, formats={"uuid": _UUID.pattern}, use_default=False, detailed_exceptions=True
    )


def _subvalidator(schema: dict[str, Any], prefix: str) -> Check:
    """Validate one value against `schema`; errors name fields under `prefix`."""
    import fastjsonschema

    validate = _compiled(json.dumps(schema, sort_keys=True))

    def check(value: Any) -> None:
        try:
            validate(value)
        except fastjsonschema.JsonSchemaValueException as exc:
            violation = _violation(exc)
            field = ".".join(p for p in (prefix, violation.field) if p)
            raise ContractViolation(field, violation.reason) from None

    return check


def _types(schema: dict[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    return {kind} if isinstance(kind, str) else set(kind)


# Functions whose result is always a number, whatever the event holds.
_NUMBER_FUNCTIONS = frozenset({"length", "to_number", "to_epoch_ms", "abs", "ceil", "floor", "sum", "avg"})


def _result_type_problem(value: str, schema: dict[str, Any], field: str) -> ContractViolation | None:
    """A whole-value expression that always gives a number where the target takes no number
    (`${{ length(x) }}` for a string field): refused at load, with the fix."""
    types = _types(schema)
    if types is None or types & {"number", "integer"}:
        return None
    parts = split_template(value) or []
    try:
        node = jmespath.compile(parts[0][0].strip()).parsed if parts and isinstance(parts[0], tuple) else None
    except jmespath.exceptions.JMESPathError:
        return None  # the engine reports it
    if not (isinstance(node, dict) and node.get("type") == "function_expression"):
        return None
    name = node.get("value")
    if name not in _NUMBER_FUNCTIONS:
        return None
    reason = f"must be {' or '.join(sorted(types))}, but {name}() gives a number"
    if "string" in types:
        reason += f": write ${{{{ to_string({parts[0][0].strip()}) }}}}"
    return ContractViolation(field, reason)


def template_problems(target: str, template: dict[str, Any], settings: Settings) -> list[ContractViolation]:
    """What a body template breaks of `target`'s contract whatever the event holds: its constants,
    its text where the target takes no text, its functions that always give a number where the
    target takes none, and keys it lacks or has too many of. Reported when the mapping loads."""
    root = target_schema(target, template, settings)
    try:
        schema = _resolve(root, root)
    except _Unmodelled:
        return []
    problems: list[ContractViolation] = []

    def kind_of(value: Any) -> str:
        if isinstance(value, str):
            parts = split_template(value)
            if parts is None:
                return "const"
            return "whole" if len(parts) == 1 and isinstance(parts[0], tuple) else "text"
        if isinstance(value, dict):
            return "const" if all(kind_of(v) == "const" for v in value.values()) else "dict"
        if isinstance(value, list):
            return "const" if all(kind_of(v) == "const" for v in value) else "list"
        return "const"

    def visit(value: Any, schema: dict[str, Any], path: tuple[str, ...]) -> None:
        kind = kind_of(value)
        dotted = ".".join(path)
        if kind == "const":
            try:
                _subvalidator(schema, dotted)(value)
            except ContractViolation as exc:
                problems.append(exc)
            return
        if kind == "whole":
            problem = _result_type_problem(value, schema, dotted)
            if problem is not None:
                problems.append(problem)
            return
        if kind == "list":
            return
        if kind == "text":
            types = _types(schema)
            if types is not None and "string" not in types:
                problems.append(ContractViolation(dotted, f"must be {' or '.join(sorted(types))}, not text"))
            return
        # A template object with free values somewhere inside.
        if set(schema) - _OBJECT_KEYWORDS - _ANNOTATIONS:
            return
        types = _types(schema)
        if types is not None and "object" not in types:
            problems.append(ContractViolation(dotted, f"must be {' or '.join(sorted(types))}"))
            return
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for key, item in value.items():
            if names is not None:
                try:
                    _subvalidator(names, dotted)(key)
                except ContractViolation as exc:
                    problems.append(ContractViolation(exc.field, f"key {key!r}: {exc.reason}"))
            if key in properties:
                child = properties[key]
            elif additional is False:
                problems.append(ContractViolation(dotted, f"must not contain {{{key!r}}} properties"))
                continue
            else:
                child = additional if isinstance(additional, dict) else {}
            visit(item, child, (*path, key))
        presence_check(value, schema, path)

    def presence_check(value: dict[str, Any], schema: dict[str, Any], path: tuple[str, ...]) -> None:
        keys = set(value)
        branches = schema.get("anyOf")
        minimum = schema.get("minProperties")
        dotted = ".".join(path)
        if branches is not None and any(set(b) - {"required"} for b in branches):
            raise _Unmodelled("anyOf")
        missing = sorted(k for k in schema.get("required", ()) if k not in keys)
        any_sets = [set(b["required"]) for b in branches or ()]
        if missing:
            problems.append(ContractViolation(dotted, f"must contain {missing} properties"))
        elif any_sets and not any(s <= keys for s in any_sets):
            message = schema.get("x-messages", {}).get("anyOf", "cannot be validated by any definition")
            problems.append(ContractViolation(dotted, message))
        elif minimum is not None and len(keys) < minimum:
            problems.append(ContractViolation(dotted, f"must contain at least {minimum} properties"))

    try:
        visit(template, schema, ())
    except _Unmodelled:
        return []  # the full schema checks each rendered body all the same
    return problems
