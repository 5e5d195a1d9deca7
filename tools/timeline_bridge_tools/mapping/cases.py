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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timeline_bridge.errors import MappingError
from timeline_bridge.mapping.engine import Mapping
from timeline_bridge.mapping.yaml_lines import AnchorError, DuplicateKeyError, dotted, load_with_lines
from timeline_bridge.models import Envelope

from timeline_bridge_tools.mapping.samples import envelope_from_dict, envelopes_from_file

EXPECTATIONS = ("output", "contains", "skipped", "error")


class CaseFailure(AssertionError):
    """A case's expectation did not hold."""


@dataclass
class Case:
    name: str
    input: Any
    expect: dict[str, Any]
    enrichment: dict[str, Any] = field(default_factory=dict)
    index: int = 0


def cases_path(mapping_path: Path) -> Path:
    """`mappings/x.yaml` → `mappings/x.cases.yaml`."""
    return mapping_path.with_name(mapping_path.name.rsplit(".", 1)[0] + ".cases.yaml")


def load_cases(path: Path) -> list[Case]:
    """Read a cases file (the YAML of mapping files: no anchors or aliases, no repeated keys);
    raises ValueError describing the first malformed case, as `file:line: reason` where it can."""
    try:
        data, _lines = load_with_lines(path.read_text(encoding="utf-8"))
    except AnchorError as exc:
        raise ValueError(f"{path}:{exc.line}: {exc.reason}") from None
    except DuplicateKeyError as exc:
        raise ValueError(f"{path}:{exc.line}: {dotted(exc.path)}: duplicate key") from None
    if data is None:
        return []
    if isinstance(data, dict) and "cases" in data:
        data = data["cases"]
    if not isinstance(data, list):
        raise ValueError(f"{path}: a cases file is a list of cases")
    cases = []
    for position, raw in enumerate(data):
        if not isinstance(raw, dict) or "input" not in raw or not isinstance(raw.get("expect"), dict):
            raise ValueError(f"{path}: case {position + 1} needs `input` and an `expect` mapping")
        expect = raw["expect"]
        given = [k for k in EXPECTATIONS if k in expect]
        if len(given) != 1 or set(expect) - set(EXPECTATIONS):
            raise ValueError(f"{path}: case {position + 1}: expect exactly one of {', '.join(EXPECTATIONS)}")
        cases.append(
            Case(
                name=str(raw.get("name") or f"case {position + 1}"),
                input=raw["input"],
                expect=expect,
                enrichment=raw.get("enrichment") or {},
                index=int(raw.get("index", 0)),
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
        raise CaseFailure("mapping was skipped (when is false or the source differs)")
    if "error" in expect:
        raise CaseFailure(f"expected an error containing {expect['error']!r}, got a body: {body}")
    if "output" in expect and body != expect["output"]:
        raise CaseFailure(f"body differs:\n  got:      {body}\n  expected: {expect['output']}")
    if "contains" in expect:
        problem = subset_problem(expect["contains"], body)
        if problem:
            raise CaseFailure(f"body does not contain the expected values: {problem}\n  got: {body}")
    return body


def subset_problem(expected: Any, actual: Any, path: str = "body") -> str | None:
    """Where `expected` is not a subset of `actual` (objects recursively, anything else equal)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{path} is {actual!r}, expected an object"
        for key, value in expected.items():
            if key not in actual:
                return f"{path}.{key} is missing"
            problem = subset_problem(value, actual[key], f"{path}.{key}")
            if problem:
                return problem
        return None
    if expected != actual:
        return f"{path} is {actual!r}, expected {expected!r}"
    return None
