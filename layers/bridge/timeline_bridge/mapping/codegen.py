"""The fast path: a mapping's body and `when` as one generated Python function each.

The closures of `expressions.Compiler` are exact but pay a Python call per AST node. Here the same
AST is translated into a single Python expression per `${{ }}` (field access inlined as dict
lookups, `&&`/`||` as conditional expressions), and the body template into one function that
builds the body as a dict literal. The function is compiled once, when the mapping loads.

What reaches the generated source from a mapping file is only ever *data*: keys and strings are
written with `repr()`, everything else (lookup tables, literals, floats) sits in a constants
tuple. No text from a mapping or an event is ever executed.

The fast path has no error reporting of its own: when it raises anything, the engine renders
again with the closures, which name the field and the reason. Node types rare in mappings
(projections, filters, slices, expression references) are delegated to those closures too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import jmespath
from jmespath import exceptions as jp_exceptions

from timeline_bridge.mapping.expressions import (
    BridgeFunctions,
    Compiler,
    _equals,
    _is_comparable,
    checked_function,
    lookup_key,
    split_template,
    stringify,
    to_string,
)

_MISSING = object()
_SCALARS = frozenset((str, int, bool, type(None)))
_EMPTY: dict[str, Any] = {}  # read-only stand-in for a root that is not an object


class Unsupported(Exception):
    """This template cannot take the fast path; the closures render it."""


class _Fallback(Exception):
    """Raised inside generated code; the engine then renders with the closures."""


def _fail(*_args: Any) -> Any:
    raise _Fallback


def _text(value: Any) -> str:
    """A non-string value inside text: stringified, or the fallback for a missing one."""
    if value is None:
        raise _Fallback
    return stringify(value)


def _finite(value: Any) -> Any:
    """Whole-expression results other than plain scalars: no NaN or Infinity anywhere."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float and not math.isfinite(item):
            raise _Fallback
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return value


def _ordering(op: str) -> Callable[[Any, Any], Any]:
    import operator

    compare = {"lt": operator.lt, "gt": operator.gt, "lte": operator.le, "gte": operator.ge}[op]

    def ordered(a: Any, b: Any) -> Any:
        if not (_is_comparable(a) and _is_comparable(b)):
            return None
        return compare(a, b)

    return ordered


def _falsy(name: str) -> str:
    """JMESPath falsiness of the value bound to `name` (null, false, "", [], {})."""
    return f"({name} is None or {name} is False or (type({name}) in _EMPTYABLE and not {name}))"


class _Generator:
    def __init__(self, functions: BridgeFunctions) -> None:
        self.functions = functions
        self.closures = Compiler(functions)
        self.constants: list[Any] = []
        self.count = 0
        self.lines: list[str] = []
        # Plain paths from the context, read once per call: `_hN` is the value, `_v_hN` the same
        # when it is an object, else an empty one (so reading a field below needs no type check).
        self.hoisted: dict[tuple[str, str], str] = {}
        self.hoisted_names: set[str] = set()
        self.views_needed: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------------

    def temp(self) -> str:
        self.count += 1
        return f"_t{self.count}"

    def const(self, value: Any) -> str:
        self.constants.append(value)
        return f"_K[{len(self.constants) - 1}]"

    def literal(self, value: Any) -> str:
        if value is None or isinstance(value, bool | int | str):
            return repr(value)
        if isinstance(value, float) and math.isfinite(value):
            return self.const(value)
        if isinstance(value, dict | list):
            return f"_loads({self.const(json.dumps(value))})"
        raise Unsupported(f"literal {value!r}")

    def named(self, source: str, build: Callable[[str], str]) -> str:
        """`build(name)` with `source` evaluated once, first, and bound to `name`."""
        if source.isidentifier():
            return build(source)
        name = self.temp()
        return f"({build(name)} if (({name} := {source}) is {name}) else None)"

    # -- JMESPath nodes --------------------------------------------------------------------------

    def node(self, node: dict[str, Any], source: str) -> str:
        kind = node["type"]
        method = getattr(self, f"_n_{kind}", None)
        if method is None:
            closure = self.const(self.closures.compile(node))
            return f"{closure}({source})"
        return method(node, source)

    def _n_field(self, node: dict[str, Any], source: str) -> str:
        key = node["value"]
        if source == "ctx" or source in self.hoisted_names:
            # A plain path from the context (`event.data.stage_id`): every prefix is read once per
            # call, in the prologue, and shared by all the expressions that use it.
            return self._hoist(source, key)
        name = self.temp()
        return f"({name}.get({key!r}) if type({name} := {source}) is dict else None)"

    def _hoist(self, parent: str, key: str) -> str:
        found = self.hoisted.get((parent, key))
        if found is None:
            found = self.hoisted[(parent, key)] = f"_h{len(self.hoisted)}"
            self.hoisted_names.add(found)
            if parent != "ctx":
                self.views_needed.add(parent)
        return found

    def prologue(self) -> list[str]:
        lines = []
        for (parent, key), name in self.hoisted.items():
            source = "ctx" if parent == "ctx" else f"_v{parent}"
            lines.append(f"    {name} = {source}.get({key!r})")
            if name in self.views_needed:
                lines.append(f"    _v{name} = {name} if type({name}) is dict else _EMPTY")
        return lines

    def _n_subexpression(self, node: dict[str, Any], source: str) -> str:
        for child in node["children"]:
            source = self.node(child, source)
        return source

    _n_index_expression = _n_subexpression
    _n_pipe = _n_subexpression

    def _n_index(self, node: dict[str, Any], source: str) -> str:
        index = node["value"]
        name = self.temp()
        bound = f"{index} < len({name})" if index >= 0 else f"{-index} <= len({name})"
        return f"({name}[{index}] if type({name} := {source}) is list and {bound} else None)"

    def _n_literal(self, node: dict[str, Any], source: str) -> str:
        return self.literal(node["value"])

    def _n_current(self, node: dict[str, Any], source: str) -> str:
        return source

    _n_identity = _n_current

    def _n_comparator(self, node: dict[str, Any], source: str) -> str:
        left_node, right_node = node["children"]
        op = node["value"]

        def build(name: str) -> str:
            left, right = self.node(left_node, name), self.node(right_node, name)
            if op in ("eq", "ne"):
                literal = next(
                    (c["value"] for c in (left_node, right_node) if c["type"] == "literal"), _MISSING
                )
                if isinstance(literal, str):
                    test = f"({left} == {right})"  # a string never equals 0/1/true/false
                elif literal is None:
                    other = right if left_node["type"] == "literal" else left
                    test = f"({other} is None)"
                else:
                    test = f"_eq({left}, {right})"
                return test if op == "eq" else f"(not {test})"
            return f"{self.const(_ordering(op))}({left}, {right})"

        return self.named(source, build)

    def _n_and_expression(self, node: dict[str, Any], source: str) -> str:
        left_node, right_node = node["children"]

        def build(name: str) -> str:
            matched = self.temp()
            left, right = self.node(left_node, name), self.node(right_node, name)
            return f"({matched} if {self._falsy_bind(matched, left)} else {right})"

        return self.named(source, build)

    def _n_or_expression(self, node: dict[str, Any], source: str) -> str:
        left_node, right_node = node["children"]

        def build(name: str) -> str:
            matched = self.temp()
            left, right = self.node(left_node, name), self.node(right_node, name)
            return f"({right} if {self._falsy_bind(matched, left)} else {matched})"

        return self.named(source, build)

    def _falsy_bind(self, name: str, value: str) -> str:
        return (
            f"(({name} := {value}) is None or {name} is False or (type({name}) in _EMPTYABLE and not {name}))"
        )

    def _n_not_expression(self, node: dict[str, Any], source: str) -> str:
        inner = self.node(node["children"][0], source)
        name = self.temp()
        return f"(False if type({name} := {inner}) in _NUMBERS and {name} == 0 else not {name})"

    def _n_function_expression(self, node: dict[str, Any], source: str) -> str:
        name = node["value"]
        spec = self.functions.FUNCTION_TABLE.get(name)
        if spec is None:
            raise Unsupported(f"unknown function {name}")
        children = node["children"]
        if name == "lookup" and 2 <= len(children) <= 3 and children[0]["type"] == "literal":
            return self._lookup(children, source)
        if name == "to_string" and len(children) == 1:
            value = self.temp()
            inner = self.node(children[0], source)
            return f"({value} if type({value} := {inner}) is str else _to_string({value}))"
        call = self.const(checked_function(self.functions, name, len(children)))

        def build(bound: str) -> str:
            return f"{call}({', '.join(self.node(c, bound) for c in children)})"

        return self.named(source, build) if len(children) > 1 else build(source)

    def _lookup(self, children: list[dict[str, Any]], source: str) -> str:
        table_name = children[0]["value"]
        entries = self.functions.lookups.get(table_name) if isinstance(table_name, str) else None
        if entries is None:
            raise Unsupported("lookup table")
        table = self.const(entries)

        def build(bound: str) -> str:
            key, found = self.temp(), self.temp()
            key_code = self.node(children[1], bound)
            fallback = self.node(children[2], bound) if len(children) == 3 else "_fail()"
            get = (
                f"{table}.get({key} if type({key} := {key_code}) is str"
                f" else str({key}) if type({key}) is int else _lookup_key({key}), _MISSING)"
            )
            return f"({found} if ({found} := {get}) is not _MISSING else {fallback})"

        return self.named(source, build)

    def _n_multi_select_dict(self, node: dict[str, Any], source: str) -> str:
        def build(name: str) -> str:
            pairs = ", ".join(
                f"{c['value']!r}: {self.node(c['children'][0], name)}" for c in node["children"]
            )
            return f"(None if {name} is None else {{{pairs}}})"

        return self.named(source, build)

    def _n_multi_select_list(self, node: dict[str, Any], source: str) -> str:
        def build(name: str) -> str:
            items = ", ".join(self.node(c, name) for c in node["children"])
            return f"(None if {name} is None else [{items}])"

        return self.named(source, build)

    # -- templates -------------------------------------------------------------------------------

    def expression(self, text: str) -> str:
        return self.node(jmespath.compile(text).parsed, "ctx")

    def template(self, value: Any) -> tuple[str, bool]:
        """(Python expression, may be None) for a template value."""
        if isinstance(value, dict):
            return self._dict(value), False
        if isinstance(value, list):
            return "[" + ", ".join(self.template(v)[0] for v in value) + "]", False
        if isinstance(value, str):
            parts = split_template(value)
            if parts is None:
                return repr(value), False
            if len(parts) == 1 and isinstance(parts[0], tuple):
                result = self.temp()
                code = self.expression(parts[0][0])
                return f"({result} if type({result} := {code}) in _SCALARS else _finite({result}))", True
            pieces = []
            for part in parts:
                if isinstance(part, str):
                    pieces.append(repr(part))
                else:
                    result = self.temp()
                    code = self.expression(part[0])
                    pieces.append(f"({result} if type({result} := {code}) is str else _text({result}))")
            return "(" + " + ".join(pieces) + ")", False
        return self.literal(value), False

    def _dict(self, value: dict[str, Any]) -> str:
        items, omittable = [], []
        for key, item in value.items():
            code, may_be_none = self.template(item)
            items.append(f"{key!r}: {code}")
            if may_be_none:
                omittable.append(key)
        literal = "{" + ", ".join(items) + "}"
        if not omittable:
            return literal
        name = self.temp()
        self.lines.append(f"    {name} = {literal}")
        for key in omittable:
            self.lines.append(f"    if {name}[{key!r}] is None: del {name}[{key!r}]")
        return name


def _namespace(constants: list[Any]) -> dict[str, Any]:
    return {
        "__builtins__": {"type": type, "len": len, "dict": dict, "list": list, "str": str, "int": int},
        "_K": tuple(constants),
        "_MISSING": _MISSING,
        "_EMPTY": _EMPTY,
        "_EMPTYABLE": frozenset((str, list, dict)),
        "_NUMBERS": frozenset((int, float)),
        "_SCALARS": _SCALARS,
        "_eq": _equals,
        "_fail": _fail,
        "_text": _text,
        "_finite": _finite,
        "_loads": json.loads,
        "_lookup_key": lookup_key,
        "_to_string": to_string,
    }


def _build(source: str, name: str, constants: list[Any], label: str) -> Callable[[Any], Any]:
    namespace = _namespace(constants)
    # The source is generated above from parsed expressions; mapping text appears in it only
    # through repr() or the constants tuple (see the module docstring).
    exec(compile(source, f"<mapping {label}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


def compile_body(body: Any, functions: BridgeFunctions, label: str) -> Callable[[Any], Any] | None:
    """The body template as one function of the context, or None when it cannot take this path."""
    generator = _Generator(functions)
    try:
        result, _ = generator.template(body)
    except (Unsupported, jp_exceptions.JMESPathError, ValueError):
        return None
    source = "\n".join(
        ["def _render(ctx):", *generator.prologue(), *generator.lines, f"    return {result}", ""]
    )
    return _build(source, "_render", generator.constants, label)


def compile_when(expression: str, functions: BridgeFunctions, label: str) -> Callable[[Any], bool] | None:
    """`when` as one function returning a bool, or None when it cannot take this path."""
    generator = _Generator(functions)
    try:
        code = generator.expression(expression)
    except (Unsupported, jp_exceptions.JMESPathError, ValueError):
        return None
    matched = generator.temp()
    source = "\n".join(
        [
            "def _when(ctx):",
            *generator.prologue(),
            *generator.lines,
            f"    {matched} = {code}",
            f"    return not {_falsy(matched)}",
            "",
        ]
    )
    return _build(source, "_when", generator.constants, label)


def compile_value(expression: str, functions: BridgeFunctions) -> Callable[[Any], Any] | None:
    """One expression as a generated function of the context (tests compare it with jmespath)."""
    generator = _Generator(functions)
    try:
        code = generator.expression(expression)
    except (Unsupported, jp_exceptions.JMESPathError, ValueError):
        return None
    source = "\n".join(
        ["def _value(ctx):", *generator.prologue(), *generator.lines, f"    return {code}", ""]
    )
    return _build(source, "_value", generator.constants, "expression")
