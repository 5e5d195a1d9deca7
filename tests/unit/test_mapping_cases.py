"""Every shipped mapping is tested as data: its cases file, run case by case (Benthos-style)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from timeline_bridge.mapping import load_mapping
from timeline_bridge.mapping.loader import mapping_files
from timeline_bridge_tools.mapping.cases import cases_path, load_cases, run_case

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


def test_cases_file_refused_at_its_first_anchor_when_it_holds_a_billion_laughs(tmp_path: Path) -> None:
    # Nine levels of ten aliases: 10^9 strings for whatever walks the case's input.
    lines = ["- name: bomb", "  input:", "    event_type: deal.propertyChange", "    event:"]
    lines.append(f"      l0: &l0 [{', '.join(['lol'] * 10)}]")
    lines += [f"      l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 9)]
    lines.append("  expect: {skipped: true}")
    path = tmp_path / "bomb.cases.yaml"
    path.write_text("\n".join(lines) + "\n")

    started = time.monotonic()
    with pytest.raises(ValueError) as refused:
        load_cases(path)

    assert str(refused.value) == f"{path}:5: YAML anchors (&l0) are not allowed: write each value out"
    assert time.monotonic() - started < 2


def test_cases_file_refused_at_the_alias_when_it_names_an_anchor_it_never_set(tmp_path: Path) -> None:
    path = tmp_path / "alias.cases.yaml"
    path.write_text("- name: a\n  input: *shared\n  expect: {skipped: true}\n")

    with pytest.raises(ValueError, match=rf"^{path}:2: YAML aliases \(\*shared\) are not allowed"):
        load_cases(path)
