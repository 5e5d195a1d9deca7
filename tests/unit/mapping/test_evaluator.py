"""The one evaluator agrees with jmespath, a body template's load-time contract problems are the
ones it has for good, and every body the engine accepts passes its target's schema."""

from __future__ import annotations

from pathlib import Path

import jmespath
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from timeline_bridge import SOURCES
from timeline_bridge.config import Settings
from timeline_bridge.errors import MappingError
from timeline_bridge.mapping import load_mappings
from timeline_bridge.mapping.contracts import (
    template_problems,
    validate_body,
)
from timeline_bridge.mapping.expressions import BridgeFunctions, compile_expression
from timeline_bridge.models import Envelope

ROOT = Path(__file__).resolve().parents[3]
# A function's settings with nothing set: HubSpot bodies naming no API are v3 ones.
SETTINGS = Settings.from_environ({})
SHIPPED = load_mappings(ROOT / "mappings", settings=SETTINGS)
FUNCTIONS = BridgeFunctions({"stage": {"1": "One", "closedwon": "Won"}})

EXPRESSIONS = [
    "a", "a.b", "a.b.c", "a[0]", "a[-1].b", "a[5]", "a[-3]", "a.b[0][1].c", "a[1:3]", "a[::-1]",
    "a[*].b", "a[].b", "a[?b == `1`].c", "a[?b > `1`]", "a.*",
    "a || b", "a && b", "!a", "!a.b", "a == b", "a == 'x'", "'x' == a", "a == `null`", "`null` != a",
    "a != `0`", "a == `true`", "a < b", "a >= `2`", "{x: a, y: b.c}", "[a, b]", "a | b", "@", "@.a",
    "`[1, {\"k\": 2}]`", "`1.5`", "length(a)", "to_string(a)", "to_number(a)", "join(',', a)",
    "contains(a, `1`)", "starts_with(a, 'x')", "sort_by(a, &b)", "max_by(a, &b)", "map(&b, a)",
    "type(a)", "keys(a)", "not_null(a, b, 'z')",
    "default(a, 'fallback')", "lookup('stage', a, 'none')", "lookup('stage', a, b)", "lower(a)",
    "uuid5(a)", "to_iso8601(a)", "to_epoch_ms(a)", "minor_units(a, 'eur')", "a.b || c && !a",
    # a boolean left side (Python's own and/or), and calls computed once when used twice
    "a == 'x' && b", "a == 'x' || b", "!(a == 'x')", "a == 'x' && b == `1` || c", "a != `null` && !b",
    "a < b || c", "[to_string(a), to_string(a)]", "lookup('stage', a, 'z') == lookup('stage', a, 'z')",
    "b || to_string(a) && to_string(a)", "{x: lookup('stage', a), y: b || lookup('stage', a)}",
    "join('-', [to_string(a), 'k']) || to_string(a)", "lookup('stage', to_string(a), a)",
]  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.integers(min_value=10**9, max_value=10**13)
    | st.floats(allow_nan=False, width=16)
    | st.text(max_size=3)
    | st.sampled_from(["x", "closedwon", "1", "2019-01-25T14:26:57Z", ""]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3)
    ),
    max_leaves=12,
)
documents = st.dictionaries(st.sampled_from("abc"), json_values, max_size=3)


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception as exc:
        return ("error", type(exc).__name__)


@settings(max_examples=40, deadline=None)
@given(data=documents)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_compiled_expression_matches_jmespath_when_evaluated_on_any_document(expression, data) -> None:
    compiled = compile_expression(expression, FUNCTIONS)
    options = jmespath.Options(custom_functions=FUNCTIONS)

    expected = _outcome(lambda: jmespath.search(expression, data, options=options))
    actual = _outcome(lambda: compiled(data))

    assert actual == expected


def test_compiled_expression_reads_keys_and_literals_as_data_when_they_look_like_code() -> None:
    tricky = "k'); __import__('os').system('exit 1'); ('"
    expression = f'{{"{tricky}": a}}."{tricky}" || `"{tricky}"`'
    compiled = compile_expression(expression, FUNCTIONS)

    assert compiled({"a": None}) == tricky
    assert compiled({"a": 1}) == 1


KEYS = st.sampled_from(
    ["subscriptionType", "propertyName", "propertyValue", "objectId", "portalId", "occurredAt", "type",
     "user", "actions", "action_id", "action_ts", "value", "message", "text", "team", "container", "meta",
     "data", "previous", "version", "action", "entity", "stage_id", "person_id", "id", "title", "name"]
)  # fmt: skip
VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 10**13)
    | st.text(max_size=8)
    | st.sampled_from(
        ["deal.propertyChange", "dealstage", "contractsent", "block_actions", "approve_button", "2.0",
         "change", "deal", "1548426417.840180", "2025-11-23T12:01:55Z", "con_1", "U1", "maria"]
    ),
    lambda children: st.lists(children, max_size=2) | st.dictionaries(KEYS, children, max_size=4),
    max_leaves=20,
)  # fmt: skip
EVENTS = st.dictionaries(KEYS, VALUES, max_size=8)


STORA_REFS = {"source": {"id": "tsrc_1"}, "template": {"id": "aetpl_1"}}


@pytest.mark.parametrize(
    ("target", "template", "rendered"),
    [
        ("stora", {**STORA_REFS, "contact": {"id": "${{ x }}"}}, {**STORA_REFS, "contact": {"id": "con_1"}}),
        ("stora", {**STORA_REFS, "contact": {"id": "${{ x }}"}}, {**STORA_REFS, "contact": {"id": 5}}),
        ("stora", {**STORA_REFS, "contact": {"id": "${{ x }}"}}, {**STORA_REFS, "contact": {}}),
        ("stora", {**STORA_REFS, "external": {"url": "${{ x }}"}}, {**STORA_REFS, "external": {"url": "not a url"}}),
        ("stora", {**STORA_REFS, "variables": {"a": "${{ x }}"}}, {**STORA_REFS, "variables": {"a": ["list"]}}),
        ("matter", {"kind": "${{ x }}", "title": "t ${{ y }}", "occurred_at": "${{ z }}"}, {"title": "t a"}),
        ("matter", {"kind": "${{ x }}", "title": "t ${{ y }}", "occurred_at": "${{ z }}"}, {"kind": "party", "title": "t", "occurred_at": "2026-01-01T00:00:00Z"}),
        ("matter", {"kind": "${{ x }}", "title": "t ${{ y }}", "occurred_at": "${{ z }}"}, {"kind": "audit", "title": "t", "occurred_at": "2026-01-01"}),
        ("matter", {"kind": "audit", "title": "${{ y }}", "occurred_at": "2026-01-01T00:00:00Z"}, {"kind": "audit", "title": "", "occurred_at": "2026-01-01T00:00:00Z"}),
        ("hubspot", {"eventTemplateId": "1", "id": "k", "tokens": {}, "objectId": "${{ x }}"}, {"eventTemplateId": "1", "id": "k", "tokens": {}}),
        ("hubspot", {"eventTemplateId": "1", "id": "k", "tokens": {"a": "${{ x }}"}, "objectId": "1"}, {"eventTemplateId": "1", "id": "k", "tokens": {"a": {"o": 1}}, "objectId": "1"}),
        ("hubspot", {"eventTemplateId": "1", "tokens": {}, "objectId": "1", "id": "${{ x }}"}, {"eventTemplateId": "1", "tokens": {}, "objectId": "1", "id": "a{{uuid}}"}),
        ("applied", {"name": "n", "contact": "${{ x }}"}, {"name": "n"}),
        ("applied", {"name": "n", "contact": "${{ x }}"}, {"name": "n", "contact": {"remote_id": 1}}),
        ("applied", {"name": "n", "metric": {"metric_name": "m", "metric_object_id": "${{ x }}"}}, {"name": "n", "metric": {"metric_name": "m", "metric_object_id": "nope"}}),
    ],
)  # fmt: skip
def test_template_has_no_load_problem_when_free_values_decide_the_verdict(target, template, rendered) -> None:
    # `rendered` is one body the template can give: whether it passes is the run-time check's to
    # say (the full schema), so the load reports nothing.
    assert template_problems(target, template, SETTINGS) == []


def test_template_problems_name_constant_violations_when_the_mapping_loads() -> None:
    problems = template_problems(
        "stora", {"source": {"id": "src_wrong"}, "template": {"id": "aetpl_1"}, "oops": "${{ x }}"}, SETTINGS
    )

    assert [(p.field, p.reason) for p in problems] == [
        ("source.id", "must match pattern ^tsrc_[0-9A-Za-z]+$"),
        ("", "must not contain {'oops'} properties"),
    ]


# --- what the engine accepts ----------------------------------------------------------------------


def _rendered(mapping, context):
    try:
        return ("ok", mapping.render_body(context))
    except MappingError as exc:
        return ("refused", exc.field, exc.reason)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), event=EVENTS, enrichment=st.dictionaries(KEYS, VALUES, max_size=4))
def test_rendered_body_passes_the_target_schema_when_events_are_arbitrary(source, event, enrichment) -> None:
    envelope = Envelope(source, "any", "evt-1", None, "2026-01-01T00:00:00.000Z", event)
    for mapping in SHIPPED.for_source(source):
        outcome = _rendered(mapping, mapping.context(envelope, enrichment))
        if outcome[0] == "ok":
            validate_body(mapping.target, outcome[1], SETTINGS)


FREE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 10**6)
    | st.floats(allow_nan=True, allow_infinity=True, width=16)
    | st.text(max_size=6)
    | st.sampled_from(
        ["con_1", "con_", "con_é", "x y", "a\u00a0b", "a\tb", "a\x7fb", "a\u2028b", " ", "", "https://x",
         "https://x y", "mailto:a", "2026-01-01T00:00:00Z", "2026-01-01", "audit", "party", "1", "tb-1"]
    ),
    lambda children: st.lists(children, max_size=2) | st.dictionaries(st.sampled_from(["remote_id", "o"]), children, max_size=2),
    max_leaves=4,
)  # fmt: skip

STORA_HEAD = {"source": {"id": "tsrc_1"}, "template": {"id": "aetpl_1"}}
TEMPLATES = [
    ("stora", {**STORA_HEAD, "contact": {"id": "${{ event.x }}"}}, ["contact.id"]),
    ("stora", {**STORA_HEAD, "contact": {"id": "${{ event.x || lookup('ids', event.y, `null`) }}"}}, []),
    ("stora", {**STORA_HEAD, "external": {"id": "d_${{ event.x }}", "url": "https://h/${{ event.y }}"}}, []),
    ("stora", {**STORA_HEAD, "external": {"id": "${{ event.x }}${{ event.y }}", "url": "${{ event.x }}:${{ event.y }}"}}, []),
    ("stora", {**STORA_HEAD, "variables": {"a": "${{ event.x }}", "b": "${{ to_string(event.y) }}", "c": "v ${{ event.x }}"}}, ["variables.a", "variables.c"]),
    ("stora", {**STORA_HEAD, "description": "${{ event.x }}", "variables": {"a": "${{ event.y || join(' ', ['D', to_string(event.x)]) }}"}}, ["description"]),
    ("matter", {"kind": "${{ event.x }}", "title": "t ${{ event.y }}", "occurred_at": "${{ to_iso8601(event.z) }}", "ref": "${{ event.x }}"}, ["title"]),
    ("matter", {"kind": "audit", "title": "${{ event.y }}", "occurred_at": "${{ event.z }}", "actor": "${{ event.x }}"}, ["actor"]),
    ("hubspot", {"eventTemplateId": "1", "objectId": "${{ to_string(event.x) }}", "tokens": {"a": "${{ event.y }}", "b": "${{ event.z }}"}}, ["tokens.a"]),
    ("hubspot", {"eventTemplateId": "1", "objectId": "1", "tokens": {}, "id": "${{ event.x }}", "extraData": "${{ event.y }}"}, []),
    ("applied", {"name": "n ${{ event.x }}", "contact": "${{ event.y }}", "metric": {"metric_name": "m", "metric_object_id": "${{ event.z }}", "value": "${{ event.x }}"}}, []),
    ("applied", {"name": "${{ event.x }}", "event_time": "${{ event.z }}", "metric": "${{ event.y }}"}, []),
]  # fmt: skip


def _compiled(target, body, required):
    from timeline_bridge.mapping.engine import compile_mapping

    data = {"name": "t", "source": "hubspot", "target": target, "body": body, "required": required}
    data["lookups"] = {"ids": {"1": "con_1", "2": "nope"}}
    mapping, errors = compile_mapping(data, {}, "t.yaml", SETTINGS)
    assert mapping is not None, errors
    return mapping


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=FREE, y=FREE, z=FREE, key=st.sampled_from(["tb-1", ""]))
@pytest.mark.parametrize(("target", "body", "required"), TEMPLATES)
def test_rendered_body_passes_the_target_schema_when_free_values_vary(
    target, body, required, x, y, z, key
) -> None:
    mapping = _compiled(target, body, required)
    envelope = Envelope("hubspot", "any", "evt-1", None, "2026-01-01T00:00:00.000Z", {"x": x, "y": y, "z": z})
    outcome = _rendered(mapping, mapping.context(envelope, {}, key))
    if outcome[0] == "ok":
        validate_body(target, outcome[1], SETTINGS)
    else:
        assert outcome[1].startswith("body")


def test_render_names_the_field_when_a_value_breaks_the_contract() -> None:
    mapping = _compiled("stora", {**STORA_HEAD, "contact": {"id": "${{ event.x }}"}}, ["contact.id"])
    envelope = Envelope("hubspot", "any", "evt-1", None, "2026-01-01T00:00:00.000Z", {"x": "cust_1"})

    with pytest.raises(MappingError) as error:
        mapping.render_body(mapping.context(envelope, {}))

    assert error.value.field == "body.contact.id"
    assert "breaks the stora contract" in error.value.reason
