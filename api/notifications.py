"""HTTP API for the watchlist and notifications (spec §8): parse, call a service, shape."""

from typing import Annotated, Any

from ninja import Field, Query, Router, Schema
from ninja.responses import Status
from pydantic import StrictInt

from accounts.requests import ApiRequest
from api.auctions import AuctionPage
from api.base import MAX_BIGINT, PageQuery, page, paginate
from api.schemas import WHOLE, ErrorOut, Money, Time
from auctions.formats import parse_uuid
from auctions.selectors import auction_must_exist, auction_snapshot, watchlist
from infra.replica import reads_for
from notifications.models import Kind, Notification
from notifications.services import (
    last_seq,
    notification_as_message,
    notification_list,
    notifications_mark_read,
    unread_count,
    watch_add,
    watch_remove,
)

watch = Router(tags=["watchlist"])
watched = Router(tags=["watchlist"])
notifications = Router(tags=["notifications"])


_WATCH_RESPONSES: dict[int, Any] = {204: None, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


@watch.put("/{auction_id}/watch/", response=_WATCH_RESPONSES)
def watch_auction(request: ApiRequest, auction_id: str) -> Status[None]:
    """Watch the auction (again: nothing changes): it is on your watchlist, and you are
    told when it ends soon. Bidding on an auction watches it too."""
    auction_uuid = parse_uuid(auction_id)
    auction_must_exist(auction_id=auction_uuid)
    watch_add(user=request.auth, auction_id=auction_uuid)
    return Status(204, None)


@watch.delete("/{auction_id}/watch/", response=_WATCH_RESPONSES)
def unwatch_auction(request: ApiRequest, auction_id: str) -> Status[None]:
    """Stop watching the auction (also when you were not watching it)."""
    auction_uuid = parse_uuid(auction_id)
    auction_must_exist(auction_id=auction_uuid)
    watch_remove(user=request.auth, auction_id=auction_uuid)
    return Status(204, None)


@watched.get("/", response={200: AuctionPage, 400: ErrorOut, 401: ErrorOut})
def list_watchlist(request: ApiRequest, paging: Query[PageQuery]) -> dict[str, Any]:
    """The auctions you watch: open ones first, ending soonest first; then the ones that
    are over, the most recently ended first."""
    watched = watchlist(user=request.auth).using(reads_for(request.auth.id))
    return paginate(request, watched, paging=paging, shape=auction_snapshot)


class NotificationDataOut(Schema):
    """What the notification is about (the item, a price, a link to the auction)."""

    item_name: str
    price: Money | None = Field(
        description="The price now (outbid, ending soon) or the final price; null if none."
    )
    url: str = Field(description="The auction page's path, e.g. /auctions/{id}/.")
    min_next_bid: Money | None = Field(None, description="`outbid` only: the bid to beat it.")
    end_time: Time | None = Field(None, description="`ending_soon` only: when it ends.")


class NotificationOut(Schema):
    seq: int = Field(description="Yours alone: 1, 2, 3, … with no gaps.")
    kind: Kind
    auction_id: str
    created_at: Time
    data: NotificationDataOut
    read: bool = Field(description="Seen on the notifications page, or marked read here.")


class NotificationPage(Schema):
    count: int
    next: str | None
    results: list[NotificationOut]


class NotificationQuery(Schema):
    since_seq: int = Field(0, ge=0, le=MAX_BIGINT, description="Notifications with a greater seq.")


class ReadIn(Schema):
    upto_seq: Annotated[Annotated[StrictInt, Field(ge=0, le=MAX_BIGINT)] | None, WHOLE] = Field(
        None, description="Mark those up to this seq; default all."
    )


class ReadOut(Schema):
    marked: int = Field(description="How many were unread and are read now.")
    unread: int = Field(description="How many are still unread.")


def _notification_out(notification: Notification) -> dict[str, Any]:
    """The WebSocket message's fields (one place shapes a notification), and `read`."""
    fields = notification_as_message(notification)
    del fields["type"], fields["timestamp"]
    return {**fields, "read": notification.read_at is not None}


# exclude_unset: a kind's `data` carries only the fields it has.
@notifications.get(
    "/", response={200: NotificationPage, 400: ErrorOut, 401: ErrorOut}, exclude_unset=True
)
def list_notifications(
    request: ApiRequest, filters: Query[NotificationQuery], paging: Query[PageQuery]
) -> dict[str, Any]:
    """Your notifications with `seq > since_seq`, in seq order, at most `limit` at a time.

    For more, follow `next`, or ask again with `since_seq` = the last result's seq (a
    client that keeps the last seq it saw gets each notification once).
    """
    after = min(filters.since_seq + paging.offset, MAX_BIGINT)
    rows = notification_list(user=request.auth, since_seq=after, limit=paging.limit)
    # Read after the rows, so the count covers at least them. A user's seqs run
    # 1..last_seq with no gaps, so those after since_seq number last_seq - since_seq.
    latest = last_seq(user_id=request.auth.id)
    return page(
        request,
        paging=paging,
        count=max(latest - filters.since_seq, 0),
        results=[_notification_out(row) for row in rows],
    )


@notifications.post(
    "/read/", response={200: ReadOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut}
)
def mark_notifications_read(request: ApiRequest, payload: ReadIn | None = None) -> dict[str, Any]:
    """Mark your notifications read: all of them, or those up to `upto_seq`."""
    upto = payload.upto_seq if payload else None
    marked = notifications_mark_read(user=request.auth, upto_seq=upto)
    return {"marked": marked, "unread": unread_count(user=request.auth)}
