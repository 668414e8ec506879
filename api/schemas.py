"""Types the HTTP API's endpoints share: money, times, people and errors on the wire."""

import re
from decimal import Decimal
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import AwareDatetime, BeforeValidator, WithJsonSchema

from auctions.formats import MAX_AMOUNT
from auctions.pricing import MAX_TABLE_ROWS
from auctions.services import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH

# Amounts reach the services untouched (a Decimal from the JSON parser, or a string):
# `Any` keeps pydantic from coercing them through float; the services validate them
# (auctions.formats.parse_amount), and the schema below states exactly what they accept.
# 0.01 to 9999999999.99, at most 2 decimals that are not 0 (150.100 is 150.10).
AMOUNT_PATTERN = r"^\s*(0{0,9}[1-9]\d{0,9}(\.\d{1,2}0{0,9})?|0{1,9}\.(0[1-9]|[1-9]\d?)0{0,9})\s*$"
AMOUNT_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "string", "pattern": AMOUNT_PATTERN},
        {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": float(MAX_AMOUNT),
            "multipleOf": 0.01,
        },
    ],
    "description": f"Money: > 0, at most 2 decimals, at most {MAX_AMOUNT}. "
    'A JSON number (parsed exactly) or a numeric string such as "150.10".',
    "examples": ["150.10"],
}
Amount = Annotated[Any, WithJsonSchema(AMOUNT_SCHEMA)]
# An amount a client may also send as null, meaning "none" (no reserve, no buy it now).
OptionalAmount = Annotated[
    Any, WithJsonSchema({**AMOUNT_SCHEMA, "anyOf": [*AMOUNT_SCHEMA["anyOf"], {"type": "null"}]})
]
Money = Annotated[str, Field(examples=["150.10"], pattern=r"^\d+\.\d{2}$")]
PRICE_FILTER_PATTERN = r"^\d{1,10}(\.\d{1,2})?$"


def _price_text(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(PRICE_FILTER_PATTERN, value):
        raise ValueError("must be a price such as 150 or 150.10")
    return value


# A price bound in a query: money (0 allowed), parsed exactly.
PriceFilter = Annotated[
    Decimal | None,
    BeforeValidator(_price_text),
    WithJsonSchema({"type": "string", "pattern": PRICE_FILTER_PATTERN}),
    Field(None, description="A price, e.g. 150.10."),
]


def _whole(value: Any) -> Any:
    # The JSON parser reads 60.0 as Decimal("60.0"); JSON Schema calls it an integer too.
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


# On a StrictInt field (or its `| None`): 60 or 60.0 in JSON, never "60" or true.
# Outside the union, so pydantic still writes the range into the JSON Schema.
WHOLE = BeforeValidator(_whole)


def seconds_schema(minimum: int, maximum: int) -> WithJsonSchema:
    """The JSON Schema of a number of seconds in a range, or null."""
    return WithJsonSchema({"type": ["integer", "null"], "minimum": minimum, "maximum": maximum})


# A table's name or its rows, checked by the service (auctions.pricing); from_price may be 0.
_TABLE_CELL: dict[str, Any] = {
    "anyOf": [
        {
            "type": "string",
            "pattern": rf"^0+(\.0{{1,2}})?$|{AMOUNT_PATTERN}",
        },
        {"type": "number", "minimum": 0, "maximum": float(MAX_AMOUNT), "multipleOf": 0.01},
    ]
}
IncrementTable = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": 'A table of the site\'s, e.g. "standard".'},
                {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": MAX_TABLE_ROWS,
                    "items": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 2,
                        "items": _TABLE_CELL,
                    },
                    "description": "[from_price, increment] pairs, from_price ascending from "
                    '"0.00", each increment > 0.',
                },
                {"type": "null"},
            ],
            "description": "An increment table instead of a fixed min_increment (spec §7).",
        }
    ),
]
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
# Text PostgreSQL can store: no NUL (unpaired surrogates, the other thing it cannot hold,
# have no JSON Schema; the services refuse them too).
NO_NUL = r"^[^\x00]*$"
# What the services accept as an item's name and description (auctions.services._item_text).
NAME_SCHEMA: dict[str, Any] = {
    "minLength": 1,
    "maxLength": MAX_NAME_LENGTH,
    "pattern": r"^[^\x00]*[^\s\x00][^\x00]*$",
    "description": "Not blank; leading and trailing spaces are dropped.",
}
DESCRIPTION_SCHEMA: dict[str, Any] = {"maxLength": MAX_DESCRIPTION_LENGTH, "pattern": NO_NUL}
RequestId = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": ["string", "null"],
            "maxLength": 64,
            "pattern": NO_NUL,
            "description": "Idempotency key.",
        }
    ),
]


def optional_not_null(description: str | None = None, **schema: Any) -> Any:
    """A field a client may leave out but not send as null (an edit's fields)."""
    return Field(None, description=description, json_schema_extra=schema or None)


def one_of_given(*names: str) -> dict[str, Any]:
    """JSON Schema for "exactly one of these fields, not null" (null counts as absent)."""
    return {"oneOf": [_given(name) for name in names]}


def any_of_given(*names: str) -> dict[str, Any]:
    """JSON Schema for "at least one of these fields, not null"."""
    return {"anyOf": [_given(name) for name in names]}


def not_both_given(first: str, second: str) -> dict[str, Any]:
    """JSON Schema for "not both of these fields with a value"."""
    return {
        "not": {
            "required": [first, second],
            "properties": {first: {"not": {"type": "null"}}, second: {"not": {"type": "null"}}},
        }
    }


def _given(name: str) -> dict[str, Any]:
    return {"required": [name], "properties": {name: {"not": {"type": "null"}}}}


def _text_only(value: Any) -> Any:
    # Pydantic would also read numbers as Unix times; the contract says ISO 8601.
    if value is not None and not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string, e.g. 2026-11-24T10:00:00Z")
    return value


IsoTime = Annotated[AwareDatetime, BeforeValidator(_text_only)]


class ErrorOut(Schema):
    code: str
    message: str
    data: dict[str, Any] | None = None


class PersonOut(Schema):
    id: str
    name: str
