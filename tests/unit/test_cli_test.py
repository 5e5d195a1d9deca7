"""`bridge test` runs mapping cases as the project's tests do; `bridge validate` and `bridge test`
refuse malformed cases files at their line; the CLI's conventions (help, version, map's stdout)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from timeline_bridge_tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
STORA = "hubspot-deal-stage-to-stora"
SAMPLE_BODY = json.loads((ROOT / "events/generic/standard-webhook.json").read_text())["body"]

# What a user adds: a generic endpoint's mapping and its cases, with no exact `output` case.
NEW_MAPPING = """\
name: billing-invoice-paid-to-matter
description: Paid invoices from the billing endpoint become Matter banking events.
source: generic
when: "meta.name == 'billing' && event.type == 'invoice.paid'"
target: matter
body:
  kind: banking
  title: "Invoice ${{ event.data.invoice_id }} paid"
  occurred_at: "${{ to_iso8601(event.timestamp) }}"
  ref: "invoice_${{ event.data.invoice_id }}"
"""
NEW_CASES = """\
- name: the sample invoice becomes a banking event
  input: events/generic/standard-webhook.json
  expect:
    contains: {kind: banking, title: Invoice inv_8Q2w3E4r paid}
- name: another endpoint is skipped
  input:
    name: shipping
    event: {type: invoice.paid, timestamp: "2025-11-23T12:05:00Z", data: {invoice_id: x}}
  expect: {skipped: true}
"""


@pytest.fixture(autouse=True)
def _in_project(monkeypatch: pytest.MonkeyPatch) -> None:
    # Case inputs name samples relative to the project folder.
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("BRIDGE_MAPPINGS_DIR", raising=False)


def stora_copy(folder: Path, cases: str | None = None) -> Path:
    """The shipped Stora mapping in `folder`, with its cases file or `cases` instead."""
    shutil.copy(MAPPINGS / f"{STORA}.yaml", folder)
    cases_file = folder / f"{STORA}.cases.yaml"
    if cases is None:
        shutil.copy(MAPPINGS / f"{STORA}.cases.yaml", cases_file)
    else:
        cases_file.write_text(cases)
    return cases_file


def test_bridge_test_runs_every_shipped_case_in_seconds_when_given_mappings(capsys) -> None:
    started = time.monotonic()
    code = main(["test", "mappings/"])
    elapsed = time.monotonic() - started

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "FAIL" not in out
    assert f"ok   mappings/{STORA}.cases.yaml:4: the sample deal moved to contract sent" in out
    assert " 0 failed in " in err
    assert elapsed < 15


def test_bridge_test_names_file_case_and_field_when_an_expected_value_is_wrong(
    tmp_path: Path, capsys
) -> None:
    shipped = (MAPPINGS / f"{STORA}.cases.yaml").read_text()
    wrong = shipped.replace("        new_state: Negotiation\n", "        new_state: Qualified\n", 1)
    assert wrong != shipped
    cases_file = stora_copy(tmp_path, wrong)

    code = main(["test", str(tmp_path)])

    out, err = capsys.readouterr()
    assert code == 1
    assert f"FAIL {cases_file}:4: the sample deal moved to contract sent becomes the Negotiation event" in out
    assert 'variables.new_state: got "Negotiation", expected "Qualified"' in out
    assert "1 failed" in err


def test_bridge_test_lists_each_missing_field_when_contains_is_not_met(tmp_path: Path, capsys) -> None:
    stora_copy(
        tmp_path,
        "- name: c\n  input: events/hubspot/deal-stage-change.json\n"
        "  enrichment: {new_stage: Won, previous_stage: Lost, contact_id: con_1, deal: {properties: {dealname: D}}}\n"
        "  expect:\n    contains: {description: other, variables: {owner: x}}\n",
    )

    assert main(["test", str(tmp_path)]) == 1

    out = capsys.readouterr().out
    assert 'description: got "CRM deal moved to Won stage", expected "other"' in out
    assert 'variables.owner: missing, expected "x"' in out


def test_bridge_test_runs_one_mapping_when_named_by_its_cases_file(capsys) -> None:
    assert main(["test", f"mappings/{STORA}.cases.yaml"]) == 0

    out = capsys.readouterr().out
    assert out and all(f"mappings/{STORA}.cases.yaml" in line for line in out.splitlines())


def test_bridge_test_fails_when_a_mapping_has_no_cases_file(tmp_path: Path, capsys) -> None:
    shutil.copy(MAPPINGS / f"{STORA}.yaml", tmp_path)

    assert main(["test", str(tmp_path)]) == 1
    assert f"FAIL {tmp_path / STORA}.yaml: no cases file ({STORA}.cases.yaml)" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["test", "validate"])
def test_unknown_case_key_is_reported_at_its_line_when_validating_or_testing(
    tmp_path: Path, capsys, command: str
) -> None:
    cases_file = stora_copy(
        tmp_path,
        "- name: a\n  input: {event: {a: 1}}\n  expect: {skipped: true}\n- name: b\n  input: {event: {}}\n  expected: {skipped: true}\n",
    )

    assert main([command, str(tmp_path)]) == 1

    assert (
        f"{cases_file}:6: case 2: unknown key 'expected' (did you mean 'expect'?)" in capsys.readouterr().out
    )


@pytest.mark.parametrize("command", ["test", "validate"])
def test_yaml_error_in_a_cases_file_is_reported_at_its_line_when_validating_or_testing(
    tmp_path: Path, capsys, command: str
) -> None:
    cases_file = stora_copy(tmp_path, "- name: a\n  input: {event: {a: 1}\n  expect: {skipped: true}\n")

    assert main([command, str(tmp_path)]) == 1

    assert f"{cases_file}:3: invalid YAML: " in capsys.readouterr().out


def test_unknown_expectation_is_reported_at_its_line_when_testing(tmp_path: Path, capsys) -> None:
    cases_file = stora_copy(tmp_path, "- name: a\n  input: {event: {a: 1}}\n  expect:\n    skiped: true\n")

    assert main(["test", str(tmp_path)]) == 1

    assert (
        f"{cases_file}:4: case 1: expect: unknown key 'skiped' (did you mean 'skipped'?)"
        in capsys.readouterr().out
    )


def test_new_mapping_with_cases_passes_beside_the_shipped_ones_when_added_to_a_copy(
    tmp_path: Path, capsys
) -> None:
    # The user's step: copy the project's mappings, add one with its cases, run them all.
    folder = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, folder)
    (folder / "billing-invoice-paid-to-matter.yaml").write_text(NEW_MAPPING)
    (folder / "billing-invoice-paid-to-matter.cases.yaml").write_text(NEW_CASES)

    assert main(["validate", str(folder)]) == 0
    assert main(["test", str(folder)]) == 0

    out = capsys.readouterr().out
    assert "ok   " in out and "billing-invoice-paid-to-matter.cases.yaml:1: the sample invoice" in out
    assert "FAIL" not in out


def test_map_renders_a_raw_generic_body_when_given_the_endpoint_name(tmp_path: Path, capsys) -> None:
    (tmp_path / "billing.yaml").write_text(NEW_MAPPING)
    raw = tmp_path / "invoice.json"
    raw.write_text(SAMPLE_BODY)

    code = main(["map", "generic", str(raw), "--name", "billing", "--no-enrich", "--mappings", str(tmp_path)])

    out, err = capsys.readouterr()
    assert code == 0, err
    (request,) = json.loads(out)
    assert request["mapping"] == "billing-invoice-paid-to-matter"
    assert request["body"]["title"] == "Invoice inv_8Q2w3E4r paid"


def test_map_prints_nothing_on_stdout_when_a_mapping_fails(tmp_path: Path, capsys) -> None:
    (tmp_path / "billing.yaml").write_text(NEW_MAPPING.replace("event.data.invoice_id", "event.data.missing"))
    raw = tmp_path / "invoice.json"
    raw.write_text(SAMPLE_BODY)

    code = main(["map", "generic", str(raw), "--name", "billing", "--no-enrich", "--mappings", str(tmp_path)])

    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert "billing.yaml:8: body.title: " in err


def test_bridge_alone_prints_usage_and_the_commands_when_given_no_command() -> None:
    # As a user types it: the installed entry point's module, not main() with a list.
    done = subprocess.run(
        [sys.executable, "-m", "timeline_bridge_tools.cli"], capture_output=True, text=True, timeout=60
    )

    assert done.returncode == 2
    assert done.stdout.startswith("usage: bridge ")
    assert "test " in done.stdout and "validate " in done.stdout


def test_version_is_the_installed_package_version_when_asked(capsys) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exited:
        main(["--version"])

    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"bridge {version('timeline-bridge')}"


@pytest.mark.parametrize("command", ["test", "validate", "map"])
def test_command_help_shows_examples_when_asked(capsys, command: str) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])

    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"bridge {command} " in out.split("examples:", 1)[1]


def test_skipped_case_names_the_false_part_of_when_and_the_value_read(tmp_path: Path, capsys) -> None:
    cases_file = stora_copy(
        tmp_path,
        "- name: another property\n  input:\n"
        "    event: {subscriptionType: deal.propertyChange, objectId: 1, propertyName: amount}\n"
        "  expect: {contains: {description: x}}\n",
    )

    assert main(["test", str(tmp_path)]) == 1

    out = capsys.readouterr().out
    assert f"FAIL {cases_file}:1: another property" in out
    assert (
        "mapping was skipped: this part of when is false: event.propertyName == 'dealstage'"
        ' (event.propertyName is "amount")'
    ) in out


def test_skipped_case_says_the_sources_differ_when_the_input_names_another(tmp_path: Path, capsys) -> None:
    stora_copy(
        tmp_path,
        "- name: a click\n  input: {source: slack, event: {type: block_actions}}\n  expect: {contains: {a: b}}\n",
    )

    assert main(["test", str(tmp_path)]) == 1

    assert (
        "mapping was skipped: the input's source is 'slack', the mapping's 'hubspot'"
        in capsys.readouterr().out
    )


def test_when_is_split_at_its_outermost_ands_only() -> None:
    from timeline_bridge_tools.mapping.cases import top_level_and

    assert top_level_and("a == 'x && y' && (b && c) &&\n `[1]` != d") == [
        "a == 'x && y'",
        "(b && c)",
        "`[1]` != d",
    ]


def test_path_null_on_every_case_input_is_a_warning_when_testing_and_mapping(tmp_path: Path, capsys) -> None:
    # `ref` alone is the expression: null leaves the field out, so the cases still pass.
    mapping = NEW_MAPPING.replace('"invoice_${{ event.data.invoice_id }}"', '"${{ event.data.invoice_url }}"')
    (tmp_path / "billing.yaml").write_text(mapping)
    (tmp_path / "billing.cases.yaml").write_text(NEW_CASES)
    warning = (
        f"warning: {tmp_path / 'billing.yaml'}:10: body.ref: event.data.invoice_url is null on every input "
        "given (a misspelt or misplaced field?)"
    )

    assert main(["test", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert warning in out
    assert out.count("warning:") == 1  # event.data.invoice_id and event.timestamp resolve

    raw = tmp_path / "invoice.json"
    raw.write_text(SAMPLE_BODY)
    assert (
        main(["map", "generic", str(raw), "--name", "billing", "--no-enrich", "--mappings", str(tmp_path)])
        == 0
    )
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["body"].get("ref") is None
    assert warning in err


def test_number_where_the_target_takes_a_string_fails_validate_with_the_to_string_fix(
    tmp_path: Path, capsys
) -> None:
    shipped = (MAPPINGS / f"{STORA}.yaml").read_text()
    counted = '    deal_name: "${{ length(enrichment.deal.properties.dealname) }}"\n'
    text = shipped.replace('    deal_name: "${{ enrichment.deal.properties.dealname }}"\n', counted, 1)
    assert text != shipped
    (tmp_path / f"{STORA}.yaml").write_text(text)
    line = text[: text.index(counted)].count("\n") + 1

    assert main(["validate", str(tmp_path)]) == 1

    assert (
        f"{tmp_path / STORA}.yaml:{line}: body.variables.deal_name: breaks the stora contract: must be string, "
        "but length() gives a number: write ${{ to_string(length(enrichment.deal.properties.dealname)) }}"
    ) in capsys.readouterr().out
