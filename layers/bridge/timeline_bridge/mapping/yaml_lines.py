"""YAML loading that remembers where every value came from, so errors can say `file:line`."""

from __future__ import annotations

import re
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


class AnchorError(ValueError):
    """An anchor (`&name`) or alias (`*name`): refused, so no alias bomb is ever expanded."""

    def __init__(self, reason: str, line: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


class LineLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader (no object construction, ever) with JSON-friendly scalars.

    Dates and times stay strings (a mapping's `2024-01-01` is text, not a `date`), and only
    `true`/`false` are booleans: YAML 1.1 turns `yes`, `no`, `on`, `off` into booleans, which
    breaks lookup tables keyed by words like those.

    Anchors and aliases are refused where the parser meets them, before any node is built: nine
    nested levels of ten aliases are a few lines of text and 10^9 values once anything walks the
    data (a "billion laughs"). Mapping and cases files write each value out instead.
    """

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise AnchorError(
                f"YAML aliases (*{event.anchor}) are not allowed: write each value out", _line(event)
            )
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            raise AnchorError(f"YAML anchors (&{anchor}) are not allowed: write each value out", _line(event))
        return super().compose_node(parent, index)


def _line(event: yaml.Event) -> int:
    mark = event.start_mark
    return mark.line + 1 if mark is not None else 1


LineLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _bool(loader: LineLoader, node: yaml.ScalarNode) -> bool:
    return str(loader.construct_scalar(node)).lower() == "true"


LineLoader.add_constructor("tag:yaml.org,2002:bool", _bool)


class DuplicateKeyError(ValueError):
    def __init__(self, path: Path_, line: int) -> None:
        super().__init__("duplicate key")
        self.path = path
        self.line = line


def load_with_lines(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse one YAML document; return the data and {JSON path: 1-based line of its key or item}.

    Raises yaml.YAMLError (with `problem_mark`) on syntax errors, DuplicateKeyError when a
    mapping repeats a key (PyYAML would silently keep the last one) and AnchorError at the first
    anchor or alias.
    """
    loader = LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    lines: dict[Path_, int] = {(): node.start_mark.line + 1}
    _walk(node, (), lines)
    return data, lines


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    # No node is shared (the loader refuses aliases), so the walk never loops.
    if isinstance(node, yaml.MappingNode):
        keys: set[Any] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            if key_node.tag == "tag:yaml.org,2002:merge":
                _walk(value_node, path, lines)
                continue
            key = key_node.value
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in keys:
                raise DuplicateKeyError(child, line)
            keys.add(key)
            lines.setdefault(child, line)
            _walk(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines.setdefault(child, item.start_mark.line + 1)
            _walk(item, child, lines)


def line_of(lines: dict[Path_, int], path: Path_) -> int | None:
    """The line of `path`, or of its nearest ancestor that has one."""
    probe = tuple(path)
    while True:
        line = lines.get(probe)
        if line is not None or not probe:
            return line
        probe = probe[:-1]


def dotted(path: Path_) -> str:
    """("body", "tokens", 0, "x") → "body.tokens[0].x"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
