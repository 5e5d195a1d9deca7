"""Load-time checks of an `enrich:` block that the JSON Schema cannot express: every
`enrichment.<name>` an expression reads must be fetched, and fetched before the fetch that reads it.

Light on purpose (no HTTP client imports): `bridge validate` and the route's cold start run it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jmespath
from jmespath import exceptions as jp_exceptions

from timeline_bridge.mapping.expressions import did_you_mean, split_template

Path_ = tuple[str | int, ...]


def enrichment_names(expression: str) -> set[str]:
    """The names an expression reads under `enrichment.` (`enrichment.deal.x` → {"deal"})."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if not isinstance(node, dict):
            return
        children = node.get("children") or []
        if node.get("type") in ("subexpression", "index_expression") and len(children) >= 2:
            head, second = children[0], children[1]
            if isinstance(head, dict) and head.get("type") == "field" and head.get("value") == "enrichment":
                # The name is the leftmost field of what follows (`d` in `enrichment.d[0].x`).
                while isinstance(second, dict) and second.get("type") != "field" and second.get("children"):
                    second = second["children"][0]
                if isinstance(second, dict) and second.get("type") == "field":
                    found.add(second["value"])
        for child in children:
            walk(child)

    with contextlib.suppress(jp_exceptions.JMESPathError):  # the engine reports bad expressions
        walk(jmespath.compile(expression.strip()).parsed)
    return found


def template_expressions(value: Any, path: Path_) -> Iterator[tuple[Path_, str]]:
    """(path, expression) for every `${{ }}` in a template value, under `path`."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from template_expressions(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from template_expressions(item, (*path, index))
    elif isinstance(value, str) and "${{" in value:
        try:
            parts = split_template(value) or []
        except jp_exceptions.JMESPathError:
            return
        for part in parts:
            if isinstance(part, tuple):
                yield path, part[0]


def problems(enrich: dict[str, Any], body: Any) -> list[tuple[Path_, str]]:
    """(path, reason) for every read of an enrichment result that is never or not yet fetched."""
    out: list[tuple[Path_, str]] = []
    names = list(enrich)
    for position, (name, spec) in enumerate(enrich.items()):
        with_raw = spec.get("with") if isinstance(spec, dict) else None
        for path, expression in template_expressions(with_raw or {}, ("enrich", name, "with")):
            for used in sorted(enrichment_names(expression)):
                if used not in enrich:
                    out.append(
                        (
                            path,
                            f"enrichment.{used} is not fetched: no {used!r} in enrich{did_you_mean(used, enrich)}",
                        )
                    )
                elif names.index(used) >= position:
                    out.append(
                        (
                            path,
                            f"enrichment.{used} is fetched after {name!r}: fetches run in the order written",
                        )
                    )
    for path, expression in template_expressions(body, ("body",)):
        for used in sorted(enrichment_names(expression)):
            if used not in enrich:
                hint = did_you_mean(used, enrich) or f": add {used!r} to enrich"
                out.append((path, f"enrichment.{used} is not fetched{hint}"))
    return out
