"""Loading mapping files (FM-25): the schema, load-time compilation, and errors at file:line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from timeline_bridge.errors import MappingLoadError
from timeline_bridge.mapping import load_mapping, load_mappings
from timeline_bridge.mapping.loader import check_paths, check_text

VALID = """\
name: ok
source: hubspot
when: "event.propertyName == 'dealstage'"
target: matter
body:
  kind: audit
  title: "Deal ${{ event.objectId }}"
  occurred_at: "${{ to_iso8601(event.occurredAt) }}"
"""


def errors_of(text: str) -> list[tuple[int | None, str, str]]:
    mapping, errors = check_text(text, "m.yaml")
    assert mapping is None
    return [(e.line, e.field, e.reason) for e in errors]


def test_valid_mapping_compiles_when_loaded(write_mapping) -> None:
    mapping = load_mapping(write_mapping(VALID))

    assert (mapping.name, mapping.source, mapping.target) == ("ok", "hubspot", "matter")
    assert mapping.file.endswith("m.yaml")


@pytest.mark.parametrize(
    "key", ["url", "URL", "headers", "Headers", "host", "Host", "__url__", "header", "method"]
)
def test_schema_rejects_transport_keys_when_set_in_the_body(key) -> None:
    text = VALID + f"  {key}: https://evil.example\n"

    (error,) = errors_of(text)

    assert error[:2] == (9, f"body.{key}")
    assert "the target adapter fixes the URL" in error[2]


@pytest.mark.parametrize("key", ["url", "headers", "host", "Host", "__url__", "extra"])
def test_schema_rejects_unknown_top_level_keys_when_present(key) -> None:
    (error,) = errors_of(VALID + f"{key}: x\n")

    assert error[:2] == (9, key)
    assert error[2].startswith(f"unknown key '{key}'")


@pytest.mark.parametrize(
    "name", ['"a\\r\\nX-Injected: 1"', '"with space"', "UPPER", '"trailing-"', '""', '"a\\nb"']
)
def test_schema_rejects_names_when_not_a_one_line_slug(name) -> None:
    (error,) = errors_of(VALID.replace("name: ok", f"name: {name}"))

    assert error[:2] == (1, "name")
    assert "must be a slug" in error[2]


def test_schema_rejects_unknown_source_and_target_when_misspelled() -> None:
    errors = errors_of(
        VALID.replace("source: hubspot", "source: hubspotx").replace("target: matter", "target: mater")
    )

    assert [(line, field) for line, field, _ in errors] == [(2, "source"), (4, "target")]


def test_schema_requires_name_source_target_and_body_when_missing() -> None:
    errors = errors_of("description: nothing else\n")

    assert sorted(reason for _, _, reason in errors) == [
        "'body' is a required property",
        "'name' is a required property",
        "'source' is a required property",
        "'target' is a required property",
    ]


def test_bad_jmespath_fails_at_load_when_used_in_the_body() -> None:
    (error,) = errors_of(VALID.replace("event.objectId", "event.objectId["))

    assert error[:2] == (7, "body.title")
    assert "invalid expression" in error[2]


def test_bad_jmespath_fails_at_load_when_used_in_when() -> None:
    (error,) = errors_of(VALID.replace("event.propertyName == 'dealstage'", "event.propertyName === 'x'"))

    assert error[:2] == (3, "when")


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("nope(event.x)", "unknown function nope()"),
        ("lookup('missing', event.x)", "lookup table 'missing' is not defined"),
        ("lookup('t')", "lookup() takes 2 to 3 arguments, got 1"),
        ("lookup(`1`, event.x)", "lookup() takes the table name as a string"),
        ("event.a[::0]", "slice step cannot be 0"),
        ("to_iso8601(event.a, event.b)", "to_iso8601() takes 1 arguments, got 2"),
        ("evnt.objectId", "unknown name 'evnt'"),
        ("null", "the literal is `null`, in backticks"),
        # a misspelt name, function or table names the one meant
        ("evnt.objectId", "expressions see enrichment, event, meta (did you mean 'event'?)"),
        ("to_iso(event.x)", "unknown function to_iso() in 'to_iso(event.x)' (did you mean 'to_iso8601'?)"),
        ("lookup('tt', event.x)", "lookup table 'tt' is not defined in lookups (did you mean 't'?)"),
        # a syntax error names its 1-based column in the expression and what comes before it
        (
            "event.a ||| x",
            "syntax error: unexpected '|', column 11 of 'event.a ||| x' (after 'event.a ||')",
        ),
        ("length(event.a", "syntax error: the expression ends too early, column 15 of 'length(event.a'"),
    ],
)
def test_expression_checks_fail_at_load_when_an_expression_cannot_work(expression, reason) -> None:
    text = (
        VALID.replace("Deal ${{ event.objectId }}", "${{ " + expression + " }}") + "lookups:\n  t: {a: b}\n"
    )

    (error,) = errors_of(text)

    assert error[:2] == (7, "body.title")
    assert reason in error[2]


def test_when_cannot_read_enrichment_when_loaded() -> None:
    (error,) = errors_of(VALID.replace("event.propertyName == 'dealstage'", "enrichment.deal != `null`"))

    assert error[:2] == (3, "when")
    assert "before any fetch runs" in error[2]


def test_every_error_is_reported_with_its_line_when_a_file_has_several() -> None:
    text = """\
name: Bad Name
source: hubspot
target: matter
body:
  kind: audit
  url: https://example.com
  title: "${{ event.[ }}"
  occurred_at: "${{ nope() }}"
  extra_field: 1
"""

    errors = errors_of(text)

    assert [(line, field) for line, field, _ in errors] == [
        (1, "name"),
        (6, "body.url"),
        (7, "body.title"),
        (8, "body.occurred_at"),
        (9, "body.extra_field"),
    ]


def test_yaml_syntax_error_names_the_line_when_the_file_is_not_yaml() -> None:
    (error,) = errors_of("name: ok\nbody: {a: [1, 2}\n")

    assert error[0] == 2
    assert error[2].startswith("invalid YAML")


def test_duplicate_key_is_an_error_when_a_mapping_repeats_a_key() -> None:
    (error,) = errors_of(VALID + "  kind: mail\n")

    assert error == (9, "body.kind", "duplicate key")


def test_yaml_keeps_dates_and_yes_no_as_strings_when_loaded(write_mapping) -> None:
    mapping = load_mapping(
        write_mapping(
            VALID + "lookups:\n  answer: {yes: Approved, no: Rejected, on: On}\n  day: {d: 2026-01-01}\n"
        )
    )

    assert mapping.lookups == {
        "answer": {"yes": "Approved", "no": "Rejected", "on": "On"},
        "day": {"d": "2026-01-01"},
    }


def test_hubspot_id_must_depend_on_the_event_when_the_mapping_sets_it() -> None:
    base = 'name: hs\nsource: hubspot\ntarget: hubspot\nbody: {eventTemplateId: "1", objectId: "1", tokens: {}, id: ID}\n'

    (constant,) = errors_of(base.replace("ID", "fixed"))
    (random,) = errors_of(base.replace("ID", '"x-{{uuid}}-${{ event.id }}"'))

    assert constant[1] == "body.id" and "overwrite the same HubSpot event" in constant[2]
    assert random[1] == "body.id" and "{{uuid}}" in random[2]


def test_applied_deduping_key_cannot_be_set_when_it_is_not_the_job_key() -> None:
    text = "name: ap\nsource: pipedrive\ntarget: applied\nbody:\n  name: n\n  metric: {metric_name: m, deduping_key: mine}\n"

    (error,) = errors_of(text)

    assert error[1] == "body.metric.deduping_key"


def test_required_path_must_exist_in_the_body_when_listed() -> None:
    (error,) = errors_of(VALID + "required: [actor]\n")

    assert error == (9, "required[0]", "required field 'actor' is not in body")


def test_unknown_target_field_fails_at_load_when_the_contract_forbids_it() -> None:
    (error,) = errors_of(VALID + "  metadata: {}\n")

    assert error[1] == "body.metadata"
    assert "unknown field for target matter" in error[2]


def test_duplicate_mapping_names_are_an_error_when_loading_a_directory(write_mapping, tmp_path) -> None:
    write_mapping(VALID, "a.yaml")
    write_mapping(VALID, "b.yaml")
    write_mapping("- name: a case\n", "a.cases.yaml")  # cases files are not mappings

    mappings, errors, files = check_paths([tmp_path])

    assert [f.name for f in files] == ["a.yaml", "b.yaml"]
    assert len(mappings) == 1
    (error,) = errors
    assert error.field == "name" and "duplicate mapping name" in error.reason


def test_load_mappings_raises_with_every_error_when_files_are_invalid(write_mapping, tmp_path) -> None:
    write_mapping(VALID.replace("name: ok", "name: BAD"), "a.yaml")
    write_mapping(VALID.replace("kind: audit", "kind: audit\n  url: x"), "b.yaml")

    with pytest.raises(MappingLoadError) as caught:
        load_mappings(tmp_path)

    assert [(e.mapping_file.rsplit("/", 1)[-1], e.field) for e in caught.value.errors] == [
        ("a.yaml", "name"),
        ("b.yaml", "body.url"),
    ]


# --- YAML anchors and aliases: a billion laughs ------------------------------------------------

BOMB_LEVELS = 9  # ten aliases per level: 10^9 strings once expanded


def billion_laughs(head: str, indent: str = "  ") -> tuple[str, int]:
    """`head` plus nine nested levels of ten aliases each; also the line of the first anchor."""
    lines = head.rstrip("\n").splitlines()
    lines.append(f"{indent}l0: &l0 [{', '.join(['lol'] * 10)}]")
    first_anchor = len(lines)
    for level in range(1, BOMB_LEVELS):
        lines.append(f"{indent}l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    return "\n".join(lines) + "\n", first_anchor


BOUNDED_CHECK = """
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (512 * 2**20, 512 * 2**20))
started = time.monotonic()
{body}
print(json.dumps({{"seconds": time.monotonic() - started, "result": result}}))
"""


def bounded(body: str, tmp_path) -> dict:
    """Run `body` (which sets `result`) in a child limited to 512 MiB and 60 s: on a loader that
    expands aliases the child fails (MemoryError or the timeout) instead of eating the machine."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", BOUNDED_CHECK.format(body=body)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the loader did not refuse the alias bomb within 60 s")
    assert done.returncode == 0, f"the loader did not refuse the alias bomb:\n{done.stderr[-2000:]}"
    return json.loads(done.stdout)


def test_billion_laughs_refused_quickly_at_its_first_anchor_when_a_mapping_file_holds_one(tmp_path) -> None:
    text, line = billion_laughs(VALID + "lookups:\n")
    (tmp_path / "bomb.yaml").write_text(text)

    outcome = bounded(
        "from timeline_bridge.mapping.loader import check_file\n"
        "mapping, errors = check_file('bomb.yaml')\n"
        "result = [mapping is None, [str(e) for e in errors]]",
        tmp_path,
    )

    assert outcome["result"] == [True, [f"bomb.yaml:{line}: YAML anchors (&l0) are not allowed: write each value out"]]  # fmt: skip
    assert outcome["seconds"] < 2


def test_billion_laughs_reported_with_file_and_line_when_bridge_validate_checks_it(tmp_path) -> None:
    text, line = billion_laughs(VALID + "lookups:\n")
    (tmp_path / "bomb.yaml").write_text(text)

    outcome = bounded(
        "import contextlib, io\n"
        "from timeline_bridge_tools.cli import main\n"
        "out, err = io.StringIO(), io.StringIO()\n"
        "with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        "    code = main(['validate', 'bomb.yaml'])\n"
        "result = [code, out.getvalue(), err.getvalue()]",
        tmp_path,
    )

    code, out, err = outcome["result"]
    assert code == 1
    assert out.startswith(f"bomb.yaml:{line}: YAML anchors (&l0) are not allowed")
    assert "1 error(s) in 1 of 1 mapping file(s)" in err


@pytest.mark.parametrize(
    ("text", "line", "reason"),
    [
        pytest.param(VALID + "  note: &n hello\n", 9, "YAML anchors (&n) are not allowed", id="anchor"),
        pytest.param(VALID + "  note: *n\n", 9, "YAML aliases (*n) are not allowed", id="alias"),
        pytest.param(
            VALID.replace("body:\n", "base: &b {kind: audit}\nbody:\n  <<: *b\n"),
            5,
            "YAML anchors (&b) are not allowed",
            id="merge-key",
        ),
    ],
)
def test_anchor_or_alias_is_an_error_at_its_line_when_a_mapping_uses_one(text, line, reason) -> None:
    (error,) = errors_of(text)

    assert (error[0], error[1]) == (line, "")
    assert error[2].startswith(reason)


@pytest.mark.parametrize("block", ["lookups", "enrich"])
def test_a_block_written_as_text_is_an_error_not_a_crash(block) -> None:
    # `lookups: |` (a block scalar where a mapping belongs) was found by the mapping-loader fuzzer.
    text = (
        "name: m\nsource: pipedrive\ntarget: matter\n"
        "body: {kind: audit, title: t, occurred_at: '2025-01-01T00:00:00Z', actor: a}\n"
        f"{block}: |\n  stage: Qualified\n"
    )
    mapping, errors = check_text(text, "m.yaml")
    assert mapping is None
    assert any(e.field == block for e in errors), errors
