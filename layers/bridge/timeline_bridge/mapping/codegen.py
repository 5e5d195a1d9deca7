"""The fast path: a mapping's body and `when` as one generated Python function each.

The closures of `expressions.Compiler` are exact but pay a Python call per AST node. Here the same
AST is translated into a single Python expression per `${{ }}` (field access inlined as dict
lookups, `&&`/`||` as conditional expressions), and the body template into one function that
builds the body as a dict literal. The function is compiled once, when the mapping loads.

Every plain path from the context is read once per call, at the top of the function, and shared
by all the expressions that use it (`event.data` is looked up once however many fields below it
are used); a function call that appears more than once (`lookup('stage', event.data.stage_id)`)
is computed once too. What each value can be is worked out while generating (a text template is
always a string, `to_string()` too, `a == 'x'` always a boolean), so the checks a value needs
only where it can vary.

`compile_checked_body` goes one step further: it also checks the rendered body against the
mapping's `required:` fields and the target contract planned at load (`contracts.ContractPlan`),
on the values as they are computed, before they are put in the body. Checks are never the
verdict there: any value they do not accept makes the function give up, and the engine renders
and checks again the exact way, which raises the precise error (or accepts the body).

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
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jmespath
from jmespath import exceptions as jp_exceptions

from timeline_bridge.mapping import contracts
from timeline_bridge.mapping.expressions import (
    BridgeFunctions,
    Compiler,
    _equals,
    _is_comparable,
    checked_function,
    has_non_finite,
    lookup_key,
    split_template,
    stringify,
    to_string,
    to_text,
)

_MISSING = object()
_NONE = type(None)
_SCALARS = frozenset((str, int, bool, _NONE))
_EMPTY: dict[str, Any] = {}  # read-only stand-in for a root that is not an object

# What a value can be at run time: Python types, `object` standing for any other JSON value.
Types = frozenset[type]
ANY: Types = frozenset({object, _NONE})
Path = tuple[str | int, ...]


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
    if has_non_finite(value):
        raise _Fallback
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


def _is_blank(value: Any) -> bool:
    """What `required:` refuses: null, [], {}, or a string of only whitespace."""
    return value is None or value == [] or value == {} or (type(value) is str and not value.strip())


@dataclass
class _Val:
    """A generated value: its Python expression and what it can be at run time."""

    code: str
    types: Types
    constant: Any = _MISSING  # the value itself, when it never changes
    text: tuple[str, ...] | None = None  # a text template's constant parts (the result is a str)
    prefix: str = ""  # the constant text a text template starts with
    sure_keys: frozenset[str] = frozenset()  # an object template's keys that are never left out

    @property
    def may_be_none(self) -> bool:
        return _NONE in self.types


class _Generator:
    def __init__(
        self,
        functions: BridgeFunctions,
        shared: Iterable[str] = (),
        checks: Mapping[Any, list[Any]] | None = None,
        required: Iterable[Path] = (),
        strict: Iterable[Path] = (),
    ) -> None:
        self.functions = functions
        self.closures = Compiler(functions)
        self.constants: list[Any] = []
        self.count = 0
        self.lines: list[str] = []
        self.types: dict[str, Types] = {}  # generated expression -> what it can be
        # Plain paths from the context, read once per call: `_hN` is the value, `_v_hN` the same
        # when it is an object, else an empty one (so reading a field below needs no type check).
        self.hoisted: dict[tuple[str, str], str] = {}
        self.hoisted_names: set[str] = set()
        self.views_needed: set[str] = set()
        # Function calls on the context met more than once (found by a first pass): computed once,
        # after the paths, in `shared_lines`.
        self.shared = frozenset(shared)
        self.shared_names: dict[str, str] = {}
        self.shared_lines: list[str] = []
        self.calls: dict[str, list[int]] = {}  # call key -> [uses, unconditional uses]
        self.conditional = 0  # > 0 while generating code that runs only on some paths
        # Contract checks by body path (ContractPlan), `required:` paths, and the fields the
        # bridge sets itself from the job key (a string, or the exact path decides).
        self.checks = dict(checks or {})
        self.required = frozenset(required)
        self.strict = frozenset(strict)

    # -- helpers ---------------------------------------------------------------------------------

    def temp(self) -> str:
        self.count += 1
        return f"_t{self.count}"

    def const(self, value: Any) -> str:
        self.constants.append(value)
        return f"_K[{len(self.constants) - 1}]"

    def typed(self, code: str, types: Types) -> str:
        self.types[code] = types
        return code

    def type_of(self, code: str) -> Types:
        return self.types.get(code, ANY)

    def literal(self, value: Any) -> str:
        if value is None or isinstance(value, bool | int | str):
            return self.typed(repr(value), frozenset({type(value)}))
        if isinstance(value, float) and math.isfinite(value):
            return self.typed(self.const(value), frozenset({float}))
        if isinstance(value, dict | list):
            return self.typed(f"_loads({self.const(json.dumps(value))})", frozenset({type(value)}))
        raise Unsupported(f"literal {value!r}")

    def named(self, source: str, build: Callable[[str], str]) -> str:
        """`build(name)` with `source` evaluated once, first, and bound to `name`."""
        if source.isidentifier():
            return build(source)
        name = self.temp()
        return f"({build(name)} if (({name} := {source}) is {name}) else None)"

    def bind(self, code: str, types: Types) -> str:
        """Evaluate `code` in its own statement; the name holding the value."""
        if code.isidentifier() or _CONSTANT_REF.fullmatch(code):
            return code
        name = self.temp()
        self.lines.append(f"    {name} = {code}")
        return self.typed(name, types)

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
        return lines + self.shared_lines

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

        code = self.named(source, build)
        # == and != always give a boolean (JSON values compare without raising); <, > may give null.
        return self.typed(code, _BOOL if op in ("eq", "ne") else _BOOL | _NULL)

    def _n_and_expression(self, node: dict[str, Any], source: str) -> str:
        return self._logical(node, source, "and")

    def _n_or_expression(self, node: dict[str, Any], source: str) -> str:
        return self._logical(node, source, "or")

    def _logical(self, node: dict[str, Any], source: str, op: str) -> str:
        left_node, right_node = node["children"]
        kinds: list[Types] = []

        def build(name: str) -> str:
            left = self.node(left_node, name)
            self.conditional += 1
            try:
                right = self.node(right_node, name)
            finally:
                self.conditional -= 1
            left_type, right_type = self.type_of(left), self.type_of(right)
            # `a || b` is a only when a is truthy (never null); `a && b` may be either.
            kinds.extend((left_type - _NULL if op == "or" else left_type, right_type))
            if left_type == _BOOL:
                # A boolean left side: Python's own `and`/`or` pick the operand JMESPath picks.
                return f"({left} {op} {right})"
            matched = self.temp()
            if op == "and":
                return f"({matched} if {self._falsy_bind(matched, left)} else {right})"
            return f"({right} if {self._falsy_bind(matched, left)} else {matched})"

        code = self.named(source, build)
        return self.typed(code, frozenset().union(*kinds))

    def _falsy_bind(self, name: str, value: str) -> str:
        return (
            f"(({name} := {value}) is None or {name} is False or (type({name}) in _EMPTYABLE and not {name}))"
        )

    def _n_not_expression(self, node: dict[str, Any], source: str) -> str:
        inner = self.node(node["children"][0], source)
        if self.type_of(inner) == _BOOL:
            return self.typed(f"(not {inner})", _BOOL)
        name = self.temp()
        return self.typed(
            f"(False if type({name} := {inner}) in _NUMBERS and {name} == 0 else not {name})", _BOOL
        )

    def _n_function_expression(self, node: dict[str, Any], source: str) -> str:
        return self._shared_call(node, source, self._call)

    def _call(self, node: dict[str, Any], source: str) -> str:
        name = node["value"]
        spec = self.functions.FUNCTION_TABLE.get(name)
        if spec is None:
            raise Unsupported(f"unknown function {name}")
        children = node["children"]
        if name == "lookup" and 2 <= len(children) <= 3 and children[0]["type"] == "literal":
            return self._lookup(children, source)
        returns = _RETURNS.get(name, ANY)
        if name == "to_string" and len(children) == 1:
            value = self.temp()
            inner = self.node(children[0], source)
            if self.type_of(inner) == _STR:
                return inner
            return self.typed(f"({value} if type({value} := {inner}) is str else _to_string({value}))", _STR)
        if name == "to_text" and len(children) == 1:
            value = self.temp()
            inner = self.node(children[0], source)
            kind = self.type_of(inner)
            if kind <= _STR | _NULL:
                return inner
            # Integers (epoch milliseconds, ids) are spelled here; anything else as to_text does.
            code = (
                f"({value} if type({value} := {inner}) is str"
                f" else str({value}) if type({value}) is int else _to_text({value}))"
            )
            return self.typed(code, (kind - frozenset({int, bool})) | _STR)
        call = self.const(checked_function(self.functions, name, len(children)))

        def build(bound: str) -> str:
            return f"{call}({', '.join(self.node(c, bound) for c in children)})"

        code = self.named(source, build) if len(children) > 1 else build(source)
        return self.typed(code, returns)

    def _shared_call(
        self, node: dict[str, Any], source: str, generate: Callable[[dict[str, Any], str], str]
    ) -> str:
        """A call on the context: computed once per render when it is used more than once."""
        if source != "ctx":
            return generate(node, source)
        key = json.dumps(node, sort_keys=True)
        uses = self.calls.setdefault(key, [0, 0])
        uses[0] += 1
        uses[1] += not self.conditional
        if key not in self.shared:
            return generate(node, source)
        name = self.shared_names.get(key)
        if name is None:
            saved, self.conditional = self.conditional, 0
            try:
                code = generate(node, source)
            finally:
                self.conditional = saved
            name = self.shared_names[key] = f"_c{len(self.shared_names)}"
            self.shared_lines.append(f"    {name} = {code}")
            self.typed(name, self.type_of(code))
        return name

    def shareable(self) -> set[str]:
        """Calls met more than once, at least once on every path (safe to compute up front)."""
        return {key for key, (uses, always) in self.calls.items() if uses > 1 and always}

    def _lookup(self, children: list[dict[str, Any]], source: str) -> str:
        table_name = children[0]["value"]
        entries = self.functions.lookups.get(table_name) if isinstance(table_name, str) else None
        if entries is None:
            raise Unsupported("lookup table")
        table = self.const(entries)
        kinds: list[Types] = [frozenset(type(v) for v in entries.values())]

        def build(bound: str) -> str:
            key, found = self.temp(), self.temp()
            key_code = self.node(children[1], bound)
            if len(children) == 3:
                self.conditional += 1
                try:
                    fallback = self.node(children[2], bound)
                finally:
                    self.conditional -= 1
                kinds.append(self.type_of(fallback))
            else:
                fallback = "_fail()"
            key_type = self.type_of(key_code)
            if key_type == _STR:
                key_expr = key_code
            else:
                key_expr = (
                    f"{key} if type({key} := {key_code}) is str"
                    f" else str({key}) if type({key}) is int else _lookup_key({key})"
                )
            get = f"{table}.get({key_expr}, _MISSING)"
            return f"({found} if ({found} := {get}) is not _MISSING else {fallback})"

        code = self.named(source, build)
        return self.typed(code, frozenset().union(*kinds))

    def _n_multi_select_dict(self, node: dict[str, Any], source: str) -> str:
        def build(name: str) -> str:
            self.conditional += 1
            try:
                pairs = ", ".join(
                    f"{c['value']!r}: {self.node(c['children'][0], name)}" for c in node["children"]
                )
            finally:
                self.conditional -= 1
            return f"(None if {name} is None else {{{pairs}}})"

        return self.typed(self.named(source, build), frozenset({dict, _NONE}))

    def _n_multi_select_list(self, node: dict[str, Any], source: str) -> str:
        def build(name: str) -> str:
            self.conditional += 1
            try:
                items = ", ".join(self.node(c, name) for c in node["children"])
            finally:
                self.conditional -= 1
            return f"(None if {name} is None else [{items}])"

        return self.typed(self.named(source, build), frozenset({list, _NONE}))

    # -- templates -------------------------------------------------------------------------------

    def expression(self, text: str) -> str:
        return self.node(jmespath.compile(text).parsed, "ctx")

    def template(self, value: Any, path: Path = ()) -> _Val:
        """The generated value of a template (dict, list, string template or constant)."""
        if isinstance(value, dict):
            val = self._dict(value, path)
        elif isinstance(value, list):
            items = [self.template(v, (*path, i)) for i, v in enumerate(value)]
            constant = (
                [v.constant for v in items] if all(v.constant is not _MISSING for v in items) else _MISSING
            )
            val = _Val("[" + ", ".join(v.code for v in items) + "]", _LIST, constant)
        elif isinstance(value, str):
            val = self._string(value, path)
        else:
            val = _Val(self.literal(value), frozenset({type(value)}), value)
        return self._checked(val, path)

    def _string(self, value: str, path: Path) -> _Val:
        parts = split_template(value)
        if parts is None:
            return _Val(repr(value), _STR, value)
        if len(parts) == 1 and isinstance(parts[0], tuple):
            code = self.expression(parts[0][0])
            kind = self.type_of(code)
            result = self.temp()
            if path in self.strict:
                # A field the bridge sets from the job key: a string, or the exact path decides.
                return _Val(f"({result} if type({result} := {code}) is str else _fail())", _STR)
            if kind <= _SCALARS or self.scalar_checked(path):
                return _Val(code, kind)  # no NaN or Infinity can hide in it (or get past the check)
            return _Val(f"({result} if type({result} := {code}) in _SCALARS else _finite({result}))", kind)
        pieces, constants = [], []
        for part in parts:
            if isinstance(part, str):
                pieces.append(repr(part))
                constants.append(part)
                continue
            code = self.expression(part[0])
            kind = self.type_of(code)
            result = self.temp()
            if kind == _STR:
                pieces.append(code)
            elif kind <= _STR | _INT:
                pieces.append(f"({result} if type({result} := {code}) is str else str({result}))")
            else:
                pieces.append(
                    f"({result} if type({result} := {code}) is str"
                    f" else str({result}) if type({result}) is int else _text({result}))"
                )
        prefix = parts[0] if isinstance(parts[0], str) else ""
        return _Val("(" + " + ".join(pieces) + ")", _STR, text=tuple(constants), prefix=prefix)

    def _dict(self, value: dict[str, Any], path: Path) -> _Val:
        items, omittable = [], []
        constant: Any = {}
        for key, item in value.items():
            val = self.template(item, (*path, key))
            if val.constant is _MISSING:
                constant = _MISSING
                if val.may_be_none:
                    # A whole `${{ }}` that is null leaves the field out.
                    val = _Val(self.bind(val.code, val.types), val.types)
                    omittable.append((key, val.code))
            elif constant is not _MISSING:
                constant[key] = val.constant
            items.append(f"{key!r}: {val.code}")
        literal = "{" + ", ".join(items) + "}"
        sure = frozenset(value) - {key for key, _ in omittable}
        if not omittable:
            return _Val(literal, _DICT, constant, sure_keys=sure)
        name = self.temp()
        self.lines.append(f"    {name} = {literal}")
        for key, held in omittable:
            self.lines.append(f"    if {held} is None: del {name}[{key!r}]")
        return _Val(name, _DICT, sure_keys=sure)

    # -- checks ----------------------------------------------------------------------------------

    def _checked(self, val: _Val, path: Path) -> _Val:
        """Emit the contract checks and the `required:` test of the value at `path`; the value,
        with what the checks leave it able to be."""
        checks = self.checks.pop(path, ())
        required = path in self.required
        if not checks and not required:
            return val
        self.required = self.required - {path}
        if val.constant is not _MISSING:
            # Constants were checked against the contract when the mapping loaded.
            if required and _is_blank(val.constant):
                self.lines.append("    _fail()")
            return val
        name = self.bind(val.code, val.types)
        kinds = val.types
        guard = f"{name} is not None and " if val.may_be_none else ""
        presence = []
        for check in checks:
            if isinstance(check, contracts.PresenceCheck):
                presence.append(check)
            elif isinstance(check, contracts.LeafCheck) and check.tests is not None:
                tests = self._needed(check.tests, val)
                if tests:
                    condition = contracts.test_code(tests, name, self.const)
                    self.lines.append(f"    if {guard}not ({condition}): _fail()")
                for op, operand in check.tests:
                    if op == "type":  # past the test, the value is null or of these types
                        kinds = (kinds & _NULL) | (operand if object in kinds else kinds & operand)
            else:
                call = f"{self.const(check)}({name})"
                self.lines.append(f"    if {name} is not None: {call}" if guard else f"    {call}")
        if required:
            self._required(name, kinds, val.text)
            kinds = kinds - _NULL
        for check in presence:
            if not _presence_holds(check, val.sure_keys):
                self.lines.append(f"    if {check.failure_code(name)}: _fail()")
        return _Val(name, kinds, text=val.text, prefix=val.prefix, sure_keys=val.sure_keys)

    def _required(self, name: str, kinds: Types, text: tuple[str, ...] | None) -> None:
        if text is not None:
            if not any(part.strip() for part in text):
                self.lines.append(f"    if not {name}.strip(): _fail()")
            return  # text with a visible constant part is never blank
        tests = []
        if _NONE in kinds:
            tests.append(f"{name} is None")
        if list in kinds or object in kinds:
            tests.append(f"{name} == []")
        if dict in kinds or object in kinds:
            tests.append(f"{name} == {{}}")
        if kinds - _NULL == _STR:
            tests.append(f"not {name}.strip()")
        elif str in kinds or object in kinds:
            tests.append(f"(type({name}) is str and not {name}.strip())")
        if tests:
            self.lines.append(f"    if {' or '.join(tests)}: _fail()")

    def scalar_checked(self, path: Path) -> bool:
        """The contract lets only scalars through at `path` (the NaN guard would be redundant)."""
        return any(
            isinstance(check, contracts.LeafCheck)
            and check.tests is not None
            and any(op == "type" and operand <= _SCALARS for op, operand in check.tests)
            for check in self.checks.get(path, ())
        )

    def _needed(self, tests: list[contracts.Test], val: _Val) -> list[contracts.Test]:
        """The tests the value can fail (its type is known, its text has constant parts)."""
        kinds = val.types - _NULL
        needed: list[contracts.Test] = []
        for op, operand in tests:
            if op == "type" and kinds <= operand:
                continue
            if op == "min" and val.text is not None and sum(map(len, val.text)) >= operand:
                continue
            if op == "match" and operand.pattern == contracts.URI_PATTERN and _uri_start(val):
                needed.append(("uri_after_scheme", operand))  # the rest only has to have no whitespace
                continue
            needed.append((op, operand))
        return needed

    def unused(self) -> bool:
        """Checks or required fields left with no value to check (not modelled: no fast path)."""
        return bool(self.checks or self.required)


def _presence_holds(check: contracts.PresenceCheck, present: frozenset[str]) -> bool:
    """The presence check passes whenever these keys are there."""
    if any(key not in present for key in check.required):
        return False
    if check.branches and not any(all(k in present for k in branch) for branch in check.branches):
        return False
    return len(present) >= check.least


def _uri_start(val: _Val) -> bool:
    """A text template whose constant start is a URI already (`https://app.example.com/`): with
    any text after it, the whole is a URI exactly when it has no whitespace."""
    return val.text is not None and bool(val.prefix) and _URI.match(val.prefix) is not None


_URI = re.compile(contracts.URI_PATTERN)
_CONSTANT_REF = re.compile(r"_K\[\d+\]")
_NULL = frozenset({_NONE})
_BOOL = frozenset({bool})
_STR = frozenset({str})
_INT = frozenset({int})
_DICT = frozenset({dict})
_LIST = frozenset({list})
# What the functions give back, where it is one thing (jmespath's built-ins and the bridge's own).
_RETURNS: dict[str, frozenset[type]] = {
    "to_string": _STR,
    "join": _STR,
    "type": _STR,
    "length": _INT,
    "contains": _BOOL,
    "starts_with": _BOOL,
    "ends_with": _BOOL,
    "lower": _STR | _NULL,
    "upper": _STR | _NULL,
    "uuid5": _STR | _NULL,
    "to_iso8601": _STR | _NULL,
    "to_epoch_ms": _INT | _NULL,
}


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
        "_to_text": to_text,
    }


def _build(source: str, name: str, constants: list[Any], label: str) -> Callable[[Any], Any]:
    namespace = _namespace(constants)
    # The source is generated above from parsed expressions; mapping text appears in it only
    # through repr() or the constants tuple (see the module docstring).
    exec(compile(source, f"<mapping {label}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


_REFUSED = (Unsupported, jp_exceptions.JMESPathError, ValueError)


def _generate(make: Callable[..., _Generator], run: Callable[[_Generator], str]) -> tuple[_Generator, str]:
    """Two passes: the first finds the calls worth computing once, the second shares them."""
    first = make(())
    run(first)
    generator = make(first.shareable())
    return generator, run(generator)


def compile_body(body: Any, functions: BridgeFunctions, label: str) -> Callable[[Any], Any] | None:
    """The body template as one function of the context, or None when it cannot take this path."""
    try:
        generator, result = _generate(
            lambda shared: _Generator(functions, shared), lambda g: g.template(body).code
        )
    except _REFUSED:
        return None
    source = "\n".join(
        ["def _render(ctx):", *generator.prologue(), *generator.lines, f"    return {result}", ""]
    )
    return _build(source, "_render", generator.constants, label)


def compile_checked_body(
    body: dict[str, Any],
    functions: BridgeFunctions,
    label: str,
    plan: contracts.ContractPlan,
    required: Iterable[tuple[str, ...]] = (),
    bridge_fields: Iterable[tuple[str, ...]] = (),
) -> Callable[[Any], Any] | None:
    """The body template rendered and checked in one function: `required:` fields and the planned
    target contract. It raises as soon as a value is not plainly fine; the engine then renders and
    checks the exact way. `bridge_fields` are the fields the bridge sets from the job key (always a
    string). None when the template or the plan cannot take this path."""
    required = tuple(required)
    bridge_fields = tuple(bridge_fields)

    def make(shared: Iterable[str]) -> _Generator:
        return _Generator(functions, shared, plan.by_path(), required, bridge_fields)

    try:
        generator, result = _generate(make, lambda g: g.template(body).code)
    except _REFUSED:
        return None
    if generator.unused():
        return None
    source = "\n".join(
        ["def _render(ctx):", *generator.prologue(), *generator.lines, f"    return {result}", ""]
    )
    return _build(source, "_render", generator.constants, label)


def compile_when(expression: str, functions: BridgeFunctions, label: str) -> Callable[[Any], bool] | None:
    """`when` as one function returning a bool, or None when it cannot take this path."""
    try:
        generator, code = _generate(
            lambda shared: _Generator(functions, shared), lambda g: g.expression(expression)
        )
    except _REFUSED:
        return None
    if generator.type_of(code) == _BOOL:
        result = [f"    return {code}"]
    else:
        matched = generator.temp()
        result = [f"    {matched} = {code}", f"    return not {_falsy(matched)}"]
    source = "\n".join(["def _when(ctx):", *generator.prologue(), *generator.lines, *result, ""])
    return _build(source, "_when", generator.constants, label)


def compile_value(expression: str, functions: BridgeFunctions) -> Callable[[Any], Any] | None:
    """One expression as a generated function of the context (tests compare it with jmespath)."""
    try:
        generator, code = _generate(
            lambda shared: _Generator(functions, shared), lambda g: g.expression(expression)
        )
    except _REFUSED:
        return None
    source = "\n".join(
        ["def _value(ctx):", *generator.prologue(), *generator.lines, f"    return {code}", ""]
    )
    return _build(source, "_value", generator.constants, "expression")
