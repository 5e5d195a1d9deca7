"""format_number() and minor_units(): amounts in text fields, rounded as money is and with
thousands separated."""

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


def test_a_number_too_large_for_28_digits_is_an_expression_error_when_formatted() -> None:
    with pytest.raises(ExpressionError, match="too large to format"):
        evaluate("format_number(a, `2`)", {"a": 1e30})


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (4200, "eur", "42.00"),
        ("4200", "usd", "42.00"),  # Paddle sends amounts as text
        (123456789, "gbp", "1,234,567.89"),
        (-250, "usd", "-2.50"),  # refunds and credit notes
        (5000, "jpy", "5,000"),  # zero-decimal: the amount is whole yen
        (5000, "KRW", "5,000"),
        (1500, "bhd", "1.500"),  # three-decimal: fils
        (4200.0, "eur", "42.00"),
        (None, "eur", None),
    ],
)
def test_minor_units_reads_an_amount_in_its_currencys_minor_units_when_formatted(
    amount: object, currency: str, expected: str | None
) -> None:
    assert evaluate("minor_units(a, c)", {"a": amount, "c": currency}) == expected


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        (42.5, "eur", "42.5 is not a whole number of minor units"),
        ("forty", "eur", "'forty' is not a number"),
        (float("inf"), "eur", "inf is not a number"),
        (1e300, "eur", "too large to format"),
        (4200, "euro", "'euro' is not a three-letter currency code"),
        (4200, "€12", "is not a three-letter currency code"),
    ],
)
def test_minor_units_names_the_problem_when_the_amount_or_currency_is_bad(
    amount: object, currency: str, message: str
) -> None:
    with pytest.raises(ExpressionError, match=message):
        evaluate("minor_units(a, c)", {"a": amount, "c": currency})
