"""`auction_client` against two real daphne processes (spec §2, §7, §8).

Every test drives the real `AuctionClient` over real sockets. Other parties (bidders, the
user's other connections) are plain `WsClient`s from the e2e helpers, so what the client
gets is checked against what the server stored, not against the client's own idea of it.
Drops are made by aborting the client's TCP connection (close code 1006, as when a server
or the network goes away); reconnects can be held back until the test has changed things.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async

from accounts.models import ApiToken, User
from auction_client.backoff import Backoff
from auction_client.client import AuctionClient
from auction_client.errors import AuthenticationFailed, BidRejected, ClientClosed, ServerError
from auction_client.messages import Event, Notification, ServerMessage, Viewers
from bidding.models import Bid
from bidding.services import bid_place
from tests.e2e.conftest import (
    WsClient,
    auction_open,
    auction_open_with,
    group_subscribers,
    stored_events,
    users_with_tokens,
    wait_for,
)
from tests.servers import free_port

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

TIMEOUT = 15.0
FAST = Backoff(base=0.05, cap=0.2)


def client_for(url: str | list[str], token: str, **options: Any) -> AuctionClient:
    options.setdefault("backoff", FAST)
    options.setdefault("connect_timeout", TIMEOUT)
    options.setdefault("request_timeout", TIMEOUT)
    return AuctionClient(url, token, **options)


async def collect(
    client: AuctionClient, kind: type[ServerMessage], count: int, timeout: float = TIMEOUT
) -> list[Any]:
    """The next `count` messages of `kind` the client delivers (others are skipped)."""
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(got) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"only {len(got)} of {count} {kind.__name__}s: {got!r}")
        try:
            message = await client.next_event(timeout=left)
        except TimeoutError:
            continue
        if isinstance(message, kind):
            got.append(message)
    return got


async def nothing_more(client: AuctionClient, kind: type[ServerMessage]) -> list[Any]:
    """What else of `kind` is delivered after a full round trip (should be nothing)."""
    await client.sync_clock(samples=1)
    extra: list[Any] = []
    while True:
        try:
            message = await client.next_event(timeout=0.3)
        except TimeoutError:
            return extra
        if isinstance(message, kind):
            extra.append(message)


async def ws_bid(bidder: WsClient, auction_id: str, amount: str) -> dict[str, Any]:
    reply = await bidder.request({"type": "place_bid", "auction_id": auction_id, "amount": amount})
    assert reply["type"] == "bid_accepted", reply
    return reply


async def alternate_bids(
    bidders: tuple[WsClient, WsClient], auction_id: str, amounts: list[str]
) -> None:
    for index, amount in enumerate(amounts):
        await ws_bid(bidders[index % 2], auction_id, amount)


def bid_ids(events: list[Event]) -> list[tuple[int, str, str | None]]:
    return [(e.seq, e.type, e.data.get("bid_id")) for e in events]


def abort(client: AuctionClient) -> None:
    """Drop the client's connection as a dead server or network would: no close frame."""
    ws = client._ws
    assert ws is not None, "the client is not connected"
    ws.transport.abort()


class HeldReconnects:
    """Lets the client's first connection open; holds every later one until `release()`."""

    def __init__(self, client: AuctionClient, monkeypatch: pytest.MonkeyPatch) -> None:
        self.gate = asyncio.Event()
        self.attempts: list[str] = []
        real_open: Callable[[str], Awaitable[Any]] = client._open

        async def held_open(url: str) -> Any:
            if client.connections >= 1:
                self.attempts.append(url)
                await self.gate.wait()
            return await real_open(url)

        monkeypatch.setattr(client, "_open", held_open)

    def release(self) -> None:
        self.gate.set()


@database_sync_to_async
def bids_of(auction_id: str) -> list[tuple[str, Decimal]]:
    return [
        (str(bid_id), amount)
        for bid_id, amount in Bid.objects.filter(auction_id=auction_id)
        .order_by("amount")
        .values_list("id", "amount")
    ]


@database_sync_to_async
def bid_direct(auction_id: str, bidder: User, amount: str) -> None:
    """A bid placed by the service itself (no socket): it publishes after commit."""
    bid_place(auction_id=uuid.UUID(auction_id), bidder=bidder, amount=Decimal(amount))


@database_sync_to_async
def tokens_revoke(user: User) -> None:
    ApiToken.objects.filter(user=user).delete()


# --- following auctions ------------------------------------------------------------------


async def test_subscribe_returns_the_snapshot_then_every_event_once_in_order(daphnes):
    a, b = daphnes
    (seller, _), (_, watcher_token), (_, bob_token), (_, carol_token) = await users_with_tokens(4)
    auction_id = await auction_open(seller)
    bob = await WsClient.open(b, bob_token, label="bob")
    carol = await WsClient.open(a, carol_token, label="carol")
    try:
        async with client_for(a.ws_url, watcher_token) as client:
            assert client.connected and client.url == a.ws_url
            snapshot = await client.subscribe(auction_id)
            assert snapshot["id"] == auction_id
            assert (snapshot["status"], snapshot["seq"]) == ("active", 0)
            assert client.last_seq(auction_id) == 0
            # Bids decided on the other instance reach the client through Redis.
            await alternate_bids((bob, carol), auction_id, ["10.00", "11.00", "12.50", "13.00"])
            events = await collect(client, Event, 4)
            assert bid_ids(events) == await stored_events(auction_id)
            assert [e.seq for e in events] == [1, 2, 3, 4]
            assert [e.data["amount"] for e in events] == ["10.00", "11.00", "12.50", "13.00"]
            assert all(e.auction_id == auction_id for e in events)
            assert client.last_seq(auction_id) == 4
            assert await nothing_more(client, Event) == []
    finally:
        await bob.close()
        await carol.close()


async def test_subscribe_with_since_seq_replays_the_missed_events_before_live_ones(daphnes):
    a, b = daphnes
    (seller, _), (_, watcher_token), (_, bob_token), (_, carol_token) = await users_with_tokens(4)
    auction_id = await auction_open(seller)
    bob = await WsClient.open(a, bob_token, label="bob")
    carol = await WsClient.open(a, carol_token, label="carol")
    try:
        await alternate_bids((bob, carol), auction_id, ["10.00", "11.00", "12.00"])
        async with client_for(b.ws_url, watcher_token) as client:
            snapshot = await client.subscribe(auction_id, since_seq=1)
            assert snapshot["seq"] == 3
            await ws_bid(carol, auction_id, "13.00")
            events = await collect(client, Event, 3)
            assert [e.seq for e in events] == [2, 3, 4]
            assert bid_ids(events) == (await stored_events(auction_id))[1:]
            assert await nothing_more(client, Event) == []
            # Subscribing again to an auction already followed replays nothing.
            again = await client.subscribe(auction_id)
            assert again["id"] == auction_id
            assert await nothing_more(client, Event) == []
    finally:
        await bob.close()
        await carol.close()


async def test_events_the_server_repeats_are_delivered_once(daphnes):
    a, b = daphnes
    (seller, _), (_, watcher_token), (_, bob_token), (_, carol_token) = await users_with_tokens(4)
    auction_id = await auction_open(seller)
    bob = await WsClient.open(a, bob_token, label="bob")
    carol = await WsClient.open(b, carol_token, label="carol")
    try:
        async with client_for(a.ws_url, watcher_token) as client:
            await client.subscribe(auction_id)
            await alternate_bids((bob, carol), auction_id, ["10.00", "11.00", "12.00"])
            first = await collect(client, Event, 3)
            # Ask the server, on the client's own connection, to replay it all again.
            ws = client._ws
            assert ws is not None
            await ws.send(
                json.dumps({"type": "subscribe", "auction_id": auction_id, "since_seq": 0})
            )
            await ws_bid(carol, auction_id, "13.00")
            (after,) = await collect(client, Event, 1)
            assert [e.seq for e in [*first, after]] == [1, 2, 3, 4]
            assert await nothing_more(client, Event) == []
    finally:
        await bob.close()
        await carol.close()


async def test_viewer_counts_arrive_for_followed_auctions(daphnes):
    a, b = daphnes
    (seller, _), (_, watcher_token), (_, other_token) = await users_with_tokens(3)
    auction_id = await auction_open(seller)
    async with client_for(a.ws_url, watcher_token) as client:
        await client.subscribe(auction_id)
        other = await WsClient.open(b, other_token, label="other")
        try:
            await other.subscribe(auction_id)
            deadline = time.monotonic() + TIMEOUT
            counts: list[int] = []
            while 2 not in counts:
                assert time.monotonic() < deadline, counts
                (viewers,) = await collect(client, Viewers, 1)
                assert viewers.auction_id == auction_id
                counts.append(viewers.count)
        finally:
            await other.close()


async def test_subscribing_to_an_unknown_auction_raises_server_error_not_found(daphnes):
    a, _ = daphnes
    ((_, token),) = await users_with_tokens(1)
    unknown = "00000000-0000-4000-8000-000000000000"
    async with client_for(a.ws_url, token) as client:
        with pytest.raises(ServerError) as error:
            await client.subscribe(unknown)
        assert error.value.code == "not_found"
        assert client.subscriptions() == []
        assert client.connected  # the connection stays usable


async def test_unsubscribe_stops_the_events_also_after_a_reconnect(daphnes, monkeypatch):
    a, b = daphnes
    (seller, _), (_, watcher_token), (_, bob_token), (_, carol_token) = await users_with_tokens(4)
    followed, dropped = await auction_open(seller), await auction_open(seller)
    bob = await WsClient.open(a, bob_token, label="bob")
    carol = await WsClient.open(b, carol_token, label="carol")
    try:
        async with client_for([a.ws_url, b.ws_url], watcher_token) as client:
            sent: list[dict[str, Any]] = []
            real_send = client._send

            async def send_recording(ws: Any, message: dict[str, Any]) -> bool:
                sent.append(message)
                return await real_send(ws, message)

            monkeypatch.setattr(client, "_send", send_recording)
            await client.subscribe(followed)
            await client.subscribe(dropped)
            await ws_bid(bob, dropped, "10.00")
            (first,) = await collect(client, Event, 1)
            assert (first.auction_id, first.seq) == (dropped, 1)
            await client.unsubscribe(dropped)
            assert client.subscriptions() == [followed]
            opened = client.connections
            abort(client)
            assert await wait_for(lambda: client.connected and client.connections > opened, TIMEOUT)
            await ws_bid(carol, dropped, "11.00")
            await ws_bid(bob, followed, "10.00")
            (event,) = await collect(client, Event, 1)
            assert (event.auction_id, event.seq) == (followed, 1)
            assert await nothing_more(client, Event) == []
            subscribes = [m["auction_id"] for m in sent if m["type"] == "subscribe"]
            assert subscribes == [followed, dropped, followed]
    finally:
        await bob.close()
        await carol.close()


async def test_the_clock_is_synced_to_the_servers_on_connect(daphnes):
    a, _ = daphnes
    ((_, token),) = await users_with_tokens(1)
    async with client_for(a.ws_url, token, clock_samples=2) as client:
        # The servers run on this machine: the same clock, to within the round trip.
        assert client.clock_offset is not None and client.clock_rtt is not None
        assert 0 <= client.clock_rtt < 2
        assert abs(client.clock_offset) < 0.05 + client.clock_rtt
        assert abs(client.server_time() - time.time()) < 0.05 + client.clock_rtt
        offset = await client.sync_clock(samples=2)
        assert abs(offset) < 0.5


# --- bidding -------------------------------------------------------------------------------


async def test_place_bid_accepted_returns_the_state_after_the_bid(daphnes):
    a, _ = daphnes
    (seller, _), (_, alice_token) = await users_with_tokens(2)
    auction_id = await auction_open(seller)
    async with client_for(a.ws_url, alice_token) as alice:
        result = await alice.place_bid(auction_id, Decimal("10.00"), request_id="alice-first")
        assert result.request_id == "alice-first"
        assert result.auction_id == auction_id
        assert (result.amount, result.current_price) == (Decimal("10.00"), Decimal("10.00"))
        assert result.min_next_bid == Decimal("10.01")
        assert (result.seq, result.leading, result.bought) == (1, True, False)
        assert result.max_amount == Decimal("10.00")
        ((stored_id, stored_amount),) = await bids_of(auction_id)
        assert (result.bid_id, result.amount) == (stored_id, stored_amount)
        # A maximum bid: the leader raises their max; the price does not move.
        raised = await alice.place_bid(auction_id, max_amount=Decimal("50.00"))
        assert (raised.leading, raised.max_amount) == (True, Decimal("50.00"))
        assert raised.current_price == Decimal("10.00")
        # The same request_id again is answered from the stored outcome: no second bid.
        repeat = await alice.place_bid(auction_id, "10.00", request_id="alice-first")
        assert repeat.bid_id == result.bid_id
        assert len(await bids_of(auction_id)) == 1


async def test_place_bid_rejected_raises_bid_rejected_with_the_spec_code(daphnes):
    a, b = daphnes
    (seller, seller_token), (_, alice_token), (_, bob_token) = await users_with_tokens(3)
    auction_id = await auction_open(seller)
    async with (
        client_for(a.ws_url, alice_token) as alice,
        client_for(b.ws_url, bob_token) as bob,
        client_for(a.ws_url, seller_token) as owner,
    ):
        await alice.place_bid(auction_id, 10)
        with pytest.raises(BidRejected) as low:
            await bob.place_bid(auction_id, "10.00", request_id="bob-low")
        assert low.value.code == "bid_too_low"
        assert low.value.request_id == "bob-low"
        assert low.value.auction_id == auction_id
        assert (low.value.current_price, low.value.min_next_bid) == (
            Decimal("10.00"),
            Decimal("10.01"),
        )
        with pytest.raises(BidRejected) as highest:
            await alice.place_bid(auction_id, "12.00")
        assert highest.value.code == "already_highest"
        with pytest.raises(BidRejected) as own:
            await owner.place_bid(auction_id, "20.00")
        assert own.value.code == "own_auction"
        with pytest.raises(BidRejected) as invalid:
            await bob.place_bid(auction_id, "11.001")
        assert invalid.value.code == "invalid_amount"
        with pytest.raises(BidRejected) as missing:
            await bob.place_bid("00000000-0000-4000-8000-000000000000", "11.00")
        assert missing.value.code == "not_found"
        # Floats are refused before anything is sent.
        with pytest.raises(TypeError):
            await bob.place_bid(auction_id, 11.5)  # type: ignore[arg-type]
        assert len(await bids_of(auction_id)) == 1


async def test_a_maximum_bid_beaten_at_once_is_accepted_but_not_leading(daphnes):
    a, b = daphnes
    (seller, _), (_, alice_token), (_, bob_token) = await users_with_tokens(3)
    auction_id = await auction_open(seller)
    async with (
        client_for(a.ws_url, alice_token) as alice,
        client_for(b.ws_url, bob_token) as bob,
    ):
        first = await alice.place_bid(auction_id, max_amount="50.00")
        assert (first.amount, first.leading, first.max_amount) == (
            Decimal("10.00"),
            True,
            Decimal("50.00"),
        )
        beaten = await bob.place_bid(auction_id, "20.00")
        assert (beaten.leading, beaten.amount) == (False, Decimal("20.00"))
        assert beaten.current_price == Decimal("20.01")  # Alice's automatic bid


async def test_buy_now_ends_the_auction_and_subscribers_see_it(daphnes):
    a, b = daphnes
    (seller, _), (_, buyer_token), (_, watcher_token) = await users_with_tokens(3)
    auction_id = await auction_open_with(seller, buy_now_price=Decimal("99.00"))
    async with (
        client_for(a.ws_url, buyer_token) as buyer,
        client_for(b.ws_url, watcher_token) as watcher,
    ):
        await watcher.subscribe(auction_id)
        result = await buyer.buy_now(auction_id)
        assert (result.bought, result.amount) == (True, Decimal("99.00"))
        events = await collect(watcher, Event, 2)
        assert [(e.seq, e.type) for e in events] == [(1, "bid_placed"), (2, "auction_ended")]
        assert events[1].data["reason"] == "bought"
        with pytest.raises(BidRejected) as again:
            await watcher.buy_now(auction_id)
        assert again.value.code in {"auction_ended", "buy_now_unavailable"}


# --- drops and reconnects ---------------------------------------------------------------


async def test_a_drop_reconnects_and_resumes_with_since_seq_every_event_once_in_order(
    daphnes, monkeypatch
):
    a, b = daphnes
    (seller, _), (_, watcher_token), (_, bob_token), (_, carol_token) = await users_with_tokens(4)
    auction_id = await auction_open(seller)
    bob = await WsClient.open(a, bob_token, label="bob")
    carol = await WsClient.open(b, carol_token, label="carol")
    try:
        async with client_for([a.ws_url, b.ws_url], watcher_token) as client:
            held = HeldReconnects(client, monkeypatch)
            await client.subscribe(auction_id)
            await alternate_bids((bob, carol), auction_id, ["10.00", "11.00"])
            before = await collect(client, Event, 2)
            assert [e.seq for e in before] == [1, 2]

            abort(client)
            assert await wait_for(lambda: held.attempts, TIMEOUT), "no reconnect attempt"
            assert not client.connected
            # While the client is away: three more events it must not lose.
            await alternate_bids((bob, carol), auction_id, ["12.00", "13.00", "14.00"])
            held.release()
            assert await wait_for(lambda: client.connected, TIMEOUT), "did not reconnect"
            # The missed ones come by replay alone (nothing live follows yet) ...
            missed = await collect(client, Event, 3)
            assert [e.seq for e in missed] == [3, 4, 5]
            # ... then the live ones, on the other instance.
            await alternate_bids((carol, bob), auction_id, ["15.00", "16.00"])
            live = await collect(client, Event, 2)
            assert [e.seq for e in live] == [6, 7]

            assert bid_ids(before + missed + live) == await stored_events(auction_id)
            assert await nothing_more(client, Event) == []
            assert client.reconnects == 1
            assert client.close_codes == [1006]
            assert held.attempts == [b.ws_url]
            assert client.url == b.ws_url
            assert client.last_seq(auction_id) == 7
    finally:
        await bob.close()
        await carol.close()


async def test_repeated_drops_never_duplicate_or_lose_events(daphnes):
    a, b = daphnes
    (seller, _), (_, watcher_token), (_, bob_token), (_, carol_token) = await users_with_tokens(4)
    auction_id = await auction_open(seller)
    bob = await WsClient.open(a, bob_token, label="bob")
    carol = await WsClient.open(b, carol_token, label="carol")
    try:
        async with client_for([a.ws_url, b.ws_url], watcher_token) as client:
            await client.subscribe(auction_id)
            amount = Decimal("10.00")
            placed = 0
            for round_ in range(3):
                for _ in range(3):
                    await ws_bid((bob, carol)[placed % 2], auction_id, str(amount))
                    amount += 1
                    placed += 1
                opened = client.connections
                abort(client)
                assert await wait_for(
                    lambda: client.connected and client.connections > opened,  # noqa: B023
                    TIMEOUT,
                ), f"not connected again after drop {round_ + 1}"
            await ws_bid((bob, carol)[placed % 2], auction_id, str(amount))
            events = await collect(client, Event, 10)
            assert bid_ids(events) == await stored_events(auction_id)
            assert await nothing_more(client, Event) == []
            assert client.reconnects == 3
            assert client.close_codes == [1006] * 3
    finally:
        await bob.close()
        await carol.close()


async def test_the_first_url_unreachable_the_client_connects_to_the_next(daphnes):
    a, _ = daphnes
    (seller, _), (_, token) = await users_with_tokens(2)
    auction_id = await auction_open(seller)
    dead = f"ws://127.0.0.1:{free_port()}/ws/"
    async with client_for([dead, a.ws_url], token) as client:
        assert client.url == a.ws_url
        assert client.connections == 1
        snapshot = await client.subscribe(auction_id)
        assert snapshot["id"] == auction_id


async def test_no_server_answers_connect_gives_up_after_connect_timeout():
    dead = f"ws://127.0.0.1:{free_port()}/ws/"
    client = client_for(dead, "whatever", connect_timeout=1.0)
    started = time.monotonic()
    with pytest.raises(ConnectionError):
        await client.connect()
    assert time.monotonic() - started < 5
    with pytest.raises(ClientClosed):
        await client.subscribe("00000000-0000-4000-8000-000000000000")


async def test_a_bid_whose_answer_was_lost_in_a_drop_is_answered_once_with_its_request_id(
    daphnes, monkeypatch
):
    a, b = daphnes
    (seller, _), (_, alice_token) = await users_with_tokens(2)
    auction_id = await auction_open(seller)
    async with client_for([a.ws_url, b.ws_url], alice_token) as alice:
        await alice.subscribe(auction_id)
        lost: list[dict[str, Any]] = []
        sent: list[dict[str, Any]] = []
        real_handle = alice._handle
        real_send = alice._send

        def handle_losing_the_first_answer(message: dict[str, Any], ws: Any) -> None:
            if message.get("type") == "bid_accepted" and not lost:
                lost.append(message)  # decided by the server, never seen by the client
                ws.transport.abort()
                return
            real_handle(message, ws)

        async def send_recording(ws: Any, message: dict[str, Any]) -> bool:
            sent.append(message)
            return await real_send(ws, message)

        monkeypatch.setattr(alice, "_handle", handle_losing_the_first_answer)
        monkeypatch.setattr(alice, "_send", send_recording)

        result = await alice.place_bid(auction_id, "10.00", request_id="bid-across-a-drop")

        assert len(lost) == 1
        assert alice.reconnects == 1
        bids_sent = [m for m in sent if m["type"] == "place_bid"]
        assert [m["request_id"] for m in bids_sent] == ["bid-across-a-drop"] * 2
        assert result.request_id == "bid-across-a-drop"
        assert result.bid_id == lost[0]["data"]["bid_id"]
        ((stored_id, _),) = await bids_of(auction_id)
        assert result.bid_id == stored_id
        # Its event: once, although the connection it came on dropped.
        (event,) = await collect(alice, Event, 1)
        assert (event.seq, event.data["bid_id"]) == (1, stored_id)
        assert await nothing_more(alice, Event) == []
        # The subscription was resumed after the drop with since_seq.
        resubscribes = [m for m in sent if m["type"] == "subscribe"]
        assert len(resubscribes) == 1 and resubscribes[0]["auction_id"] == auction_id
        assert "since_seq" in resubscribes[0]


async def test_a_bid_sent_while_disconnected_goes_out_on_the_next_connection(daphnes, monkeypatch):
    a, b = daphnes
    (seller, _), (_, alice_token) = await users_with_tokens(2)
    auction_id = await auction_open(seller)
    async with client_for([a.ws_url, b.ws_url], alice_token) as alice:
        held = HeldReconnects(alice, monkeypatch)
        abort(alice)
        assert await wait_for(lambda: held.attempts, TIMEOUT)
        bid = asyncio.create_task(alice.place_bid(auction_id, "10.00", request_id="offline"))
        await asyncio.sleep(0.2)
        assert not bid.done()
        held.release()
        result = await asyncio.wait_for(bid, TIMEOUT)
        assert result.request_id == "offline"
        assert len(await bids_of(auction_id)) == 1


# --- notifications ---------------------------------------------------------------------


async def test_an_outbid_arrives_as_a_notification_and_resumes_after_a_drop(daphnes, monkeypatch):
    a, b = daphnes
    (seller, _), (_, alice_token), (_, bob_token) = await users_with_tokens(3)
    auction_id = await auction_open(seller)
    bob = await WsClient.open(b, bob_token, label="bob")
    try:
        async with client_for([a.ws_url, b.ws_url], alice_token) as alice:
            held = HeldReconnects(alice, monkeypatch)
            await alice.place_bid(auction_id, "10.00")
            await ws_bid(bob, auction_id, "11.00")
            (first,) = await collect(alice, Notification, 1)
            assert (first.seq, first.kind, first.auction_id) == (1, "outbid", auction_id)
            assert first.data["price"] == "11.00"
            assert alice.last_notification_seq == 1

            abort(alice)
            assert await wait_for(lambda: held.attempts, TIMEOUT)
            # Outbid again while away (bidding from another connection of hers).
            elsewhere = await WsClient.open(a, alice_token, label="alice-elsewhere")
            try:
                await ws_bid(elsewhere, auction_id, "12.00")
                await ws_bid(bob, auction_id, "13.00")
            finally:
                await elsewhere.close()
            held.release()
            (missed,) = await collect(alice, Notification, 1)
            assert (missed.seq, missed.data["price"]) == (2, "13.00")
            # And live again after the reconnect.
            await alice.place_bid(auction_id, "14.00")
            await ws_bid(bob, auction_id, "15.00")
            (live,) = await collect(alice, Notification, 1)
            assert (live.seq, live.data["price"]) == (3, "15.00")
            assert await nothing_more(alice, Notification) == []
            assert alice.reconnects == 1
    finally:
        await bob.close()


async def test_follow_notifications_replays_the_stored_ones(daphnes):
    a, b = daphnes
    (seller, _), (_, alice_token), (_, bob_token) = await users_with_tokens(3)
    auction_id = await auction_open(seller)
    alice_ws = await WsClient.open(a, alice_token, label="alice-ws")
    bob = await WsClient.open(b, bob_token, label="bob")
    try:
        for alices, bobs in (("10.00", "11.00"), ("12.00", "13.00"), ("14.00", "15.00")):
            await ws_bid(alice_ws, auction_id, alices)
            await ws_bid(bob, auction_id, bobs)
        async with client_for(b.ws_url, alice_token) as alice:
            await alice.follow_notifications(since_seq=1)
            notes = await collect(alice, Notification, 2)
            assert [(n.seq, n.data["price"]) for n in notes] == [(2, "13.00"), (3, "15.00")]
            assert await nothing_more(alice, Notification) == []
    finally:
        await alice_ws.close()
        await bob.close()


# --- authentication and closing -------------------------------------------------------------


@pytest.mark.parametrize("token_in_query", [False, True])
async def test_a_bad_token_is_final_authentication_failed(daphnes, token_in_query):
    a, _ = daphnes
    client = client_for(a.ws_url, "not-a-token", token_in_query=token_in_query)
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed):
        await client.connect()
    assert time.monotonic() - started < 5, "retried a refused token"
    assert client.close_codes == [4401]
    assert client.connections == 1
    with pytest.raises(AuthenticationFailed):
        await client.subscribe("00000000-0000-4000-8000-000000000000")


async def test_a_token_revoked_meanwhile_ends_the_client_at_the_next_reconnect(
    daphnes, monkeypatch
):
    a, b = daphnes
    (seller, _), (alice_user, alice_token) = await users_with_tokens(2)
    auction_id = await auction_open(seller)
    async with client_for([a.ws_url, b.ws_url], alice_token) as alice:
        held = HeldReconnects(alice, monkeypatch)
        await alice.subscribe(auction_id)
        await tokens_revoke(alice_user)
        abort(alice)
        assert await wait_for(lambda: held.attempts, TIMEOUT)
        held.release()
        with pytest.raises(AuthenticationFailed):
            while True:
                await alice.next_event(timeout=TIMEOUT)
        assert alice.close_codes == [1006, 4401]
        with pytest.raises(AuthenticationFailed):
            await alice.place_bid(auction_id, "10.00")
        await asyncio.sleep(0.5)
        assert alice.connections == 2, "reconnected after a 4401"


async def test_iterating_ends_when_the_client_is_closed(daphnes):
    a, _ = daphnes
    (seller, _), (_, token) = await users_with_tokens(2)
    auction_id = await auction_open(seller)
    client = client_for(a.ws_url, token)
    await client.connect()
    await client.subscribe(auction_id)
    seen: list[ServerMessage] = []

    async def read_all() -> None:
        async for message in client:
            seen.append(message)

    reader = asyncio.create_task(read_all())
    await asyncio.sleep(0.2)
    await client.close()
    await asyncio.wait_for(reader, 5)  # ends, without raising
    assert not client.connected
    with pytest.raises(ClientClosed):
        await client.place_bid(auction_id, "10.00")


# Last in the module: it stops the run's Redis, which the daphne processes then reconnect to.
@pytest.mark.parametrize(
    "wait_for_the_layer",
    # At once: right after Redis is back, a daphne may not follow the auction's group yet,
    # and a live event then misses it; realtime.latest brings it within seconds.
    [True, False],
    ids=["layer-resubscribed", "at-once"],
)
async def test_a_redis_outage_is_not_final_the_client_resumes_after_it(
    daphnes, redis_server, wait_for_the_layer
):
    a, b = daphnes
    (seller, _), (bob, _), (carol, _), (_, watcher_token) = await users_with_tokens(4)
    auction_id = await auction_open(seller)
    async with client_for([a.ws_url, b.ws_url], watcher_token, open_timeout=5) as client:
        await client.subscribe(auction_id)
        await bid_direct(auction_id, bob, "10.00")
        (first,) = await collect(client, Event, 1)
        assert first.seq == 1
        opened = client.connections
        redis_server.stop()
        try:
            abort(client)
            # Stored while Redis is away (their publishing fails): only a replay brings them.
            await bid_direct(auction_id, carol, "11.00")
            await bid_direct(auction_id, bob, "12.00")
            await asyncio.sleep(2.0)  # the client keeps trying, refused (4503) or failing
            assert client._failure is None
        finally:
            redis_server.start()
        assert await wait_for(lambda: client.connected and client.connections > opened, 30)
        missed = await collect(client, Event, 2, timeout=30)
        assert [e.seq for e in missed] == [2, 3]
        assert 4401 not in client.close_codes
        print(f"\n[client, redis outage] close codes {client.close_codes}")
        if wait_for_the_layer:
            followed = await wait_for(lambda: group_subscribers(auction_id) >= 1, 30)
            assert followed, "no daphne follows the auction again (server side)"
        await bid_direct(auction_id, carol, "13.00")
        (live,) = await collect(client, Event, 1, timeout=10)
        assert live.seq == 4
        assert bid_ids([first, *missed, live]) == await stored_events(auction_id)
        assert await nothing_more(client, Event) == []
