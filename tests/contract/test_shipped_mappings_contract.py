"""Every shipped mapping's output is accepted by its target's sandbox over real HTTP: each case of
`mappings/<name>.cases.yaml` that renders a body becomes a delivery job sent by the real client."""

from __future__ import annotations

from pathlib import Path

import pytest
from timeline_bridge.mapping import load_mapping
from timeline_bridge.mapping.loader import mapping_files
from timeline_bridge.targets import client_for
from timeline_bridge.targets.base import Delivered
from timeline_bridge.wiring import Dependencies
from timeline_bridge_tools.mapping.cases import case_envelope, cases_path, load_cases

ROOT = Path(__file__).resolve().parents[2]
MAPPING_FILES = mapping_files([ROOT / "mappings"])


def _rendering_cases() -> list:
    params = []
    for path in MAPPING_FILES:
        cases_file = cases_path(path)
        if not cases_file.exists():
            continue
        for case in load_cases(cases_file):
            if {"output", "contains"} & set(case.expect):
                params.append(pytest.param(path, case, id=f"{path.stem}: {case.name}"))
    return params


CASES = _rendering_cases()


def test_every_target_has_a_shipped_mapping_when_the_project_is_checked_out():
    targets = {load_mapping(path).target for path in MAPPING_FILES}
    assert targets == {"stora", "hubspot", "matter", "applied"}
    assert {load_mapping(path).target for path, _ in (p.values for p in CASES)} == targets


@pytest.mark.parametrize(("path", "case"), CASES)
def test_sandbox_accepts_mapping_output_when_case_renders_a_body(open_sandboxes, path, case):
    mapping = load_mapping(path)
    job = mapping.render(case_envelope(case, mapping, ROOT), case.enrichment)
    deps = Dependencies.from_environ()
    [outcome] = client_for(mapping.target, deps.settings, deps.secrets).send([job])
    assert isinstance(outcome, Delivered), f"{mapping.target} refused {job.body}: {outcome!r}"
    assert len(open_sandboxes[mapping.target].events()) == 1
