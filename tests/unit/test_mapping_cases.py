"""Every shipped mapping is tested as data: its cases file, run case by case (Benthos-style)."""

from __future__ import annotations

from pathlib import Path

import pytest
from timeline_bridge.mapping import load_mapping
from timeline_bridge.mapping.cases import cases_path, load_cases, run_case
from timeline_bridge.mapping.loader import mapping_files

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
MAPPING_FILES = mapping_files([MAPPINGS])


def _all_cases() -> list[pytest.param]:
    params = []
    for path in MAPPING_FILES:
        cases_file = cases_path(path)
        if not cases_file.exists():
            continue
        for case in load_cases(cases_file):
            params.append(pytest.param(path, case, id=f"{path.stem}: {case.name}"))
    return params


def test_shipped_mappings_exist_when_the_project_is_checked_out() -> None:
    assert len(MAPPING_FILES) >= 6


@pytest.mark.parametrize("path", MAPPING_FILES, ids=lambda p: p.stem)
def test_mapping_has_cases_when_shipped(path: Path) -> None:
    cases_file = cases_path(path)
    assert cases_file.exists(), f"{path.name} has no cases file ({cases_file.name})"
    cases = load_cases(cases_file)
    assert cases, f"{cases_file.name} has no cases"
    kinds = {next(iter(case.expect)) for case in cases}
    assert kinds & {"output", "contains"}, f"{cases_file.name} never checks a rendered body"


@pytest.mark.parametrize(("path", "case"), _all_cases())
def test_case_holds_when_mapping_renders_its_input(path: Path, case) -> None:
    run_case(case, load_mapping(path), ROOT)
