"""Who is notified of what an auction does, and what each notification says (spec §8).

Pure: the services that change an auction (closing it, the bid engine, the ending-soon
task) call these with what they hold under the row lock and record the result in the
same transaction (notifications.services).
"""

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from auctions.formats import iso, money
from notifications.models import Kind
from notifications.services import Notice


def auction_path(auction_id: UUID) -> str:
    """The auction page's path (pages route it; e-mail prefixes the site's address)."""
    return f"/auctions/{auction_id}/"


def notice_data(
    *, auction_id: UUID, item_name: str, price: Decimal | None, **more: Any
) -> dict[str, Any]:
    return {
        "item_name": item_name,
        "price": money(price),
        "url": auction_path(auction_id),
        **more,
    }


def outbid_notices(
    *,
    auction_id: UUID,
    item_name: str,
    outbid: Iterable[UUID],
    price: Decimal,
    min_next_bid: Decimal,
) -> list[Notice]:
    """One `outbid` per displaced leader; the price is the one to beat now."""
    data = notice_data(
        auction_id=auction_id,
        item_name=item_name,
        price=price,
        min_next_bid=money(min_next_bid),
    )
    return [Notice(user_id, Kind.OUTBID, auction_id, data) for user_id in outbid]


def closing_notices(
    *,
    auction_id: UUID,
    item_name: str,
    seller_id: UUID,
    winner_id: UUID | None,
    final_price: Decimal | None,
    bidder_ids: Iterable[UUID],
) -> list[Notice]:
    """At the end: `won` and `sold` and a `lost` for every other bidder, or `not_sold`.

    With no winner (no bids, or the reserve not met) only the seller hears: `lost` means
    that someone else won (§8), and the bidders see the result on the page.
    """
    data = notice_data(auction_id=auction_id, item_name=item_name, price=final_price)
    if winner_id is None:
        return [Notice(seller_id, Kind.NOT_SOLD, auction_id, data)]
    losers = sorted(set(bidder_ids) - {winner_id})
    return [
        Notice(winner_id, Kind.WON, auction_id, data),
        Notice(seller_id, Kind.SOLD, auction_id, data),
        *(Notice(user_id, Kind.LOST, auction_id, data) for user_id in losers),
    ]


def ending_soon_notice(
    *, user_id: UUID, auction_id: UUID, item_name: str, price: Decimal, end_time: datetime
) -> Notice:
    data = notice_data(
        auction_id=auction_id, item_name=item_name, price=price, end_time=iso(end_time)
    )
    return Notice(user_id, Kind.ENDING_SOON, auction_id, data)
