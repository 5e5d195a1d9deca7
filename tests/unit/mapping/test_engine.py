"""Rendering semantics: `${{ }}` interpolation, types, missing values, idempotency fields, errors."""

from __future__ import annotations

import pytest
from timeline_bridge.errors import MappingError
from timeline_bridge.keys import job_key


def test_whole_expression_keeps_the_json_type_when_the_string_is_only_the_expression(render_extra) -> None:
    event = {"n": 3, "f": 1.5, "b": True, "o": {"k": [1, "x"]}, "l": [1, 2], "s": "text"}

    out = render_extra(
        """\
        n: "${{ event.n }}"
        f: "${{ event.f }}"
        b: "${{ event.b }}"
        o: "${{ event.o }}"
        l: "${{ event.l }}"
        s: "${{ event.s }}"
        spaced: "  ${{ event.n }}"
        """,
        event,
    )

    assert out == {
        "n": 3,
        "f": 1.5,
        "b": True,
        "o": {"k": [1, "x"]},
        "l": [1, 2],
        "s": "text",
        "spaced": "  3",
    }


def test_values_are_stringified_when_interpolated_inside_text(render_extra) -> None:
    event = {"n": 42, "f": 2.5, "b": False, "o": {"a": 1}, "l": ["x", 2], "s": "ok"}

    out = render_extra(
        """\
        text: "n=${{ event.n }} f=${{ event.f }} b=${{ event.b }} o=${{ event.o }} l=${{ event.l }} s=${{ event.s }}"
        """,
        event,
    )

    assert out == {"text": 'n=42 f=2.5 b=false o={"a":1} l=["x",2] s=ok'}


def test_double_braces_without_dollar_are_left_alone_when_rendering(render_extra) -> None:
    out = render_extra(
        """\
        liquid: "{{ contact }} moved {% if x %}{{ x }}{% endif %}"
        mixed: "{{uuid}}-${{ event.id }}-{{ other }}"
        """,
        {"id": 7},
    )

    assert out == {
        "liquid": "{{ contact }} moved {% if x %}{{ x }}{% endif %}",
        "mixed": "{{uuid}}-7-{{ other }}",
    }


def test_braces_inside_the_expression_are_part_of_it_when_a_hash_is_built(render_extra) -> None:
    out = render_extra(
        """\
        hash: "${{ {id: event.id, tag: 'a}}b'} }}"
        """,
        {"id": 7},
    )

    assert out == {"hash": {"id": 7, "tag": "a}}b"}}


def test_field_is_left_out_when_a_whole_expression_is_null(render_extra) -> None:
    out = render_extra(
        """\
        present: "${{ event.a }}"
        missing: "${{ event.nope }}"
        explicit_null: null
        nested: {inner: "${{ event.nope.deeper }}"}
        listed: ["${{ event.nope }}", "${{ event.a }}"]
        """,
        {"a": 1},
    )

    assert out == {"present": 1, "explicit_null": None, "nested": {}, "listed": [None, 1]}


def test_mapping_error_names_file_line_and_field_when_a_value_inside_text_is_missing(
    make_envelope, compile_mapping
) -> None:
    mapping = compile_mapping(
        """\
        name: m
        source: hubspot
        target: matter
        body:
          kind: audit
          title: "Deal ${{ event.name }} moved"
          occurred_at: "2026-01-01T00:00:00Z"
        """
    )

    with pytest.raises(MappingError) as caught:
        mapping.render(make_envelope({"id": 1}))

    error = caught.value
    assert error.field == "body.title"
    assert error.line == 6
    assert error.mapping_file.endswith("m.yaml")
    assert "event.name" in error.reason and "missing" in error.reason
    assert str(error).startswith(f"{error.mapping_file}:6: body.title: ")


def test_default_and_or_fill_a_missing_value_when_inside_text(render_extra) -> None:
    out = render_extra(
        """\
        a: "x ${{ default(event.nope, 'fallback') }}"
        b: "x ${{ event.nope || 'other' }}"
        c: "${{ default(event.empty, 'was empty') }}"
        d: "${{ default(event.zero, 'kept') }}"
        """,
        {"empty": "", "zero": 0},
    )

    assert out == {"a": "x fallback", "b": "x other", "c": "was empty", "d": 0}


def test_lookup_uses_the_table_and_its_default_when_keys_are_strings_or_numbers(render_extra) -> None:
    lookups = 'lookups:\n  stage: {1: One, "2": Two, closedwon: Won, "true": Yes}\n'

    out = render_extra(
        """\
        by_int: "${{ lookup('stage', event.i) }}"
        by_str_number: "${{ lookup('stage', event.s) }}"
        by_word: "${{ lookup('stage', 'closedwon') }}"
        by_bool: "${{ lookup('stage', `true`) }}"
        fallback: "${{ lookup('stage', 'unknown', 'n/a') }}"
        null_default: "${{ lookup('stage', 'unknown', `null`) }}"
        dynamic_table: "${{ lookup(event.table, 'closedwon') }}"
        """,
        {"i": 1, "s": "2", "table": "stage"},
        lookups=lookups,
    )

    assert out == {
        "by_int": "One",
        "by_str_number": "Two",
        "by_word": "Won",
        "by_bool": "Yes",
        "fallback": "n/a",
        "dynamic_table": "Won",
    }


def test_lookup_without_default_is_a_mapping_error_when_the_key_is_absent(render_extra) -> None:
    with pytest.raises(MappingError, match=r"body\.extraData\.v: .*no entry for 'zz'"):
        render_extra("v: \"${{ lookup('t', event.k) }}\"\n", {"k": "zz"}, lookups="lookups:\n  t: {a: b}\n")


def test_dynamic_table_name_is_a_mapping_error_when_no_such_table(render_extra) -> None:
    with pytest.raises(MappingError, match="lookup table 'nope' is not defined"):
        render_extra("v: \"${{ lookup(event.t, 'a') }}\"\n", {"t": "nope"}, lookups="lookups:\n  t: {a: b}\n")


def test_expressions_see_event_meta_and_enrichment_when_rendering(make_envelope, compile_mapping) -> None:
    mapping = compile_mapping(
        """\
        name: sees-everything
        source: generic
        target: hubspot
        body:
          eventTemplateId: "1"
          objectId: "1"
          tokens: {}
          extraData:
            event: "${{ event.x }}"
            meta: "${{ meta }}"
            enrichment: "${{ enrichment.user.name }}"
        """
    )
    env = make_envelope(
        {"x": 1}, source="generic", event_id="e-9", name="billing", occurred_at="2026-01-02T00:00:00Z"
    )

    extra = mapping.render(env, {"user": {"name": "Ada"}}).body["extraData"]

    assert extra == {
        "event": 1,
        "meta": {
            "source": "generic",
            "event_type": "deal.propertyChange",
            "event_id": "e-9",
            "occurred_at": "2026-01-02T00:00:00Z",
            "received_at": "2026-01-01T00:00:00.000Z",
            "name": "billing",
            "key": job_key("generic.billing", "e-9", "sees-everything"),
        },
        "enrichment": "Ada",
    }


def test_hubspot_id_is_the_job_key_when_the_mapping_does_not_set_one(
    make_envelope, render_extra, compile_mapping
) -> None:
    mapping = compile_mapping(
        """\
        name: hs
        source: hubspot
        target: hubspot
        body: {eventTemplateId: "1", objectId: "1", tokens: {}}
        """
    )

    job = mapping.render(make_envelope({}, event_id="abc"))

    assert job.key == job_key("hubspot", "abc", "hs")
    assert job.body["id"] == job.key


def test_hubspot_id_comes_from_the_mapping_when_it_derives_one_from_the_event(
    make_envelope, compile_mapping
) -> None:
    mapping = compile_mapping(
        """\
        name: hs
        source: hubspot
        target: hubspot
        body: {eventTemplateId: "1", objectId: "1", tokens: {}, id: "deal-${{ event.objectId }}-${{ event.occurredAt }}"}
        """
    )

    assert mapping.render(make_envelope({"objectId": 5, "occurredAt": 9})).body["id"] == "deal-5-9"


def test_applied_deduping_key_is_the_job_key_when_there_is_a_metric(make_envelope, compile_mapping) -> None:
    mapping = compile_mapping(
        """\
        name: ap
        source: pipedrive
        target: applied
        body:
          name: Deal moved
          contact: {remote_id: "p-${{ event.person }}"}
          metric: "${{ event.metric }}"
        """
    )
    shared_metric = {"metric_name": "m", "value": 1}
    with_metric = mapping.render(
        make_envelope({"person": 1, "metric": shared_metric}, source="pipedrive", event_id="x")
    )
    without_metric = mapping.render(make_envelope({"person": 1}, source="pipedrive", event_id="x"))

    assert with_metric.body["metric"] == {"metric_name": "m", "value": 1, "deduping_key": with_metric.key}
    assert shared_metric == {"metric_name": "m", "value": 1}  # the event itself is never modified
    assert "metric" not in without_metric.body


def test_required_value_is_a_mapping_error_when_it_renders_empty(make_envelope, compile_mapping) -> None:
    mapping = compile_mapping(
        """\
        name: req
        source: hubspot
        target: matter
        body:
          kind: audit
          title: t
          occurred_at: "2026-01-01T00:00:00Z"
          actor: "${{ event.who }}"
        required: [actor]
        """
    )

    assert mapping.render(make_envelope({"who": "ada"})).body["actor"] == "ada"
    for event in ({}, {"who": ""}, {"who": "   "}):
        with pytest.raises(MappingError) as caught:
            mapping.render(make_envelope(event))
        assert (caught.value.field, caught.value.reason, caught.value.line) == (
            "body.actor",
            "required value is empty",
            8,
        )


def test_contract_violation_names_the_field_when_the_body_breaks_the_target_schema(
    make_envelope, compile_mapping
) -> None:
    mapping = compile_mapping(
        """\
        name: bad-kind
        source: hubspot
        target: matter
        body:
          kind: "${{ event.kind }}"
          title: t
          occurred_at: "${{ event.at }}"
        """
    )

    with pytest.raises(MappingError) as kind_error:
        mapping.render(make_envelope({"kind": "party", "at": "2026-01-01T00:00:00Z"}))
    with pytest.raises(MappingError) as time_error:
        mapping.render(make_envelope({"kind": "audit", "at": "yesterday"}))

    assert kind_error.value.field == "body.kind"
    assert kind_error.value.line == 5
    assert "breaks the matter contract" in kind_error.value.reason
    assert "must be one of" in kind_error.value.reason
    assert time_error.value.field == "body.occurred_at"
    assert "date-time" in time_error.value.reason


def test_stora_variables_must_be_strings_when_validated(make_envelope, compile_mapping) -> None:
    mapping = compile_mapping(
        """\
        name: st
        source: hubspot
        target: stora
        body:
          template: {id: aetpl_6b92d7693eb7e8e9}
          source: {id: tsrc_126b43585fea94ad}
          variables:
            amount: "${{ event.amount }}"
        """
    )

    assert mapping.render(make_envelope({"amount": "10"})).body["variables"] == {"amount": "10"}
    with pytest.raises(
        MappingError, match=r"body\.variables\.amount: breaks the stora contract: must be string"
    ):
        mapping.render(make_envelope({"amount": 10}))


def test_expression_type_error_is_a_mapping_error_when_a_function_gets_the_wrong_type(render_extra) -> None:
    with pytest.raises(
        MappingError, match=r"body\.extraData\.v: \$\{\{ upper\(event\.n\) \}\}: .*invalid type"
    ):
        render_extra('v: "${{ upper(event.n) }}"\n', {"n": 5})


def test_nan_and_infinity_are_mapping_errors_when_a_whole_expression_yields_them(render_extra) -> None:
    for event in ({"x": float("nan")}, {"x": float("inf")}, {"x": {"deep": [1, float("-inf")]}}):
        with pytest.raises(MappingError, match=r"body\.extraData\.v: .*NaN or Infinity"):
            render_extra('v: "${{ event.x }}"\n', event)
