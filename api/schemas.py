"""Types the HTTP API's endpoints share: money, times, people and errors on the wire."""

from decimal import Decimal
from typing import Annotated, Any

from ninja import Field, Schema
from pydantic import AwareDatetime, BeforeValidator, WithJsonSchema

from auctions.formats import MAX_AMOUNT

# Amounts reach the services untouched (a Decimal from the JSON parser, or a string):
# `Any` keeps pydantic from coercing them through float; the services validate them.
Amount = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"},
                {"type": "number"},
            ],
            "description": "Money: > 0, at most 2 decimals, at most 9999999999.99. "
            'A JSON number (parsed exactly) or a numeric string such as "150.10".',
            "examples": ["150.10"],
        }
    ),
]
Money = Annotated[str, Field(examples=["150.10"], pattern=r"^\d+\.\d{2}$")]
# A price bound in a query: money, parsed exactly.
PriceFilter = Annotated[
    Decimal | None,
    Field(None, ge=0, le=MAX_AMOUNT, decimal_places=2, description="A price, e.g. 150.10."),
]
# A table's name or its rows, checked by the service (auctions.pricing).
IncrementTable = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "description": 'A table of the site\'s, e.g. "standard".'},
                {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 2,
                        "items": {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"},
                    },
                    "description": '[from_price, increment] pairs, ascending, from "0.00".',
                },
                {"type": "null"},
            ],
            "description": "An increment table instead of a fixed min_increment (spec §7).",
        }
    ),
]
Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
RequestId = Annotated[
    Any,
    WithJsonSchema({"type": "string", "maxLength": 64, "description": "Idempotency key."}),
]


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
