"""How money and times are read and written on the wire."""

import json
from decimal import Decimal, InvalidOperation
from typing import Any, overload
from uuid import UUID

from auctions.errors import InvalidAmount, NotFound

# Written the same way by every layer; re-exported for this layer's callers.
from infra.times import ISO_FORMAT as ISO_FORMAT
from infra.times import iso as iso
from infra.times import unix_seconds as unix_seconds

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")
# Longest numeric string worth parsing: 10 integer digits, a point and a few decimals.
_MAX_AMOUNT_TEXT = 32


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str | bytes) -> Any:
    """Parse JSON as the APIs read it: numbers with decimals become exact Decimals.

    Raises ValueError for anything that is not plain JSON, including NaN/Infinity
    literals, integers too long to convert and nesting too deep to parse.
    """
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    except UnicodeDecodeError as exc:
        raise ValueError("JSON is not valid UTF-8") from exc


def parse_amount(value: object) -> Decimal:
    """Parse a money amount exactly, or raise InvalidAmount (spec §1 "Money").

    Accepts an int, a Decimal (JSON numbers are parsed with parse_float=Decimal), a
    float (converted through its shortest repr) or a plain decimal string such as
    "150.10". The value must be finite, > 0, at most 9999999999.99, with at most 2
    decimal places.
    """
    if value is None:
        raise InvalidAmount("An amount is required.")
    if isinstance(value, bool):
        raise InvalidAmount("The amount must be a number, not true or false.")
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > _MAX_AMOUNT_TEXT or not _is_plain_decimal(text):
            raise InvalidAmount("The amount must be a number such as 150 or 150.10.")
        value = text
    elif isinstance(value, float):
        value = repr(value)
    elif not isinstance(value, int | Decimal):
        raise InvalidAmount("The amount must be a number or a numeric string.")
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise InvalidAmount("The amount must be a number such as 150 or 150.10.") from exc
    if not amount.is_finite():
        raise InvalidAmount("The amount must be a finite number.")
    if amount <= 0:
        raise InvalidAmount("The amount must be greater than zero.")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"The amount must be at most {MAX_AMOUNT}.")
    cents = amount.quantize(CENT)
    if cents != amount:
        raise InvalidAmount("The amount can have at most 2 decimal places.")
    return cents


def parse_uuid(value: object, what: str = "auction") -> UUID:
    """A UUID from a string, or NotFound: an id that cannot exist names nothing."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except (ValueError, TypeError, AttributeError) as exc:
        raise NotFound(what) from exc


def _is_plain_decimal(text: str) -> bool:
    whole, point, fraction = text.partition(".")
    if not (whole.isascii() and whole.isdigit()):
        return False
    return not point or (fraction.isascii() and fraction.isdigit())


def is_storable_text(text: str) -> bool:
    """PostgreSQL text holds neither NUL nor unpaired surrogates (valid in JSON strings)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@overload
def money(amount: Decimal) -> str: ...
@overload
def money(amount: None) -> None: ...
@overload
def money(amount: Decimal | None) -> str | None: ...
def money(amount: Decimal | None) -> str | None:
    """An amount as a JSON string with 2 decimals ("150.10"), or None."""
    if amount is None:
        return None
    return f"{amount.quantize(CENT)}"
