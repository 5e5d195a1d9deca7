"""Target request contracts: the JSON Schema of each target's body, compiled once per process.

The schemas live in `timeline_bridge/schemas/targets/` (written from the providers' docs); they
are compiled with fastjsonschema, which turns a schema into plain Python code: validating a
body costs a few microseconds, so every rendered job is checked before it is enqueued.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from timeline_bridge.target_registry import target_names, target_spec, target_specs

if TYPE_CHECKING:
    from timeline_bridge.config import Settings

SCHEMAS_DIR = Path(__file__).resolve().parent.parent / "schemas"

# fastjsonschema's `uri` format (draft 7): the planned checks and codegen reason about it.
URI_PATTERN = r"^\w+:(\/?\/?)[^\s]+\Z"
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


def api_fields_named(target: str, body: Any) -> list[str]:
    """The API-naming fields a body holds: more than one is a body no API takes."""
    return target_spec(target).contract_fields_named(body)


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


def _validator(target: str, body: Any, settings: Settings) -> Callable[[Any], Any]:
    return _contract_validator(contract_name(target, body, settings))


@cache
def _contract_validator(contract: str) -> Callable[[Any], Any]:
    return _compiled(json.dumps(contract_schema(contract), sort_keys=True))


def validate_body(target: str, body: Any, settings: Settings) -> None:
    """Raise ContractViolation naming the first offending field of `body` (a body naming no
    contract is checked against the default of `settings`)."""
    import fastjsonschema

    try:
        _validator(target, body, settings)(body)
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


def top_level_fields(target: str, body: Any, settings: Settings) -> frozenset[str] | None:
    """The fields a target's body (of the API `body` writes) may have at the top, or None when it
    allows any."""
    schema = target_schema(target, body, settings)
    if schema.get("additionalProperties", True) is not False:
        return None
    return frozenset(schema.get("properties", {}))


# --- contract checks planned from the template ----------------------------------------------------
#
# A mapping's body has a fixed shape: constants never change, text templates always render
# strings, and only whole `${{ }}` values are free (any JSON, or left out when null). So the
# target contract can be checked once against the template when the mapping loads, leaving for
# each event only what can vary: the free values and the presence of keys they may leave out.
# Anything this planner does not model exactly is checked with the full schema at run time.

_OBJECT_KEYWORDS = frozenset(
    {"type", "properties", "additionalProperties", "required", "anyOf", "minProperties", "propertyNames"}
)
_ANNOTATIONS = frozenset(
    {"title", "description", "$comment", "$id", "$schema", "definitions", "x-messages", "x-bridge-text"}
)
_STRING_ONLY = frozenset({"type"}) | _ANNOTATIONS

Check = Callable[[Any], None]
_ABSENT = object()


class _Unplannable(Exception):
    """The planner does not model this schema: validate the subtree with the full schema."""


def _resolve(schema: Any, root: dict[str, Any]) -> Any:
    """The schema with every local `$ref` replaced by its definition."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/definitions/"):
                raise _Unplannable(ref)
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


_TYPE_SETS: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
    "number": frozenset({int, float}),
    "integer": frozenset({int}),
}
_FAST_KEYWORDS = frozenset({"type", "pattern", "format", "enum", "minLength", "maxLength", "not", "allOf"})


# A test is (operation, operand); together they are True only for values the schema accepts.
Test = tuple[str, Any]


def _fast_tests(schema: dict[str, Any]) -> list[Test] | None:
    """Cheap tests that pass only for values `schema` accepts (None: not modelled).

    They are a shortcut, never the verdict: a value they refuse is validated with the compiled
    schema, which raises the precise error (or accepts it)."""
    kind = schema.get("type")
    if kind is None:
        return None
    kinds = [kind] if isinstance(kind, str) else list(kind)
    if any(k not in _TYPE_SETS for k in kinds):
        return None
    if _only_type(schema):
        return [("type", frozenset().union(*(_TYPE_SETS[k] for k in kinds)))]
    if kinds != ["string"]:
        return None
    string_tests = _string_tests(schema)
    return None if string_tests is None else [("type", frozenset({str})), *string_tests]


def _only_type(schema: dict[str, Any]) -> bool:
    return not (set(schema) - _ANNOTATIONS - {"type"})


def _string_tests(schema: dict[str, Any]) -> list[Test] | None:
    """Tests of a string against the string keywords of `schema` (None: one is not modelled)."""
    from fastjsonschema.draft04 import DOLLAR_FINDER
    from fastjsonschema.draft07 import CodeGeneratorDraft07

    if set(schema) - _ANNOTATIONS - _FAST_KEYWORDS:
        return None
    tests: list[Test] = []
    if "pattern" in schema:
        tests.append(("search", re.compile(DOLLAR_FINDER.sub(r"\\Z", schema["pattern"]))))
    if "format" in schema:
        formats = {**CodeGeneratorDraft07.FORMAT_REGEXS, "uuid": _UUID.pattern}
        if schema["format"] not in formats:
            return None
        tests.append(("match", re.compile(formats[schema["format"]])))
    if "minLength" in schema:
        tests.append(("min", int(schema["minLength"])))
    if "maxLength" in schema:
        tests.append(("max", int(schema["maxLength"])))
    if "enum" in schema:
        if not all(isinstance(o, str) for o in schema["enum"]):
            return None
        tests.append(("in", frozenset(schema["enum"])))
    if "not" in schema:
        negated = schema["not"]
        if set(negated) - _ANNOTATIONS != {"pattern"}:
            return None
        pattern = re.compile(DOLLAR_FINDER.sub(r"\\Z", negated["pattern"]))
        tests.append(
            ("no_search_unprintable" if _unprintable_class(negated["pattern"]) else "no_search", pattern)
        )
    for branch in schema.get("allOf", ()):
        if "type" in branch and branch["type"] != "string":
            return None
        inner = _string_tests(branch)
        if inner is None:
            return None
        tests.extend(inner)
    return tests


_CLASS_ITEM = re.compile(r"\\u([0-9a-fA-F]{4})(?:-\\u([0-9a-fA-F]{4}))?")


def _unprintable_class(pattern: str) -> bool:
    """`pattern` is one character class of `\\uXXXX` characters and ranges, all unprintable
    (`[\\u0000-\\u001f\\u007f]`): a string that `str.isprintable()` holds none of them."""
    if not (pattern.startswith("[") and pattern.endswith("]") and len(pattern) > 2):
        return False
    inner, pos, chars = pattern[1:-1], 0, 0
    while pos < len(inner):
        item = _CLASS_ITEM.match(inner, pos)
        if item is None:
            return False
        low = int(item.group(1), 16)
        high = int(item.group(2) or item.group(1), 16)
        chars += high - low + 1
        if high < low or chars > 4096 or any(chr(c).isprintable() for c in range(low, high + 1)):
            return False
        pos = item.end()
    return True


def test_code(tests: list[Test], var: str, const: Callable[[Any], str]) -> str:
    """The tests as one Python condition on `var` (operands go through `const`)."""
    parts = []
    for op, operand in tests:
        if op == "type" and len(operand) == 1:
            (kind,) = operand
            parts.append(f"type({var}) is {const(kind)}")
            continue
        ref = const(operand)
        if op == "type":
            parts.append(f"type({var}) in {ref}")
        elif op == "search":
            parts.append(f"{ref}.search({var}) is not None")
        elif op == "no_search":
            parts.append(f"{ref}.search({var}) is None")
        elif op == "no_search_unprintable":
            # Every character the pattern finds is unprintable: printable text passes at once.
            parts.append(f"({var}.isprintable() or {ref}.search({var}) is None)")
        elif op == "uri_after_scheme":
            # The text starts with a constant `scheme:x` (see codegen): it is a URI when it has no
            # whitespace. Every Unicode whitespace but the space is unprintable, hence the shortcut.
            parts.append(f"(({var}.isprintable() and ' ' not in {var}) or {ref}.match({var}) is not None)")
        elif op == "match":
            parts.append(f"{ref}.match({var}) is not None")
        elif op == "min":
            parts.append(f"len({var}) >= {ref}")
        elif op == "max":
            parts.append(f"len({var}) <= {ref}")
        elif op == "in":
            parts.append(f"{var} in {ref}")
        else:  # pragma: no cover - every operation above is produced by _fast_tests
            raise ValueError(op)
    return " and ".join(parts)


def _predicate(tests: list[Test]) -> Callable[[Any], bool]:
    constants: list[Any] = []

    def const(value: Any) -> str:
        constants.append(value)
        return f"_K[{len(constants) - 1}]"

    source = f"def _test(v):\n    return {test_code(tests, 'v', const)}\n"
    namespace: dict[str, Any] = {"__builtins__": {"type": type, "len": len}, "_K": tuple(constants)}
    exec(compile(source, "<contract test>", "exec"), namespace)  # noqa: S102 - operands are constants
    return namespace["_test"]


def _fast_predicate(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    tests = _fast_tests(schema)
    return None if tests is None else _predicate(tests)


class LeafCheck:
    """The per-event check of one free value: cheap tests first, the compiled schema on refusal."""

    __slots__ = ("fast", "full", "tests")

    def __init__(self, schema: dict[str, Any], prefix: str) -> None:
        self.full = _subvalidator(schema, prefix)
        self.tests = _fast_tests(schema)
        self.fast = None if self.tests is None else _predicate(self.tests)

    def __call__(self, value: Any) -> None:
        if self.fast is None or not self.fast(value):
            self.full(value)


def _leaf_check(schema: dict[str, Any], prefix: str) -> Check | None:
    """The per-event check of one free value (None: the schema accepts anything)."""
    if not set(schema) - _ANNOTATIONS:
        return None
    return LeafCheck(schema, prefix)


class PresenceCheck:
    """Keys an object must have, when free values may leave some out (`required`, `anyOf` of
    `required`, `minProperties`)."""

    __slots__ = ("branches", "field", "least", "message", "required")

    def __init__(
        self, field: str, required: tuple[str, ...], branches: list[tuple[str, ...]], message: str, least: int
    ) -> None:
        self.field = field
        self.required = required
        self.branches = branches
        self.message = message
        self.least = least

    def failure_code(self, var: str) -> str:
        """A Python condition on `var` (an object) that is True when a key is missing."""
        tests = [f"{k!r} not in {var}" for k in self.required]
        if self.branches:
            held = " or ".join("(" + " and ".join(f"{k!r} in {var}" for k in b) + ")" for b in self.branches)
            tests.append(f"not ({held})")
        if self.least:
            tests.append(f"len({var}) < {self.least}")
        return " or ".join(tests) or "False"

    def __call__(self, present: Any) -> None:
        if type(present) is not dict:
            return
        absent = sorted(k for k in self.required if k not in present)
        if absent:
            raise ContractViolation(self.field, f"must contain {absent} properties")
        if self.branches and not any(all(k in present for k in b) for b in self.branches):
            raise ContractViolation(self.field, self.message)
        if self.least and len(present) < self.least:
            raise ContractViolation(self.field, f"must contain at least {self.least} properties")


class EmptyRequiredValue(ValueError):
    """A field the mapping lists under `required:` rendered empty (null, "", blank, [] or {})."""

    def __init__(self, path: tuple[str, ...]) -> None:
        super().__init__(".".join(path))
        self.path = path


def _raise_empty(path: tuple[str, ...]) -> None:
    raise EmptyRequiredValue(path)


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
    import jmespath

    from timeline_bridge.mapping.expressions import split_template

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


@dataclass
class ContractPlan:
    """The per-event part of a target contract check, and what the template breaks for good."""

    checks: list[tuple[tuple[str, ...], Check]] = field(default_factory=list)
    problems: list[ContractViolation] = field(default_factory=list)
    # Fields the mapping lists under `required:`, checked first (EmptyRequiredValue).
    required: tuple[tuple[str, ...], ...] = ()
    _run: Callable[[Any], None] | None = None

    def __call__(self, body: Any) -> None:
        if self._run is None:
            self._run = _generate_plan(self.checks, self.required)
        self._run(body)

    def by_path(self) -> dict[tuple[str, ...], list[Check]]:
        """The per-event checks grouped by the body path they apply to, parents first."""
        grouped: dict[tuple[str, ...], list[Check]] = {}
        for path, check in self.checks:
            grouped.setdefault(path, []).append(check)
        return grouped


def _generate_plan(
    checks: list[tuple[tuple[str, ...], Check]], required: tuple[tuple[str, ...], ...] = ()
) -> Callable[[Any], None]:
    """The checks as one generated function walking the body once (see mapping.codegen: only
    data from the schemas reaches it, through repr() and a constants tuple)."""
    tree: dict[str, Any] = {"checks": [], "children": {}}
    for path, check in checks:
        node = tree
        for part in path:
            node = node["children"].setdefault(part, {"checks": [], "children": {}})
        node["checks"].append(check)
    constants: list[Any] = []
    lines = ["def _check(v0):"]

    def const(value: Any) -> str:
        constants.append(value)
        return f"_K[{len(constants) - 1}]"

    def emit(node: dict[str, Any], var: str, depth: int, indent: str) -> None:
        for check in node["checks"]:
            if isinstance(check, LeafCheck) and check.tests is not None:
                condition = test_code(check.tests, var, const)
                lines.append(f"{indent}if not ({condition}): {const(check.full)}({var})")
            elif isinstance(check, PresenceCheck):
                failed = check.failure_code(var)
                lines.append(f"{indent}if type({var}) is dict and ({failed}): {const(check)}({var})")
            else:
                lines.append(f"{indent}{const(check)}({var})")
        if node["children"]:
            lines.append(f"{indent}if type({var}) is dict:")
            for key, child in node["children"].items():
                inner = f"v{depth + 1}"
                lines.append(f"{indent}    {inner} = {var}.get({key!r}, _ABSENT)")
                lines.append(f"{indent}    if {inner} is not _ABSENT:")
                emit(child, inner, depth + 1, indent + "        ")

    for index, path in enumerate(required):
        value = f"r{index}"
        lines.append(f"    {value} = v0")
        for part in path:
            lines.append(f"    {value} = {value}.get({part!r}) if type({value}) is dict else None")
        empty = f"{value} is None or {value} == [] or {value} == {{}} or (type({value}) is str and not {value}.strip())"
        lines.append(f"    if {empty}: _raise_empty({path!r})")
    emit(tree, "v0", 0, "    ")
    lines.append("    return None")
    namespace: dict[str, Any] = {
        "__builtins__": {"type": type, "dict": dict, "len": len, "str": str},
        "_K": tuple(constants),
        "_ABSENT": _ABSENT,
        "_raise_empty": _raise_empty,
    }
    exec(compile("\n".join(lines) + "\n", "<contract plan>", "exec"), namespace)  # noqa: S102
    return namespace["_check"]


def plan_contract(target: str, template: dict[str, Any], settings: Settings) -> ContractPlan | None:
    """Plan the contract check of `target` for a body template (None: check in full each time)."""
    from timeline_bridge.mapping.expressions import split_template

    root = target_schema(target, template, settings)
    try:
        schema = _resolve(root, root)
    except _Unplannable:
        return None
    plan = ContractPlan()

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

    def whole_check(path: tuple[str, ...], schema: dict[str, Any]) -> None:
        check = _leaf_check(schema, ".".join(path))
        if check is not None:
            plan.checks.append((path, check))

    def visit(value: Any, schema: dict[str, Any], path: tuple[str, ...]) -> None:
        kind = kind_of(value)
        dotted = ".".join(path)
        if kind == "const":
            try:
                _subvalidator(schema, dotted)(value)
            except ContractViolation as exc:
                plan.problems.append(exc)
            return
        if kind == "whole" or kind == "list":
            problem = _result_type_problem(value, schema, dotted) if kind == "whole" else None
            if problem is not None:
                plan.problems.append(problem)
                return
            whole_check(path, schema)
            return
        if kind == "text":
            types = _types(schema)
            if types is not None and "string" not in types:
                plan.problems.append(
                    ContractViolation(dotted, f"must be {' or '.join(sorted(types))}, not text")
                )
            elif set(schema) - _STRING_ONLY:
                whole_check(path, schema)  # pattern, format, length, enum...: check the text
            return
        # A template object with free values somewhere inside.
        if set(schema) - _OBJECT_KEYWORDS - _ANNOTATIONS:
            whole_check(path, schema)
            return
        types = _types(schema)
        if types is not None and "object" not in types:
            plan.problems.append(ContractViolation(dotted, f"must be {' or '.join(sorted(types))}"))
            return
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties", True)
        names = schema.get("propertyNames")
        for key, item in value.items():
            if names is not None:
                try:
                    _subvalidator(names, dotted)(key)
                except ContractViolation as exc:
                    plan.problems.append(ContractViolation(exc.field, f"key {key!r}: {exc.reason}"))
            if key in properties:
                child = properties[key]
            elif additional is False:
                plan.problems.append(ContractViolation(dotted, f"must not contain {{{key!r}}} properties"))
                continue
            else:
                child = additional if isinstance(additional, dict) else {}
            visit(item, child, (*path, key))
        presence_check(value, schema, path)

    def presence_check(value: dict[str, Any], schema: dict[str, Any], path: tuple[str, ...]) -> None:
        keys = set(value)
        optional = {k for k, v in value.items() if kind_of(v) == "whole"}
        required = list(schema.get("required", ()))
        branches = schema.get("anyOf")
        minimum = schema.get("minProperties")
        custom = schema.get("x-messages", {})
        dotted = ".".join(path)
        if branches is not None and any(set(b) - {"required"} for b in branches):
            raise _Unplannable("anyOf")
        missing = sorted(k for k in required if k not in keys)
        if missing:
            plan.problems.append(ContractViolation(dotted, f"must contain {missing} properties"))
            return
        may_miss = [k for k in required if k in optional]
        any_sets = [set(b["required"]) for b in branches or ()]
        if any_sets and not any(s <= keys for s in any_sets):
            plan.problems.append(
                ContractViolation(dotted, custom.get("anyOf", "cannot be validated by any definition"))
            )
            return
        any_dynamic = any_sets and not any(s <= keys - optional for s in any_sets)
        min_dynamic = minimum is not None and len(keys - optional) < minimum
        if minimum is not None and len(keys) < minimum:
            plan.problems.append(ContractViolation(dotted, f"must contain at least {minimum} properties"))
            return
        if not (may_miss or any_dynamic or min_dynamic):
            return
        presence = PresenceCheck(
            dotted,
            tuple(may_miss),
            [tuple(s) for s in any_sets] if any_dynamic else [],
            custom.get("anyOf", "cannot be validated by any definition"),
            int(minimum or 0) if min_dynamic else 0,
        )
        check: Check = presence
        plan.checks.append((path, check))

    try:
        visit(template, schema, ())
    except _Unplannable:
        return None
    # Check parents' presence before their values, as a full validation would meet them.
    plan.checks.sort(key=lambda item: len(item[0]))
    return plan
