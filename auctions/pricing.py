"""What an auction's price means (spec §1, §7): increments, the minimum next bid, the reserve.

Pure functions of an auction's terms and running state, shared by the bid rules
(bidding.rules), the snapshot and closing. An auction has a fixed `min_increment` or an
`increments` table of (from_price, increment) pairs, ascending from 0.00, possibly chosen
by name from the site's tables (AUCTION_INCREMENT_TABLES).
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from auctions.errors import InvalidAmount, ValidationFailed
from auctions.formats import money, parse_amount

# The site's own table (spec §7), always offered as "standard".
STANDARD_INCREMENTS: tuple[tuple[str, str], ...] = (
    ("0.00", "0.05"),
    ("1.00", "0.25"),
    ("5.00", "0.50"),
    ("25.00", "1.00"),
    ("100.00", "2.50"),
    ("250.00", "5.00"),
    ("500.00", "10.00"),
    ("1000.00", "25.00"),
    ("2500.00", "50.00"),
    ("5000.00", "100.00"),
)
MAX_TABLE_ROWS = 100


@dataclass(frozen=True, slots=True)
class Increments:
    """A fixed increment, or a table: the increment at a price is the last row's at or below it."""

    fixed: Decimal = Decimal("0.01")
    table: tuple[tuple[Decimal, Decimal], ...] = ()

    def at(self, price: Decimal) -> Decimal:
        """inc(price) of spec §7."""
        if not self.table:
            return self.fixed
        increment = self.table[0][1]
        for start, step in self.table:
            if start > price:
                break
            increment = step
        return increment

    def as_pairs(self) -> list[list[str]] | None:
        """The table as the snapshot shows it (`[["0.00", "0.05"], …]`), or None if fixed."""
        if not self.table:
            return None
        return [[money(start), money(step)] for start, step in self.table]


def increments_of(min_increment: Decimal, table: Sequence[Sequence[str]] | None) -> Increments:
    """An auction's increments from its stored columns (a table is stored as pairs of text)."""
    if not table:
        return Increments(fixed=min_increment)
    return Increments(table=tuple((Decimal(start), Decimal(step)) for start, step in table))


def min_next_bid(
    *, starting_price: Decimal, current_price: Decimal, bid_count: int, increments: Increments
) -> Decimal:
    """`starting_price` before the first bid, then `current_price + inc(current_price)`."""
    if bid_count == 0:
        return starting_price
    return current_price + increments.at(current_price)


def reserve_met(*, reserve_price: Decimal | None, current_price: Decimal, bid_count: int) -> bool:
    """True without a reserve; otherwise once a bid stands at or above it."""
    if reserve_price is None:
        return True
    return bid_count > 0 and current_price >= reserve_price


def increment_tables() -> dict[str, Sequence[Sequence[str]]]:
    """The tables an auction may name: the site's `standard` and AUCTION_INCREMENT_TABLES."""
    return {"standard": STANDARD_INCREMENTS, **settings.AUCTION_INCREMENT_TABLES}


def increments_table_parse(
    value: object, named: Mapping[str, Sequence[Sequence[str]]]
) -> list[list[str]]:
    """An `increments` value from a client: a table's name, or its pairs; raise if invalid.

    Rows are `[from_price, increment]` in money form, strictly ascending, the first from
    0.00, every increment above zero. Returned as pairs of 2-decimal strings.
    """
    field = "increments"
    if isinstance(value, str):
        if value not in named:
            names = ", ".join(sorted(named))
            raise ValidationFailed(f"Unknown increment table {value!r}; known: {names}.", field)
        value = named[value]
    if not isinstance(value, list | tuple) or not value or len(value) > MAX_TABLE_ROWS:
        raise ValidationFailed(
            f"increments must be a table name or 1 to {MAX_TABLE_ROWS} [from_price, increment] "
            "pairs.",
            field,
        )
    rows: list[tuple[Decimal, Decimal]] = []
    for row in value:
        if not isinstance(row, list | tuple) or len(row) != 2:
            raise ValidationFailed("Each increments row is a [from_price, increment] pair.", field)
        start = _table_amount(row[0], zero_allowed=True)
        step = _table_amount(row[1], zero_allowed=False)
        if rows and start <= rows[-1][0]:
            raise ValidationFailed("increments rows must ascend by from_price.", field)
        rows.append((start, step))
    if rows[0][0] != 0:
        raise ValidationFailed('The first increments row must start at "0.00".', field)
    return [[money(start), money(step)] for start, step in rows]


def _table_amount(value: object, *, zero_allowed: bool) -> Decimal:
    if zero_allowed and _is_zero(value):
        return Decimal("0.00")
    try:
        return parse_amount(value)
    except InvalidAmount as exc:
        raise ValidationFailed(f"increments: {exc.message}", "increments") from exc


def _is_zero(value: object) -> bool:
    if isinstance(value, str):
        return re.fullmatch(r"0+(\.0{1,2})?", value) is not None
    return isinstance(value, int | Decimal) and not isinstance(value, bool) and value == 0
