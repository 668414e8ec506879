"""Money parsing (spec §1 "Money"): exact decimals in, 2-decimal strings out; ids."""

import json
import uuid
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auctions.errors import Code, InvalidAmount, NotFound
from auctions.formats import MAX_AMOUNT, money, parse_amount, parse_json, parse_uuid

cents = st.integers(min_value=1, max_value=999_999_999_999)


def from_json(text: str):
    """How the APIs read a JSON number: exactly, as a Decimal."""
    return json.loads(text, parse_float=Decimal)


@given(cents)
def test_every_valid_amount_round_trips_exactly_as_string(n):
    amount = Decimal(n) / 100
    text = money(amount)
    assert parse_amount(text) == amount
    assert money(parse_amount(text)) == text


@given(cents)
def test_every_valid_amount_round_trips_exactly_as_json_number(n):
    amount = Decimal(n) / 100
    assert parse_amount(from_json(str(amount))) == amount


@given(cents)
def test_every_valid_amount_round_trips_through_a_float(n):
    # A client that sends a binary float still gets the decimal it wrote.
    amount = Decimal(n) / 100
    assert parse_amount(float(str(amount))) == amount


@given(st.integers(min_value=1, max_value=9_999_999_999))
def test_whole_numbers_are_accepted(n):
    assert parse_amount(n) == Decimal(n)


@pytest.mark.parametrize(
    ("given_value", "expected"),
    [
        ("150.10", "150.10"),
        ("150.1", "150.10"),
        (150.1, "150.10"),
        ("007", "7.00"),
        ("1.500", "1.50"),
    ],
)
def test_examples_are_parsed_exactly(given_value, expected):
    assert money(parse_amount(given_value)) == expected


def assert_invalid(value):
    with pytest.raises(InvalidAmount) as error:
        parse_amount(value)
    assert error.value.code == Code.INVALID_AMOUNT


@pytest.mark.parametrize(
    "bad",
    [
        None,
        True,
        False,
        0,
        "0",
        "0.00",
        -1,
        "-1",
        "abc",
        "",
        " ",
        "1,5",
        "1e2",
        ".5",
        "5.",
        "١٢",
        [],
        {},
        Decimal("NaN"),
        Decimal("Infinity"),
        float("nan"),
        float("inf"),
        float("-inf"),
        "NaN",
        "Infinity",
        10_000_000_000,
        "10000000000.00",
        "1" * 40,
    ],
)
def test_bad_amounts_are_invalid(bad):
    assert_invalid(bad)


@pytest.mark.parametrize("text", ["1e309", "-1e309", "1e-400", "1.001", "0.001", "1E+10"])
def test_bad_json_numbers_are_invalid(text):
    assert_invalid(from_json(text))


def test_json_nan_and_infinity_literals_are_invalid():
    assert_invalid(json.loads("NaN", parse_float=Decimal, parse_constant=Decimal))
    assert_invalid(json.loads("Infinity", parse_float=Decimal, parse_constant=Decimal))


@given(st.decimals(allow_nan=False, allow_infinity=False, places=3))
def test_three_decimal_places_are_invalid_unless_the_third_is_zero(value):
    if value <= 0 or value > MAX_AMOUNT or value != value.quantize(Decimal("0.01")):
        assert_invalid(value)
    else:
        assert parse_amount(value) == value


@given(st.decimals(min_value=Decimal("10000000000"), allow_nan=False, allow_infinity=False))
def test_too_large_amounts_are_invalid(value):
    assert_invalid(value)


@given(st.decimals(max_value=Decimal("0"), allow_nan=False, allow_infinity=False))
def test_zero_and_negative_amounts_are_invalid(value):
    assert_invalid(value)


@given(st.text())
def test_arbitrary_text_is_accepted_only_as_a_plain_decimal(text):
    try:
        amount = parse_amount(text)
    except InvalidAmount:
        return
    assert Decimal("0.01") <= amount <= MAX_AMOUNT
    assert amount == Decimal(text.strip())


def test_money_formats_two_decimals():
    assert money(Decimal("5")) == "5.00"
    assert money(None) is None


@pytest.mark.parametrize(
    "text",
    ["NaN", "[Infinity]", '{"a": -Infinity}', "1" * 5000, "[" * 100_000, b"\xff", "{", ""],
)
def test_parse_json_refuses_what_is_not_plain_json(text):
    with pytest.raises(ValueError):
        parse_json(text)


def test_parse_json_reads_numbers_exactly():
    assert parse_json('{"amount": 150.10, "n": 3}') == {"amount": Decimal("150.10"), "n": 3}


class TestParseUuid:
    @pytest.mark.parametrize(
        "value", ["nope", "", None, 12, "00000000-0000-0000-0000-00000000000g"]
    )
    def test_anything_that_is_not_a_uuid_names_nothing(self, value):
        with pytest.raises(NotFound):
            parse_uuid(value)

    def test_a_uuid_string_or_uuid_is_read_as_it_is(self):
        value = uuid.uuid4()
        assert parse_uuid(str(value)) == value
        assert parse_uuid(value) is value
