"""Schemathesis hooks for tests/e2e/test_openapi_fuzz.py (loaded by SCHEMATHESIS_HOOKS).

The OpenAPI document states every constraint of a single field, and the "one of" rules
between fields. What no JSON Schema can say is left to these hooks, for positive cases only
(a negative case must stay invalid, and the API must refuse it):

- data: which categories, auctions and items exist (the test passes real ones in the
  environment, so generated requests reach the logic behind the 404s), and that an
  uploaded file is a photo;
- rules between values: reserve >= starting price, buy now >= both, max >= amount, end
  time in the future and after the start, an increment table ascending from 0, a table
  name the site knows. A generated new auction or bid that breaks one is skipped.

Each skip below names the rule the description of the operation states.
"""

import base64
import itertools
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import schemathesis
from schemathesis import GenerationMode

AUCTIONS = [value for value in os.environ.get("FUZZ_AUCTIONS", "").split(",") if value]
ITEMS = [value for value in os.environ.get("FUZZ_ITEMS", "").split(",") if value]
CATEGORIES = [value for value in os.environ.get("FUZZ_CATEGORIES", "").split(",") if value]
TABLES = [value for value in os.environ.get("FUZZ_TABLES", "").split(",") if value]
MAX_DAYS = 365
# A real photo for the uploads the document calls valid (it cannot say "an image").
PHOTO = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGM8wcXFwMDAxMDAwMDAAAALOADgEfTV1gAAAABJRU5ErkJggg=="
)


def _pick(choices: list[str], seed: object) -> str | None:
    """A real value most of the time, chosen by the generated one (so shrinking still works);
    one time in four, the generated value is kept (a 404 is a fine answer to test too)."""
    index = sum(str(seed).encode()) % (len(choices) + 1) if choices else 0
    return choices[index - 1] if index else None


def _positive(case: Any) -> bool:
    return case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE


UPLOAD = "POST /api/items/{item_id}/images/"
UPLOAD_ITEMS = itertools.cycle(ITEMS or [""])


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    if not _positive(case):
        return case
    path = case.path_parameters or {}
    if "auction_id" in path and (real := _pick(AUCTIONS, path["auction_id"])):
        path["auction_id"] = real
    if case.operation.label == UPLOAD and isinstance(case.body, dict):
        # One real photo, to the next item in turn: none fills up (10 photos each).
        path["item_id"] = next(UPLOAD_ITEMS)
        case.body["images"] = [PHOTO]
    if case.query and case.query.get("category") is not None:
        case.query["category"] = _pick(CATEGORIES, case.query["category"]) or CATEGORIES[0]
    if isinstance(case.body, dict):
        _real_references(case.body)
    return case


def _parts(body: object) -> list[object]:
    """The parts a multipart body will have (an empty list sends none)."""
    if not isinstance(body, dict):
        return [body] if body else []
    return [value for value in body.values() if value != []]


def _real_references(body: dict[str, Any]) -> None:
    for holder in (body, body.get("item")):
        if isinstance(holder, dict) and isinstance(holder.get("category"), str):
            holder["category"] = _pick(CATEGORIES, holder["category"]) or CATEGORIES[0]
    if isinstance(body.get("item_id"), str):
        body["item_id"] = _pick(ITEMS, body["item_id"]) or body["item_id"]


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    if case.operation.label == UPLOAD and not any(_parts(case.body)):
        # daphne (Twisted) refuses a multipart body without any part itself, before the
        # app sees it, with an empty 400: not the API's answer to judge.
        return False
    # An edit is checked against the stored terms, which earlier cases change: its 422s
    # are expected (schemathesis.toml), so only new auctions and bids are filtered.
    if not _positive(case) or not isinstance(case.body, dict) or case.method != "POST":
        return True
    body = case.body
    return _terms_agree(body) and _times_agree(body) and _table_ok(body.get("increments"))


def _amount(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        return None


def _terms_agree(body: dict[str, Any]) -> bool:
    starting = _amount(body.get("starting_price"))
    reserve = _amount(body.get("reserve_price"))
    buy_now = _amount(body.get("buy_now_price"))
    amount, ceiling = _amount(body.get("amount")), _amount(body.get("max_amount"))
    if amount is not None and ceiling is not None and ceiling < amount:
        return False  # place_bid: max_amount is at least amount
    floors = [price for price in (starting, reserve) if price is not None]
    if starting is not None and reserve is not None and reserve < starting:
        return False  # create_auction: the reserve is at least the starting price
    # create_auction: buy now is at least the starting price and the reserve
    return buy_now is None or all(buy_now >= floor for floor in floors)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _times_agree(body: dict[str, Any]) -> bool:
    # create_auction: end_time in the future, after start_time, within 365 days of it.
    now = datetime.now(UTC) + timedelta(seconds=5)
    start, end = _time(body.get("start_time")), _time(body.get("end_time"))
    begins = max(start, now) if start is not None else now
    return end is None or begins < end <= begins + timedelta(days=MAX_DAYS - 1)


def _table_ok(table: object) -> bool:
    """create_auction: a table the site knows, or rows ascending from 0, each step > 0."""
    if table is None:
        return True
    if isinstance(table, str):
        return table in TABLES
    starts = [_amount(start) for start, _ in table]
    steps = [_amount(step) for _, step in table]
    if None in starts or not all(steps):
        return False
    return starts[0] == 0 and all(a < b for a, b in itertools.pairwise(starts))  # type: ignore[operator]
