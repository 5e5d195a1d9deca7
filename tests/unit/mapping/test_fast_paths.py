"""The fast paths agree with the exact ones: generated code with jmespath and the closures, the
planned contract check with the full target schema."""

from __future__ import annotations

import json
from pathlib import Path

import jmespath
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from timeline_bridge import SOURCES
from timeline_bridge.mapping import load_mappings
from timeline_bridge.mapping.codegen import compile_value
from timeline_bridge.mapping.contracts import (
    ContractViolation,
    EmptyRequiredValue,
    plan_contract,
    validate_body,
)
from timeline_bridge.mapping.engine import RenderError
from timeline_bridge.mapping.expressions import BridgeFunctions
from timeline_bridge.models import Envelope

ROOT = Path(__file__).resolve().parents[3]
SHIPPED = load_mappings(ROOT / "mappings")
FUNCTIONS = BridgeFunctions({"stage": {"1": "One", "closedwon": "Won"}})

EXPRESSIONS = [
    "a", "a.b", "a.b.c", "a[0]", "a[-1].b", "a[5]", "a[1:3]", "a[*].b", "a[?b == `1`].c", "a.*",
    "a || b", "a && b", "!a", "!a.b", "a == b", "a == 'x'", "'x' == a", "a == `null`", "`null` != a",
    "a != `0`", "a == `true`", "a < b", "a >= `2`", "{x: a, y: b.c}", "[a, b]", "a | b", "@", "@.a",
    "`[1, {\"k\": 2}]`", "`1.5`", "length(a)", "to_string(a)", "to_number(a)", "join(',', a)",
    "contains(a, `1`)", "starts_with(a, 'x')", "sort_by(a, &b)", "not_null(a, b, 'z')",
    "default(a, 'fallback')", "lookup('stage', a, 'none')", "lookup('stage', a, b)", "lower(a)",
    "uuid5(a)", "to_iso8601(a)", "to_epoch_ms(a)", "a.b || c && !a",
]  # fmt: skip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.integers(min_value=10**9, max_value=10**13)
    | st.floats(allow_nan=False, width=16)
    | st.text(max_size=3)
    | st.sampled_from(["x", "closedwon", "1", "2019-01-25T14:26:57Z", ""]),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3)
    ),
    max_leaves=10,
)
documents = st.dictionaries(st.sampled_from("abc"), json_values, max_size=3)


def _outcome(fn):
    try:
        return ("ok", fn())
    except Exception:
        return ("error",)


@settings(max_examples=40, deadline=None)
@given(data=documents)
@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_generated_expression_matches_jmespath_when_evaluated_on_any_document(expression, data) -> None:
    generated = compile_value(expression, FUNCTIONS)
    assert generated is not None
    options = jmespath.Options(custom_functions=FUNCTIONS)

    expected = _outcome(lambda: jmespath.search(expression, data, options=options))
    actual = _outcome(lambda: generated(data))

    assert actual == expected


def test_generated_code_holds_mapping_text_as_data_when_keys_and_strings_look_like_code() -> None:
    tricky = "k'); __import__('os').system('exit 1'); ('"
    expression = f'{{"{tricky}": a}}."{tricky}" || `"{tricky}"`'
    jmespath.compile(expression)  # a valid expression: a quoted key and a JSON literal
    generated = compile_value(expression, FUNCTIONS)

    assert generated is not None
    assert generated({"a": None}) == tricky
    assert generated({"a": 1}) == 1


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


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(SOURCES), event=EVENTS, enrichment=st.dictionaries(KEYS, VALUES, max_size=4))
def test_fast_body_and_planned_contract_agree_with_the_exact_ones_when_events_are_arbitrary(
    source, event, enrichment
) -> None:
    envelope = Envelope(source, "any", "evt-1", None, "2026-01-01T00:00:00.000Z", event)
    for mapping in SHIPPED.for_source(source):
        context = mapping.context(envelope, enrichment)
        try:
            exact = mapping._body(context)
        except RenderError:
            continue
        if mapping._fast_body is not None:
            try:
                fast = mapping._fast_body(context)
            except Exception:
                fast = exact  # refused: the engine renders with the closures instead
            assert fast == exact
        body = _with_bridge_fields(mapping, exact, context["meta"]["key"])
        assert mapping._contract is not None
        try:
            mapping._check_required(body)  # the plan checks `required:` first
        except EmptyRequiredValue:
            with pytest.raises(EmptyRequiredValue):
                mapping._contract(body)
            continue
        planned = _verdict(lambda m=mapping, b=body: m._contract(b))
        assert planned == _verdict(lambda m=mapping, b=body: validate_body(m.target, b))


def _with_bridge_fields(mapping, body, key):
    body = json.loads(json.dumps(body))
    if mapping.target == "hubspot" and "id" not in mapping.raw["body"]:
        body["id"] = key
    if mapping.target == "applied" and isinstance(body.get("metric"), dict):
        body["metric"]["deduping_key"] = key
    return body


def _verdict(check) -> str:
    try:
        check()
    except ContractViolation:
        return "refused"
    return "accepted"


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
        ("hubspot", {"eventTemplateId": "1", "tokens": {}, "objectId": "${{ x }}"}, {"eventTemplateId": "1", "tokens": {}}),
        ("hubspot", {"eventTemplateId": "1", "tokens": {"a": "${{ x }}"}, "objectId": "1"}, {"eventTemplateId": "1", "tokens": {"a": {"o": 1}}, "objectId": "1"}),
        ("hubspot", {"eventTemplateId": "1", "tokens": {}, "objectId": "1", "id": "${{ x }}"}, {"eventTemplateId": "1", "tokens": {}, "objectId": "1", "id": "a{{uuid}}"}),
        ("applied", {"name": "n", "contact": "${{ x }}"}, {"name": "n"}),
        ("applied", {"name": "n", "contact": "${{ x }}"}, {"name": "n", "contact": {"remote_id": 1}}),
        ("applied", {"name": "n", "metric": {"metric_name": "m", "metric_object_id": "${{ x }}"}}, {"name": "n", "metric": {"metric_name": "m", "metric_object_id": "nope"}}),
    ],
)  # fmt: skip
def test_planned_contract_gives_the_schema_verdict_when_free_values_vary(target, template, rendered) -> None:
    plan = plan_contract(target, template)

    assert plan is not None and not plan.problems
    assert _verdict(lambda: plan(rendered)) == _verdict(lambda: validate_body(target, rendered))


def test_planned_contract_reports_constant_violations_when_the_mapping_loads() -> None:
    plan = plan_contract(
        "stora", {"source": {"id": "src_wrong"}, "template": {"id": "aetpl_1"}, "oops": "${{ x }}"}
    )

    assert plan is not None
    assert [(p.field, p.reason) for p in plan.problems] == [
        ("source.id", "must match pattern ^tsrc_[0-9A-Za-z]+$"),
        ("", "must not contain {'oops'} properties"),
    ]
