"""`bridge validate` and `bridge map` (offline: no enrichment fetches, no network)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from timeline_bridge.keys import job_key
from timeline_bridge.mapping.loader import mapping_files
from timeline_bridge_tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"


@pytest.fixture(autouse=True)
def _in_project(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("BRIDGE_MAPPINGS_DIR", raising=False)


def test_validate_passes_when_given_the_shipped_mappings(capsys) -> None:
    code = main(["validate", "mappings/"])

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.strip().startswith(f"{len(mapping_files([MAPPINGS]))} mapping file(s) valid")


def test_validate_reads_the_mappings_dir_when_no_path_is_given(capsys) -> None:
    assert main(["validate"]) == 0
    assert "valid" in capsys.readouterr().out


def _plant(path: Path, old: str, new: str) -> Path:
    """Replace `old` by `new` in `path` (once)."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))
    return path


def _line_of(path: Path, planted: str) -> int:
    """The 1-based line where the planted text starts, once every error is planted."""
    text = path.read_text()
    return text[: text.index(planted)].count("\n") + 1


def test_validate_reports_every_planted_error_with_file_and_line_when_mappings_are_broken(
    tmp_path: Path, capsys
) -> None:
    broken = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, broken)
    stora = broken / "pipedrive-deal-stage-to-stora.yaml"
    applied = broken / "pipedrive-deal-stage-to-applied.yaml"
    timeline = broken / "hubspot-deal-stage-to-hubspot-timeline.yaml"
    # (field, file, the line that carries the error): lines are read once everything is planted.
    plants = [
        ("name", _plant(stora, "name: pipedrive-deal-stage-to-stora", "name: Pipedrive To Stora"), "name: Pipedrive To Stora"),
        ("body.url", _plant(stora, "  template:", "  url: https://evil.example/\n  template:"), "  url: https://evil"),
        ("source", _plant(applied, "source: pipedrive", "source: pipedrivex"), "source: pipedrivex"),
        ("body.name", _plant(applied, 'name: "Deal moved to ${{', 'name: "Deal moved to ${{ event.['), "${{ event.["),
        ("body.tokens.stage", _plant(timeline, "${{ event.propertyValue }}", "${{ nope(event.propertyValue) }}"), "nope("),
        ("headers", _plant(timeline, "target: hubspot", "target: hubspot\nheaders: {X-Api-Key: k}"), "headers:"),
    ]  # fmt: skip
    planted = [(path, field, _line_of(path, marker)) for field, path, marker in plants]

    code = main(["validate", str(broken)])

    out, err = capsys.readouterr()
    assert code == 1
    lines = out.strip().splitlines()
    for path, field, line in planted:
        prefix = f"{path}:{line}: {field}: "
        assert any(entry.startswith(prefix) for entry in lines), f"missing {prefix!r} in:\n{out}"
    assert len(lines) == len(planted), out
    assert f"{len(planted)} error(s) in 3 of {len(mapping_files([broken]))} mapping file(s)" in err


def test_validate_fails_when_a_path_does_not_exist(tmp_path: Path, capsys) -> None:
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 1
    assert "no such file or directory" in capsys.readouterr().out


PIPEDRIVE = ("pipedrive-deal-stage-to-applied", "pipedrive-deal-stage-to-stora")


def test_map_prints_the_target_requests_when_given_a_function_url_event(capsys, shipped_mappings) -> None:
    sample = "events/pipedrive/deal-stage-change-v2.json"

    code = main(["map", "pipedrive", sample, "--no-enrich", "--mappings", str(shipped_mappings(*PIPEDRIVE))])

    out, err = capsys.readouterr()
    assert code == 0, err
    requests = json.loads(out)
    assert [(r["mapping"], r["target"], r["method"]) for r in requests] == [
        ("pipedrive-deal-stage-to-applied", "applied", "POST"),
        ("pipedrive-deal-stage-to-stora", "stora", "POST"),
    ]
    event_id = json.loads(json.loads((ROOT / sample).read_text())["body"])["meta"]["id"]
    applied, stora = requests
    assert applied["key"] == job_key("pipedrive", event_id, "pipedrive-deal-stage-to-applied")
    assert applied["url"].endswith("/v2026-04/events/")
    assert applied["body"]["metric"]["deduping_key"] == applied["key"]
    assert stora["url"].endswith("/2025-09/timeline/events")
    assert stora["body"]["variables"] == {
        "deal_name": "Acme Storage - 3 units",
        "previous_state": "Demo scheduled",
        "new_state": "Proposal made",
    }


def test_map_accepts_a_raw_body_when_the_file_is_not_a_function_url_event(
    tmp_path: Path, capsys, shipped_mappings
) -> None:
    event = json.loads((ROOT / "events/pipedrive/deal-stage-change-v2.json").read_text())
    raw = tmp_path / "body.json"
    raw.write_text(event["body"])
    folder = str(shipped_mappings(*PIPEDRIVE))

    assert main(["map", "pipedrive", str(raw), "--no-enrich", "--mappings", folder]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2


def test_map_output_is_identical_when_run_twice(capsys) -> None:
    main(["map", "slack", "events/slack/approve-button.json", "--no-enrich"])
    first = capsys.readouterr()
    main(["map", "slack", "events/slack/approve-button.json", "--no-enrich"])

    assert capsys.readouterr() == first


def test_map_exits_non_zero_with_file_line_and_field_when_a_mapping_fails(tmp_path: Path, capsys) -> None:
    (tmp_path / "strict.yaml").write_text(
        "name: strict\nsource: pipedrive\ntarget: matter\nbody:\n"
        '  kind: audit\n  title: "Deal ${{ event.data.missing }}"\n  occurred_at: "2026-01-01T00:00:00Z"\n'
    )

    code = main(
        ["map", "pipedrive", "events/pipedrive/deal-stage-change-v2.json", "--mappings", str(tmp_path)]
    )

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""  # a failed dry run prints no requests, not even the ones that rendered
    assert f"{tmp_path / 'strict.yaml'}:6: body.title: " in err


def test_map_says_so_when_no_mapping_applies(capsys) -> None:
    assert main(["map", "slack", "events/slack/url-verification.json", "--no-enrich"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == []
    assert "no mapping applies" in err
