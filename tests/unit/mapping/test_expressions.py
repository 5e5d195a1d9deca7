"""The extra JMESPath functions, `${{ }}` splitting, and literals handed out fresh (test_evaluator.py
holds every expression to jmespath itself)."""

from __future__ import annotations

import uuid

import pytest
from jmespath import exceptions as jp_exceptions
from timeline_bridge.keys import JOB_NAMESPACE
from timeline_bridge.mapping.expressions import (
    BridgeFunctions,
    ExpressionError,
    compile_expression,
    split_template,
)

FUNCTIONS = BridgeFunctions({"stage": {"1": "One", "closedwon": "Won"}})


def evaluate(expression: str, data: object) -> object:
    return compile_expression(expression, FUNCTIONS)(data)


@pytest.mark.parametrize(
    ("value", "iso", "millis"),
    [
        ("2019-01-25T14:26:57Z", "2019-01-25T14:26:57Z", 1548426417000),
        ("2019-01-25T15:26:57.840+01:00", "2019-01-25T14:26:57.840Z", 1548426417840),
        ("2019-01-25T14:26:57", "2019-01-25T14:26:57Z", 1548426417000),  # no offset: UTC
        ("2019-01-25", "2019-01-25T00:00:00Z", 1548374400000),
        (1548426417, "2019-01-25T14:26:57Z", 1548426417000),  # epoch seconds
        (1548426417840, "2019-01-25T14:26:57.840Z", 1548426417840),  # epoch milliseconds
        (1548426417.84, "2019-01-25T14:26:57.840Z", 1548426417840),
        ("1548426417", "2019-01-25T14:26:57Z", 1548426417000),  # numeric strings
        ("1548426417840", "2019-01-25T14:26:57.840Z", 1548426417840),
        ("1548426417.840180", "2019-01-25T14:26:57.840Z", 1548426417840),  # Slack's action_ts
        (99999999999, "5138-11-16T09:46:39Z", 99999999999000),  # just under 10^11: still seconds
        (100000000000, "1973-03-03T09:46:40Z", 100000000000),  # 10^11 and up: milliseconds
        (0, "1970-01-01T00:00:00Z", 0),
    ],
)
def test_time_functions_agree_when_given_every_supported_form(value, iso, millis) -> None:
    assert evaluate("to_iso8601(@)", value) == iso
    assert evaluate("to_epoch_ms(@)", value) == millis


def test_time_functions_return_null_when_the_value_is_null() -> None:
    assert evaluate("to_iso8601(missing)", {}) is None
    assert evaluate("to_epoch_ms(missing)", {}) is None


@pytest.mark.parametrize("value", ["yesterday", "", "12:00", "2019-13-40T00:00:00Z", "1e999", "9" * 40])
def test_time_functions_raise_when_the_value_is_not_a_time(value) -> None:
    with pytest.raises(ExpressionError):
        evaluate("to_iso8601(@)", value)


@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59-01:00",  # past the year 9999 once in UTC
        "0001-01-01T00:00:00+01:00",  # before the year 1 once in UTC
        10**400,
        -(10**400),
        1e308,
        "1" + "0" * 400,
    ],
)
@pytest.mark.parametrize("function", ["to_iso8601", "to_epoch_ms"])
def test_time_functions_raise_out_of_range_when_the_time_leaves_years_1_to_9999(function, value) -> None:
    with pytest.raises(ExpressionError, match="time out of range"):
        evaluate(f"{function}(@)", value)


@pytest.mark.parametrize("value", [True, [1], {"a": 1}])
def test_time_functions_raise_a_type_error_when_given_a_non_time_type(value) -> None:
    with pytest.raises(jp_exceptions.JMESPathTypeError):
        evaluate("to_epoch_ms(@)", value)


def test_lookup_returns_the_entry_or_the_default_when_called() -> None:
    assert evaluate("lookup('stage', @)", 1) == "One"
    assert evaluate("lookup('stage', @)", "closedwon") == "Won"
    assert evaluate("lookup('stage', @, 'none')", "lost") == "none"
    assert evaluate("lookup('stage', @, `null`)", "lost") is None
    with pytest.raises(ExpressionError, match="no entry for 'lost'"):
        evaluate("lookup('stage', @)", "lost")


def test_lookup_raises_an_arity_error_when_given_four_arguments() -> None:
    with pytest.raises(jp_exceptions.ArityError):
        evaluate("lookup('stage', @, 'a', 'b')", 1)


def test_default_replaces_only_null_and_empty_string_when_called() -> None:
    assert evaluate("default(a, 'x')", {}) == "x"
    assert evaluate("default(a, 'x')", {"a": ""}) == "x"
    assert evaluate("default(a, 'x')", {"a": 0}) == 0
    assert evaluate("default(a, 'x')", {"a": False}) is False
    assert evaluate("default(a, 'x')", {"a": []}) == []


def test_case_functions_change_case_and_pass_null_when_called() -> None:
    assert evaluate("lower(@)", "ÄbC") == "äbc"
    assert evaluate("upper(@)", "äbc") == "ÄBC"
    assert evaluate("lower(a)", {}) is None
    with pytest.raises(jp_exceptions.JMESPathTypeError):
        evaluate("upper(@)", 3)


def test_uuid5_is_stable_and_namespaced_when_called() -> None:
    expected = str(uuid.uuid5(JOB_NAMESPACE, "pipedrive:deal:42"))
    assert evaluate("uuid5(@)", "pipedrive:deal:42") == expected
    assert evaluate("uuid5(@)", 42) == str(uuid.uuid5(JOB_NAMESPACE, "42"))
    assert evaluate("uuid5(a)", {}) is None


def test_template_is_none_when_the_text_has_no_dollar_braces() -> None:
    assert split_template("{{ liquid }} and {{uuid}}") is None
    assert split_template("plain") is None


def test_template_splits_text_and_expressions_when_interpolated() -> None:
    assert split_template("deal_${{ event.id }}") == ["deal_", ("event.id",)]
    assert split_template("${{ a }}${{b}}") == [("a",), ("b",)]
    assert split_template("x ${{ {k: 'v}}'} }} y") == ["x ", ("{k: 'v}}'}",), " y"]


@pytest.mark.parametrize("text", ["${{ event. }}", "${{ }}", "${{ event.id", "${{ a[ }}"])
def test_template_raises_when_the_expression_is_invalid(text) -> None:
    with pytest.raises(jp_exceptions.JMESPathError):
        split_template(text)


@pytest.mark.parametrize("expression", ['`{"tags": ["a"]}`', 'a || `{"tags": ["a"]}`', "[`[1]`, a][0]"])
def test_literal_objects_are_fresh_copies_when_evaluated_twice(expression) -> None:
    compiled = compile_expression(expression, FUNCTIONS)
    first = compiled({})
    (first["tags"] if isinstance(first, dict) else first).append("changed")

    assert compiled({}) in ({"tags": ["a"]}, [1])
