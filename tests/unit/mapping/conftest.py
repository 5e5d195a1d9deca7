"""Helpers for mapping engine tests: write a mapping file, build an envelope."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from timeline_bridge.mapping import Mapping, load_mapping
from timeline_bridge.models import Envelope

MATTER_HEAD = """\
name: test-mapping
source: hubspot
target: matter
"""


def envelope(event: Any, *, source: str = "hubspot", event_id: str = "evt-1", **fields: Any) -> Envelope:
    return Envelope(
        source=source,
        event_type=fields.pop("event_type", "deal.propertyChange"),
        event_id=event_id,
        occurred_at=fields.pop("occurred_at", None),
        received_at=fields.pop("received_at", "2026-01-01T00:00:00.000Z"),
        event=event,
        name=fields.pop("name", None),
    )


@pytest.fixture
def make_envelope() -> Callable[..., Envelope]:
    """make_envelope(event, source="hubspot", event_id="evt-1", ...) → an Envelope."""
    return envelope


@pytest.fixture
def write_mapping(tmp_path: Path) -> Callable[..., Path]:
    """write_mapping(text, name="m.yaml") → the path of a mapping file holding `text` (dedented)."""

    def write(text: str, name: str = "m.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def compile_mapping(write_mapping: Callable[..., Path]) -> Callable[..., Mapping]:
    """compile_mapping(text) → the loaded Mapping (raises MappingLoadError)."""

    def build(text: str) -> Mapping:
        return load_mapping(write_mapping(text))

    return build


@pytest.fixture
def matter_body(compile_mapping: Callable[..., Mapping]) -> Callable[..., Any]:
    """matter_body(body_yaml, event) → the body a Matter mapping renders for `event`."""

    def render(body: str, event: Any, enrichment: dict[str, Any] | None = None, extra: str = "") -> Any:
        text = MATTER_HEAD + extra + "body:\n" + textwrap.indent(textwrap.dedent(body), "  ")
        return compile_mapping(text).render(envelope(event), enrichment).body

    return render


PLAYGROUND_HEAD = """\
name: playground
source: hubspot
target: hubspot
"""


@pytest.fixture
def render_extra(compile_mapping: Callable[..., Mapping]) -> Callable[..., Any]:
    """render_extra(yaml, event) → what `extraData` renders to: HubSpot's free-form JSON field, so
    engine semantics can be checked without a target contract in the way."""

    def render(
        extra_yaml: str, event: Any, enrichment: dict[str, Any] | None = None, lookups: str = ""
    ) -> Any:
        text = (
            PLAYGROUND_HEAD
            + lookups
            + "body:\n"
            + '  eventTemplateId: "1"\n'
            + '  objectId: "1"\n'
            + "  tokens: {}\n"
            + "  extraData:\n"
            + textwrap.indent(textwrap.dedent(extra_yaml), "    ")
        )
        return compile_mapping(text).render(envelope(event), enrichment).body.get("extraData")

    return render
