"""JMESPath for mapping files: the extra functions, `${{ }}` templates, and expressions compiled once.

Every expression is parsed once, when its mapping loads, and evaluated by jmespath's own
interpreter with the bridge's functions; plain paths (`event.objectId`, `event.actions[0].value`)
are read by direct lookups instead, which give what the interpreter gives. Nothing here evaluates
code: JMESPath only.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import jmespath
from jmespath import exceptions as jp_exceptions
from jmespath import functions as jp_functions
from jmespath import visitor as jp_visitor

from timeline_bridge.keys import JOB_NAMESPACE

Getter = Callable[[Any], Any]

# Values >= 10^11 are epoch milliseconds (10^11 s is the year 5138; 10^11 ms is 1973).
MS_THRESHOLD = 10**11
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMERIC = re.compile(r"^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)\s*$")


class ExpressionError(ValueError):
    """An expression could not be evaluated for this event (bad time value, unknown table, ...)."""


# --- time values --------------------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """ISO 8601, epoch seconds or milliseconds (number or numeric string), Slack's "1548426417.840180".

    None stays None so `default()` can supply a fallback; anything else unreadable raises.
    """
    if value is None:
        return None
    if type(value) is int:  # the common case (HubSpot occurredAt): no Decimal needed
        return _EPOCH + timedelta(milliseconds=_epoch_millis(value, value))
    if isinstance(value, bool):
        raise ExpressionError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        return _from_epoch(number, value)
    if isinstance(value, str):
        text = value.strip()
        if _NUMERIC.match(text):
            try:
                return _from_epoch(Decimal(text), value)
            except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
                raise ExpressionError(f"not a time: {value!r}") from exc
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ExpressionError(f"not a time: {value[:60]!r}") from exc
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:  # the offset moves it before year 1 or past 9999 in UTC
            raise ExpressionError(f"time out of range: {value[:60]!r}") from exc
    raise ExpressionError(f"not a time: {_type_name(value)}")


def _from_epoch(number: Decimal, original: Any) -> datetime:
    if not number.is_finite():
        raise ExpressionError(f"not a time: {original!r}")
    return _EPOCH + timedelta(milliseconds=_epoch_millis(number, original))


# The range a datetime can hold, in epoch milliseconds (years 1 to 9999).
_MIN_MS = -62_135_596_800_000
_MAX_MS = 253_402_300_799_999


def _epoch_millis(value: int | Decimal, original: Any) -> int:
    """An epoch time (seconds, or milliseconds from 10^11) in whole milliseconds, range-checked."""
    millis = int(value * 1000 if -MS_THRESHOLD < value < MS_THRESHOLD else value)
    if not _MIN_MS <= millis <= _MAX_MS:
        raise ExpressionError(f"time out of range: {original!r}")
    return millis


def epoch_ms(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def iso8601(moment: datetime) -> str:
    """UTC, `Z`, milliseconds only when there are any: `2019-01-25T14:26:57.840Z`."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    millis = moment.microsecond // 1000
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def has_non_finite(value: Any) -> bool:
    """A NaN or Infinity anywhere inside a container (iterative: any depth)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float and not math.isfinite(item):
            return True
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    return False


def _type_name(value: Any) -> str:
    return jp_functions.TYPES_MAP.get(type(value).__name__, type(value).__name__)


def to_text(value: Any) -> Any:
    """A number or boolean as an API that takes strings spells it (3, 2.5, 1200.0, true → "3",
    "2.5", "1200", "true"). Anything else is given back as it is: null (the field is left out),
    text, objects, arrays, NaN and Infinity (for the contract or the JSON check to refuse)."""
    kind = type(value)
    if kind is str or value is None or (kind is float and not math.isfinite(value)):
        return value
    text = lookup_key(value)
    return value if text is None else text


def lookup_key(key: Any) -> str | None:
    """Table keys are strings: numbers and booleans are looked up by their JSON text (3 → "3")."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return str(int(key)) if key.is_integer() else repr(key)
    return None


MAX_DECIMALS = 10


def format_number(value: Any, decimals: Any) -> str | None:
    """A number as people read amounts: rounded half up (as money is) to `decimals` places, with
    thousands separated by commas. None for null; ExpressionError for text that is not a number."""
    if value is None:
        return None
    if not _is_whole(decimals):
        raise ExpressionError(f"format_number: decimals must be a whole number, not {decimals!r}")
    places = int(decimals)
    if not 0 <= places <= MAX_DECIMALS:
        raise ExpressionError(f"format_number: decimals must be 0 to {MAX_DECIMALS}, not {places}")
    return _formatted(_decimal(value, "format_number"), places, value, "format_number")


def _formatted(number: Decimal, places: int, value: Any, function: str) -> str:
    try:
        rounded = number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the context holds (28)
        raise ExpressionError(f"{function}: {value!r} is too large to format") from None
    return f"{rounded:,.{places}f}"


def _is_whole(value: Any) -> bool:
    return type(value) is int or (type(value) is float and math.isfinite(value) and value.is_integer())


def _decimal(value: Any, function: str) -> Decimal:
    """A number, or a number as text (CRM amounts are strings), as a finite Decimal."""
    try:
        number = None if isinstance(value, bool) else Decimal(str(value).strip())
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ExpressionError(f"{function}: {value!r} is not a number")
    return number


# Currencies whose minor unit is not a hundredth, as Stripe counts them (docs.stripe.com/currencies);
# every other currency is counted in hundredths (cents).
_MINOR_UNIT_PLACES = {
    **dict.fromkeys(["BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"], 0),
    **dict.fromkeys(["PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"], 0),
    **dict.fromkeys(["BHD", "JOD", "KWD", "OMR", "TND"], 3),
}


def minor_units(amount: Any, currency: Any) -> str | None:
    """An amount given in a currency's minor units as people read it: `4200` EUR is `"42.00"`,
    `5000` JPY `"5,000"`. None for null; ExpressionError for a fractional amount or a bad code."""
    if amount is None:
        return None
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isascii() and currency.isalpha()):
        raise ExpressionError(f"minor_units: {currency!r} is not a three-letter currency code")
    number = _decimal(amount, "minor_units")
    if number != number.to_integral_value():
        raise ExpressionError(f"minor_units: {amount!r} is not a whole number of minor units")
    places = _MINOR_UNIT_PLACES.get(currency.upper(), 2)
    return _formatted(number.scaleb(-places), places, amount, "minor_units")


# --- the extra functions ------------------------------------------------------------------------


class BridgeFunctions(jp_functions.Functions):
    """JMESPath's built-ins plus lookup, to_text, to_epoch_ms, to_iso8601, default, lower, upper,
    format_number, minor_units, uuid5."""

    def __init__(self, lookups: dict[str, dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.lookups = lookups or {}

    @jp_functions.signature({"types": ["string"]}, {"types": [], "variadic": True})
    def _func_lookup(self, table: str, *rest: Any) -> Any:
        if len(rest) > 2:
            raise jp_exceptions.ArityError(3, len(rest) + 1, "lookup")
        entries = self.lookups.get(table)
        if entries is None:
            raise ExpressionError(f"lookup table {table!r} is not defined in lookups")
        key = lookup_key(rest[0])
        if key is not None and key in entries:
            return entries[key]
        if len(rest) == 2:
            return rest[1]
        raise ExpressionError(f"lookup({table!r}): no entry for {rest[0]!r} and no default")

    @jp_functions.signature({"types": []})
    def _func_to_text(self, value: Any) -> Any:
        return to_text(value)

    @jp_functions.signature({"types": ["string", "number", "null"]})
    def _func_to_epoch_ms(self, value: Any) -> int | None:
        if type(value) is int:
            return _epoch_millis(value, value)
        moment = parse_time(value)
        return None if moment is None else epoch_ms(moment)

    @jp_functions.signature({"types": ["string", "number", "null"]})
    def _func_to_iso8601(self, value: Any) -> str | None:
        moment = parse_time(value)
        return None if moment is None else iso8601(moment)

    @jp_functions.signature({"types": []}, {"types": []})
    def _func_default(self, value: Any, fallback: Any) -> Any:
        """`value` unless it is null or an empty string."""
        return fallback if value is None or value == "" else value

    @jp_functions.signature({"types": ["string", "null"]})
    def _func_lower(self, value: str | None) -> str | None:
        return None if value is None else value.lower()

    @jp_functions.signature({"types": ["string", "null"]})
    def _func_upper(self, value: str | None) -> str | None:
        return None if value is None else value.upper()

    @jp_functions.signature({"types": ["string", "number", "null"]}, {"types": ["number"]})
    def _func_format_number(self, value: Any, decimals: Any) -> str | None:
        """`value` (a number, or a number as text: CRM amounts are strings) with `decimals` places
        and thousands separated: `format_number('1234.5', 2)` is `"1,234.50"`."""
        return format_number(value, decimals)

    @jp_functions.signature({"types": ["string", "number", "null"]}, {"types": ["string"]})
    def _func_minor_units(self, amount: Any, currency: str) -> str | None:
        """`amount` in `currency`'s minor units (Stripe's, Paddle's cents) as text in major units:
        `minor_units(`4200`, 'eur')` is `"42.00"`."""
        return minor_units(amount, currency)

    @jp_functions.signature({"types": ["string", "number", "null"]})
    def _func_uuid5(self, value: Any) -> str | None:
        """A stable UUID for any text (the bridge's fixed namespace): ids for providers that want UUIDs."""
        if value is None:
            return None
        text = value if isinstance(value, str) else json.dumps(value)
        return str(uuid.uuid5(JOB_NAMESPACE, text))


# --- compiling expressions ----------------------------------------------------------------------


def is_false(value: Any) -> bool:
    """JMESPath falsiness: null, false, "", [] and {}."""
    return value is None or value is False or value == "" or value == [] or value == {}


class _Interpreter(jp_visitor.TreeInterpreter):
    """jmespath's own interpreter, dispatching through a table built once (its own packs *args and
    **kwargs per node), handing out copies of literals: a body must never alias the expression."""

    def __init__(self, options: jmespath.Options) -> None:
        super().__init__(options)
        self._visitors = {name[6:]: getattr(self, name) for name in dir(self) if name.startswith("visit_")}

    def visit(self, node: dict[str, Any], value: Any) -> Any:
        return self._visitors[node["type"]](node, value)

    def visit_literal(self, node: dict[str, Any], value: Any) -> Any:
        literal = node["value"]
        return json.loads(json.dumps(literal)) if isinstance(literal, dict | list) else literal


def _path_getter(path: tuple[str | int, ...]) -> Getter:
    """`a.b[0].c` as direct lookups, a key of an object or an index of an array at each step
    (anything else on the way gives null, as in JMESPath)."""
    if len(path) == 1 and type(path[0]) is str:
        (k0,) = path
        return lambda value: value.get(k0) if type(value) is dict else None

    def get_n(value: Any) -> Any:
        for step in path:
            if isinstance(step, str):
                if type(value) is not dict:
                    return None
                value = value.get(step)
            elif type(value) is list and -len(value) <= step < len(value):
                value = value[step]
            else:
                return None
        return value

    return get_n


def compile_expression(text: str, functions: BridgeFunctions) -> Getter:
    """Parse `text` once; raises jmespath's ParseError/LexerError/... on a bad expression.

    A plain path (`event.objectId`, `event.actions[0].value`: the common case by far) is read by
    direct lookups, and so is each such argument of a function call (called as the interpreter
    calls it, through jmespath's argument checks); everything else is jmespath's own interpreter."""
    parsed = _parsed(text)
    if any(node["type"] == "slice" and node["children"][2] == 0 for node, _ in _nodes(parsed)):
        raise jp_exceptions.JMESPathError("slice step cannot be 0")
    visit = _Interpreter(jmespath.Options(custom_functions=functions)).visit
    call = functions.call_function

    def compile_node(node: dict[str, Any]) -> Getter:
        path = _field_path(node)
        if path is not None:
            return _path_getter(path)
        if node["type"] == "function_expression":
            name, args = node["value"], [compile_node(child) for child in node["children"]]
            return lambda value: call(name, [arg(value) for arg in args])
        return lambda value: visit(node, value)

    return compile_node(parsed)


# Nodes whose children after the first are evaluated against something else than the context.
_RELATIVE_AFTER_FIRST = frozenset(
    {
        "subexpression",
        "index_expression",
        "pipe",
        "projection",
        "value_projection",
        "flatten",
        "filter_projection",
    }
)


def _nodes(node: Any, at_root: bool = True) -> Iterator[tuple[dict[str, Any], bool]]:
    """Every node of an AST, in order, and whether it is evaluated against the context itself (not
    against a projection's or a filter's items, nor inside an `&expression`)."""
    if not isinstance(node, dict):
        return
    yield node, at_root
    kind = node.get("type")
    for i, child in enumerate(node.get("children", ())):
        relative = kind == "expref" or (i > 0 and kind in _RELATIVE_AFTER_FIRST)
        yield from _nodes(child, at_root and not relative)


def _parsed(text: str) -> Any:
    return jmespath.compile(text.strip()).parsed


def function_calls(text: str) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every (function name, argument nodes) in an expression, for load-time checks."""
    return [
        (node["value"], node["children"])
        for node, _ in _nodes(_parsed(text))
        if node.get("type") == "function_expression"
    ]


def _field_path(node: Any) -> tuple[str | int, ...] | None:
    """`a.b[0].c` as ("a", "b", 0, "c"); None for any other node."""
    kind = node.get("type") if isinstance(node, dict) else None
    if kind in ("field", "index"):
        return (node["value"],)
    if kind in ("subexpression", "index_expression"):
        parts: list[str | int] = []
        for child in node["children"]:
            part = _field_path(child)
            if part is None:
                return None
            parts.extend(part)
        return tuple(parts)
    return None


def compared_literals(text: str, path: tuple[str, ...]) -> list[Any]:
    """The literals an expression compares (`==`, `!=`) with the context's field `path`: every `x`
    of `meta.name == 'x'`, for load-time checks. Comparisons inside a projection or a filter are
    about the projected items, not the context, and are left out."""
    found: list[Any] = []
    for node, at_root in _nodes(_parsed(text)):
        if at_root and node.get("type") == "comparator" and node.get("value") in ("eq", "ne"):
            left, right = node["children"]
            for one, other in ((left, right), (right, left)):
                if _field_path(one) == path and other.get("type") == "literal":
                    found.append(other["value"])
    return found


def referenced_roots(text: str) -> set[str]:
    """Top-level names an expression reads from the context (`event`, `meta`, `enrichment`)."""
    return {
        node["value"] for node, at_root in _nodes(_parsed(text)) if at_root and node.get("type") == "field"
    }


# --- `${{ }}` templates --------------------------------------------------------------------------

_OPEN = "${{"
_CLOSE = "}}"


def did_you_mean(name: str, known: Any) -> str:
    """` (did you mean 'x'?)` naming the closest of `known` to a misspelt `name`, or nothing."""
    import difflib

    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def split_template(text: str) -> list[str | tuple[str]] | None:
    """Split `text` into literal strings and `(expression,)` parts; None when it has no `${{`.

    The closing `}}` is the first one after which the expression parses, so JMESPath hashes
    (`{a: b}`) and literals containing braces work. `{{ }}` without `$` is plain text.
    """
    if _OPEN not in text:
        return None
    parts: list[str | tuple[str]] = []
    pos = 0
    while True:
        start = text.find(_OPEN, pos)
        if start < 0:
            break
        if start > pos:
            parts.append(text[pos:start])
        inner_start = start + len(_OPEN)
        end = text.find(_CLOSE, inner_start)
        if end < 0:
            raise jp_exceptions.JMESPathError(f"unclosed ${{{{ at offset {start}")
        first_error: Exception | None = None
        while end >= 0:
            candidate = text[inner_start:end]
            try:
                if not candidate.strip():
                    raise jp_exceptions.EmptyExpressionError()
                jmespath.compile(candidate.strip())
            except jp_exceptions.JMESPathError as exc:
                first_error = first_error or exc
                end = text.find(_CLOSE, end + 1)
                continue
            break
        if end < 0:
            assert first_error is not None
            raise first_error
        parts.append((text[inner_start:end].strip(),))
        pos = end + len(_CLOSE)
    if pos < len(text):
        parts.append(text[pos:])
    return parts


def stringify(value: Any) -> str:
    """How a value reads inside text: strings as they are, everything else as compact JSON."""
    kind = type(value)
    if kind is str:
        return value
    if kind is int:
        return str(value)  # what json.dumps writes, without its machinery
    if kind is bool:
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
