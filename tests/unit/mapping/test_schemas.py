"""The JSON Schemas themselves: valid for their drafts, with the ids and layout the loader expects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft7Validator, Draft202012Validator
from timeline_bridge import SOURCES, TARGETS
from timeline_bridge.mapping.contracts import SCHEMAS_DIR, contract_schema, mapping_schema
from timeline_bridge.target_registry import endpoints

ENDPOINTS = endpoints()

ROOT = Path(__file__).resolve().parents[3]


def test_mapping_schema_is_a_valid_2020_12_schema_when_checked_against_the_meta_schema() -> None:
    schema = mapping_schema()

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"]
    assert schema["properties"]["source"]["enum"] == list(SOURCES)
    assert schema["properties"]["target"]["enum"] == list(TARGETS)


@pytest.mark.parametrize("contract", ENDPOINTS)
def test_target_schema_is_a_valid_draft_7_schema_when_checked_against_the_meta_schema(contract) -> None:
    schema = contract_schema(contract)

    Draft7Validator.check_schema(schema)
    assert schema["$id"].endswith(contract)


def test_every_target_has_a_contract_with_an_endpoint() -> None:
    assert set(TARGETS) <= set(ENDPOINTS)
    assert {c.split("-")[0] for c in ENDPOINTS} == set(TARGETS)


def test_root_schemas_folder_is_the_one_the_layer_ships_when_listed() -> None:
    root = ROOT / "schemas"

    assert root.is_symlink()
    assert root.resolve() == SCHEMAS_DIR
    assert sorted(p.name for p in (root / "targets").glob("*.json")) == sorted(
        f"{c}.schema.json" for c in ENDPOINTS
    )
    assert json.loads((root / "mapping.schema.json").read_text()) == mapping_schema()
