"""mappings/README.md's per-target field tables are what the target schemas give
(`bridge docs targets`): a schema change without `--write` fails here, and the generator reads
every registered target's contract, so a new target or field gets its rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from timeline_bridge.target_registry import register_target, target_spec, unregister_target
from timeline_bridge.targets.spec import Contract, KeyField, TargetSpec
from timeline_bridge_tools import target_docs
from timeline_bridge_tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "mappings" / "README.md"


def test_readme_tables_are_the_ones_the_target_schemas_give() -> None:
    text = README.read_text()

    assert target_docs.spliced(text) == text, (
        "run `bridge docs targets --write` and commit mappings/README.md"
    )


def test_every_curated_note_is_about_a_field_its_table_lists() -> None:
    fields = {(t.contract.name, r.field) for t in target_docs.tables() for r in t.rows}

    assert set(target_docs.FIELD_NOTES) <= fields, set(target_docs.FIELD_NOTES) - fields


def test_stora_table_says_where_the_source_and_template_ids_come_from() -> None:
    (stora,) = [t for t in target_docs.tables() if t.contract.name == "stora"]
    rows = {r.field: r for r in stora.rows}

    assert (rows["source.id"].required, rows["template.id"].required) == ("yes", "yes")
    assert (
        "`tsrc_…`" in rows["source.id"].notes and "GET /2025-09/timeline/sources" in rows["source.id"].notes
    )
    assert (
        "`aetpl_…`" in rows["template.id"].notes
        and "GET /2025-09/timeline/templates" in rows["template.id"].notes
    )
    assert rows["contact.id"].required == "with `contact`"


@pytest.fixture
def widget_target(tmp_path: Path) -> Iterator[str]:
    """A target registered in-process whose contract schema is a file of the test's own."""
    schema = {
        "type": "object",
        "required": ["title", "owner"],
        "properties": {
            "title": {"type": "string", "minLength": 1},
            "owner": {
                "type": "object",
                "required": ["id"],
                "properties": {"id": {"type": "string", "pattern": "^usr_[0-9A-Za-z]+$"}},
            },
            "dedupe": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
            "colour": {"enum": ["red", "blue"]},
        },
    }
    path = tmp_path / "widgets-docs-test.schema.json"
    path.write_text(json.dumps(schema))
    stora = target_spec("stora")
    register_target(
        TargetSpec(
            name="widgets",
            base_url="https://widgets.test",
            credential="WIDGETS_TOKEN",
            contracts=(Contract("widgets-docs-test", "/v1/widgets", schema_file=path),),
            build_client=stora.build_client,
            key_fields=(KeyField(("dedupe",)),),
        )
    )
    try:
        yield "widgets-docs-test"
    finally:
        unregister_target("widgets")


def test_a_registered_targets_contract_gets_its_table_from_its_schema(widget_target: str) -> None:
    (table,) = [t for t in target_docs.tables() if t.contract.name == widget_target]

    assert table.markdown().splitlines()[:2] == [f"### `{widget_target}`: POST /v1/widgets", ""]
    assert [(r.field, r.type, r.required, r.notes) for r in table.rows] == [
        ("title", "string", "yes", "not empty"),
        ("owner.id", "string", "yes", "`usr_…`"),
        ("dedupe", "string", "no", "set by the bridge to the job key"),
        ("at", "string (ISO 8601 date-time)", "no", ""),
        ("colour", "string", "no", "one of `red`, `blue`"),
    ]


def test_check_fails_naming_the_fix_and_write_repairs_when_the_readme_is_stale(
    tmp_path: Path, capsys
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README.read_text().replace("| `kind` | string | yes |", "| `kind` | string | no |"))

    assert main(["docs", "targets", "--check", "--readme", str(readme)]) == 1
    assert "bridge docs targets --write" in capsys.readouterr().err
    assert main(["docs", "targets", "--write", "--readme", str(readme)]) == 0
    assert readme.read_text() == README.read_text()
    assert main(["docs", "targets", "--check", "--readme", str(readme)]) == 0


def test_check_says_so_when_the_readme_has_no_generated_block(tmp_path: Path, capsys) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Mapping files\n")

    assert main(["docs", "targets", "--check", "--readme", str(readme)]) == 2
    assert "no target-fields markers" in capsys.readouterr().err
