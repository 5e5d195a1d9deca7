"""format_number(): amounts in text fields, rounded as money is and with thousands separated."""

from __future__ import annotations

import pytest
from timeline_bridge.mapping.expressions import BridgeFunctions, ExpressionError, compile_expression


def evaluate(expression: str, data: object) -> object:
    return compile_expression(expression, BridgeFunctions())(data)


@pytest.mark.parametrize(
    ("data", "decimals", "expected"),
    [
        (1234.5, 2, "1,234.50"),
        ("1234.5", 2, "1,234.50"),  # CRM amounts arrive as text
        (2.675, 2, "2.68"),  # half up, from the decimal text (a float would give 2.67)
        (0.5, 0, "1"),
        (-1234567, 0, "-1,234,567"),
        ("  42 ", 1, "42.0"),
        (None, 2, None),
    ],
)
def test_a_number_is_rounded_half_up_with_thousands_separated_when_formatted(
    data: object, decimals: int, expected: str | None
) -> None:
    assert evaluate(f"format_number(a, `{decimals}`)", {"a": data}) == expected


@pytest.mark.parametrize(
    ("data", "decimals", "message"),
    [
        ("twelve", 2, "is not a number"),
        ("NaN", 2, "is not a number"),
        (1, 1.5, "decimals must be a whole number"),
        (1, 11, "decimals must be 0 to 10"),
        (1, -1, "decimals must be 0 to 10"),
    ],
)
def test_format_number_names_the_problem_when_given_no_number_or_bad_decimals(
    data: object, decimals: float, message: str
) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate(f"format_number(a, `{decimals}`)", {"a": data})
