"""Mapping cases: each shipped mapping is tested as data (Benthos-style config tests).

`mappings/<name>.cases.yaml` next to `mappings/<name>.yaml` holds a list of cases:

    - name: negotiation stage
      input: events/hubspot/deal-stage-change.json   # a sample file (project-relative) ...
      expect:
        contains: {description: CRM deal moved to Negotiation stage}
    - name: other property
      input:                                         # ... or an inline envelope
        event_type: deal.propertyChange
        event: {subscriptionType: deal.propertyChange, propertyName: amount}
      expect: {skipped: true}

`expect` is exactly one of: `output` (the exact body), `contains` (a subset of the body),
`skipped` (the mapping does not apply) or `error` (a substring of the MappingError). A case may
also give `enrichment` (what the enrich hook would return) and `index` (which event of a batch).
Any other key is refused with its line, so a misspelt `expected:` never passes unnoticed.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from timeline_bridge.errors import MappingError
from timeline_bridge.mapping.engine import Mapping
from timeline_bridge.mapping.expressions import did_you_mean
from timeline_bridge.mapping.loader import display_path
from timeline_bridge.mapping.yaml_lines import (
    AnchorError,
    DuplicateKeyError,
    dotted,
    line_of,
    load_with_lines,
)
from timeline_bridge.models import Envelope

from timeline_bridge_tools.mapping.samples import envelope_from_dict, envelopes_from_file

EXPECTATIONS = ("output", "contains", "skipped", "error")
CASE_KEYS = ("name", "input", "expect", "enrichment", "index")


class CaseFailure(AssertionError):
    """A case's expectation did not hold; `details` lists each differing field."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        self.details = details or []
        super().__init__("\n  ".join([message, *self.details]))


class CasesFileError(ValueError):
    """A cases file that cannot be read as cases: `file:line: reason`."""

    def __init__(self, path: Path, reason: str, line: int | None = None) -> None:
        self.file, self.line, self.reason = display_path(path), line, reason
        super().__init__(f"{self.file}:{line}: {reason}" if line else f"{self.file}: {reason}")


@dataclass
class Case:
    name: str
    input: Any
    expect: dict[str, Any]
    enrichment: dict[str, Any] = field(default_factory=dict)
    index: int = 0
    line: int | None = None  # where the case starts in its file


def cases_path(mapping_path: Path) -> Path:
    """`mappings/x.yaml` → `mappings/x.cases.yaml`."""
    return mapping_path.with_name(mapping_path.name.rsplit(".", 1)[0] + ".cases.yaml")


def load_cases(path: Path) -> list[Case]:
    """Read a cases file (the YAML of mapping files: no anchors or aliases, no repeated keys);
    raises CasesFileError (a ValueError) at the first malformed case, as `file:line: reason`."""
    try:
        data, lines = load_with_lines(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CasesFileError(path, f"cannot read: {exc.strerror or exc}") from None
    except AnchorError as exc:
        raise CasesFileError(path, exc.reason, exc.line) from None
    except DuplicateKeyError as exc:
        raise CasesFileError(path, f"{dotted(exc.path)}: duplicate key", exc.line) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CasesFileError(path, f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
    if data is None:
        return []
    prefix: tuple[Any, ...] = ()
    if isinstance(data, dict) and "cases" in data:
        data, prefix = data["cases"], ("cases",)
    if not isinstance(data, list):
        raise CasesFileError(path, "a cases file is a list of cases", line_of(lines, prefix))
    cases = []
    for position, raw in enumerate(data):
        here = (*prefix, position)
        line = line_of(lines, here)
        label = f"case {position + 1}"
        if not isinstance(raw, dict):
            raise CasesFileError(path, f"{label}: a case is a mapping (name:, input:, expect:)", line)
        for key in raw:
            if key not in CASE_KEYS:
                raise CasesFileError(
                    path,
                    f"{label}: unknown key {key!r}{did_you_mean(key, CASE_KEYS)}",
                    line_of(lines, (*here, key)),
                )
        if "input" not in raw or not isinstance(raw.get("expect"), dict):
            raise CasesFileError(path, f"{label} needs `input` and an `expect` mapping", line)
        expect = raw["expect"]
        for key in expect:
            if key not in EXPECTATIONS:
                raise CasesFileError(
                    path,
                    f"{label}: expect: unknown key {key!r}{did_you_mean(key, EXPECTATIONS)}",
                    line_of(lines, (*here, "expect", key)),
                )
        if len(expect) != 1:
            raise CasesFileError(
                path,
                f"{label}: expect exactly one of {', '.join(EXPECTATIONS)}",
                line_of(lines, (*here, "expect")),
            )
        cases.append(
            Case(
                name=str(raw.get("name") or label),
                input=raw["input"],
                expect=expect,
                enrichment=raw.get("enrichment") or {},
                index=int(raw.get("index", 0)),
                line=line,
            )
        )
    return cases


def case_envelope(case: Case, mapping: Mapping, root: Path) -> Envelope:
    """The envelope a case feeds the mapping: a sample file's event, or the inline envelope."""
    if isinstance(case.input, str):
        envelopes = envelopes_from_file(mapping.source, root / case.input)
        if not -len(envelopes) <= case.index < len(envelopes):
            raise CaseFailure(f"{case.input} yields {len(envelopes)} event(s); no event #{case.index}")
        return envelopes[case.index]
    if isinstance(case.input, dict):
        return envelope_from_dict(case.input, source=mapping.source, default_id=f"case-{case.name}")
    raise CaseFailure("input must be a sample file path or an inline envelope")


def run_case(case: Case, mapping: Mapping, root: Path) -> dict[str, Any] | None:
    """Check one case; returns the rendered body (None when skipped). Raises CaseFailure."""
    envelope = case_envelope(case, mapping, root)
    expect = case.expect
    try:
        applies = mapping.applies(envelope)
        body = mapping.render(envelope, case.enrichment).body if applies else None
    except MappingError as exc:
        if "error" in expect:
            if str(expect["error"]) not in str(exc):
                raise CaseFailure(f"error {str(exc)!r} does not contain {expect['error']!r}") from exc
            return None
        raise CaseFailure(f"unexpected mapping error: {exc}") from exc
    if "skipped" in expect:
        if bool(expect["skipped"]) == applies:
            raise CaseFailure(
                "mapping applied but was expected to be skipped" if applies else "mapping was skipped"
            )
        return body
    if body is None:
        raise CaseFailure(f"mapping was skipped: {why_skipped(mapping, envelope)}")
    if "error" in expect:
        raise CaseFailure(f"expected an error containing {expect['error']!r}, got a body: {body}")
    if "output" in expect and body != expect["output"]:
        raise CaseFailure("body differs from `output`", differences(expect["output"], body, exact=True))
    if "contains" in expect:
        details = differences(expect["contains"], body, exact=False)
        if details:
            raise CaseFailure("body does not contain the values of `contains`", details)
    return body


def why_skipped(mapping: Mapping, envelope: Envelope) -> str:
    """Which part of `when` is false for `envelope` (its first false `&&` operand), or that the
    sources differ."""
    from timeline_bridge.mapping.expressions import BridgeFunctions, compile_expression, is_false

    if envelope.source != mapping.source:
        return f"the input's source is {envelope.source!r}, the mapping's {mapping.source!r}"
    when = (mapping.when or "").strip()
    context = mapping.context(envelope)
    functions = BridgeFunctions(mapping.lookups)
    for part in top_level_and(when):
        try:
            value = compile_expression(part, functions)(context)
        except Exception:  # noqa: S112 - the whole `when` is named below
            continue
        if is_false(value):
            shown = f" ({part} is {json.dumps(value)})" if value is not False else ""
            compared = top_level_split(part, ("==", "!=", "<=", ">=", "<", ">"))
            if value is False and len(compared) == 2:
                # The side read from the input: what the case gave instead.
                with contextlib.suppress(Exception):
                    shown = f" ({compared[0]} is {json.dumps(compile_expression(compared[0], functions)(context))})"
            return f"this part of when is false: {part}{shown}" if part != when else f"when is false{shown}"
    return "when is false"


def top_level_and(expression: str) -> list[str]:
    """`a && (b || c) && d` → [a, (b || c), d]: the operands of the outermost `&&`s."""
    return top_level_split(expression, ("&&",))


def top_level_split(expression: str, operators: tuple[str, ...]) -> list[str]:
    """`expression` cut at each of `operators` that stands outside quotes, backticks and brackets."""
    parts, depth, quote, start, i = [], 0, "", 0, 0
    while i < len(expression):
        char = expression[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "'`\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and (operator := next((o for o in operators if expression.startswith(o, i)), None)):
            parts.append(expression[start:i].strip())
            start = i + len(operator)
            i += len(operator) - 1
        i += 1
    parts.append(expression[start:].strip())
    return [" ".join(part.split()) for part in parts if part]


def event_paths(mapping: Mapping) -> list[tuple[tuple[str | int, ...], str]]:
    """(body field, `event.a.b`) for each plain path into the event that the body's expressions
    read, leaving out those with a fallback (`a || b`, `a && b`, `default()`, `not_null()`)."""
    import jmespath
    from timeline_bridge.enrichment.checks import template_expressions

    def chain(node: Any) -> list[str] | None:
        if node.get("type") == "field":
            return [node["value"]]
        if node.get("type") != "subexpression":
            return None
        names: list[str] = []
        for child in node.get("children") or []:
            part = chain(child) if isinstance(child, dict) else None
            if part is None:
                return None
            names += part
        return names

    found: list[tuple[tuple[str | int, ...], str]] = []
    fallbacks = {"or_expression", "and_expression"}

    def walk(node: Any, field: tuple[str | int, ...]) -> None:
        if not isinstance(node, dict):
            return
        if node.get("type") in fallbacks or node.get("value") in ("default", "not_null"):
            return  # a null there is expected and handled
        names = chain(node)
        if names is not None:
            if names[0] == "event" and len(names) > 1:
                found.append((field, ".".join(names)))
            return
        for child in node.get("children") or []:
            walk(child, field)

    for path, expression in template_expressions(mapping.raw.get("body") or {}, ("body",)):
        with contextlib.suppress(Exception):  # the loader reports bad expressions
            walk(jmespath.compile(expression.strip()).parsed, path)
    return list(dict.fromkeys(found))


def unresolved_paths(mapping: Mapping, envelopes: list[Envelope]) -> list[str]:
    """The event paths a mapping's body reads that are null on every one of `envelopes` it applies
    to: most often a misspelt or misplaced field (`event.data.invoice_url`)."""
    applying = [e for e in envelopes if _applies(mapping, e)]
    if not applying:
        return []
    return [
        str(mapping.error(f"{path} is null on every input given (a misspelt or misplaced field?)", field))
        for field, path in event_paths(mapping)
        if all(_value_at(e.event, path.split(".")[1:]) is None for e in applying)
    ]


def _applies(mapping: Mapping, envelope: Envelope) -> bool:
    try:
        return mapping.applies(envelope)
    except MappingError:
        return False


def _value_at(value: Any, names: list[str]) -> Any:
    for name in names:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def differences(expected: Any, actual: Any, *, exact: bool, path: str = "") -> list[str]:
    """Each field where `actual` differs from `expected`, as `path: got X, expected Y`. Objects are
    compared key by key; with `exact`, keys `expected` does not name are differences too."""
    where = path or "body"
    if isinstance(expected, dict) and isinstance(actual, dict):
        found: list[str] = []
        for key, value in expected.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append(f"{child}: missing, expected {_shown(value)}")
            else:
                found.extend(differences(value, actual[key], exact=exact, path=child))
        if exact:
            for key in actual.keys() - expected.keys():
                child = f"{path}.{key}" if path else str(key)
                found.append(f"{child}: got {_shown(actual[key])}, not expected")
        return found
    if expected != actual:
        return [f"{where}: got {_shown(actual)}, expected {_shown(expected)}"]
    return []


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
