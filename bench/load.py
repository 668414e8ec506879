"""Load generators: OS processes, each one asyncio loop of `websockets` clients on 127.0.0.1.

Nothing here imports Django: processes start with `spawn` and get plain values (URLs,
tokens, ids). Every loop stops at a count bound and at a time bound, whichever comes first.
A process sends its result (plain lists and dicts) back on a queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import multiprocessing
import queue
import random
import resource
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import uvloop
from websockets.asyncio.client import ClientConnection, connect

from auction_client.client import AuctionClient
from auction_client.errors import BidRejected
from auction_client.messages import Event

REPLY_TIMEOUT = 10.0
OPEN_TIMEOUT = 20.0
# Once told to stop, observers wait at most this long for the last events.
DRAIN_SECONDS = 10.0
CONTEXT = multiprocessing.get_context("spawn")


def cents(text: Any) -> int:
    return int(Decimal(str(text)) * 100)


def money(amount_cents: int) -> str:
    return f"{amount_cents // 100}.{amount_cents % 100:02d}"


def _loopback_only(url: str) -> None:
    """The bench never targets anything but this machine."""
    if urlsplit(url).hostname not in {"127.0.0.1", "localhost"}:
        raise ValueError(f"refusing a non-loopback target: {url}")


async def ws_open(url: str, token: str) -> ClientConnection:
    """An authenticated connection; loopback only (the bench never targets anything else)."""
    _loopback_only(url)
    return await connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        compression=None,
        proxy=None,
        ping_interval=None,
        open_timeout=OPEN_TIMEOUT,
        close_timeout=2,
        max_queue=None,
    )


async def wait_mp_event(event: Any, timeout: float) -> bool:
    """Poll a multiprocessing.Event from asyncio; True if it was set within timeout."""
    deadline = time.monotonic() + timeout
    while not event.is_set():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


class Conn:
    """One connection with a reader task: replies by request_id, events to a callback."""

    def __init__(
        self, ws: ClientConnection, on_event: Callable[[dict[str, Any], float], None]
    ) -> None:
        self.ws = ws
        self.on_event = on_event
        self.pending: dict[str, asyncio.Future[tuple[dict[str, Any], float]]] = {}
        self.reader = asyncio.create_task(self._read())
        self.closed_code: int | None = None

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.time()
                message = json.loads(raw)
                request_id = message.get("request_id")
                future = self.pending.pop(request_id, None) if request_id else None
                if future is not None and not future.done():
                    future.set_result((message, now))
                elif "seq" in message:
                    self.on_event(message, now)
        except Exception:
            pass
        finally:
            self.closed_code = self.ws.close_code
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))

    async def request(self, message: dict[str, Any]) -> tuple[dict[str, Any], float, float]:
        """Send message with a fresh request_id; (reply, sent at, received at)."""
        request_id = uuid.uuid4().hex
        future: asyncio.Future[tuple[dict[str, Any], float]]
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        sent = time.time()
        await self.ws.send(json.dumps({**message, "request_id": request_id}))
        reply, received = await asyncio.wait_for(future, REPLY_TIMEOUT)
        return reply, sent, received

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.reader.cancel()


# --- bidders (hot, many) ----------------------------------------------------------------


@dataclass
class AuctionView:
    min_next: int
    seq: int = 0
    mine: bool = False  # this bidder holds the highest bid, as far as it knows


async def bidders(
    *,
    urls: list[str],
    bidders: list[dict[str, str]],
    auctions: list[list[str]],
    seconds: float,
    max_attempts: int,
    extra_cents: int = 3,
    max_share: float = 0.0,
    max_above_cents: int = 200,
    library: bool = False,
) -> dict[str, Any]:
    """Each bidder bids on its auctions as fast as replies come, never against itself.

    A `max_share` of the bids are maximum bids ("bid for me up to"), up to
    `max_above_cents` above the minimum next bid; the rest are straight bids. With
    `library`, each bidder is an `auction_client.AuctionClient` (request ids, resume,
    retries) instead of a bare socket: the same load, through what an API client uses.
    """
    result: dict[str, Any] = {"sent": [], "rtt": [], "ok": [], "codes": Counter(), "errors": []}
    start = time.time()
    deadline = start + seconds
    bidder_task = _library_bidder if library else _bidder
    tasks = [
        bidder_task(
            urls[index % len(urls)],
            bidder,
            auctions[index],
            deadline,
            max_attempts,
            extra_cents,
            max_share,
            max_above_cents,
            result,
        )
        for index, bidder in enumerate(bidders)
    ]
    await asyncio.gather(*tasks)
    result["codes"] = dict(result["codes"])
    return result


async def _next_offer(
    views: dict[str, AuctionView], any_change: asyncio.Event, extra_cents: int
) -> tuple[str, AuctionView, int] | None:
    """An auction this bidder does not lead and the amount to bid on it; None (after a
    short wait for a change) while it leads all of them."""
    open_ids = [auction_id for auction_id, view in views.items() if not view.mine]
    if not open_ids:
        any_change.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(any_change.wait(), 0.2)
        return None
    auction_id = random.choice(open_ids)
    view = views[auction_id]
    return auction_id, view, view.min_next + random.randint(0, extra_cents)


async def _bidder(
    url: str,
    bidder: dict[str, str],
    auction_ids: list[str],
    deadline: float,
    max_attempts: int,
    extra_cents: int,
    max_share: float,
    max_above_cents: int,
    result: dict[str, Any],
) -> None:
    views: dict[str, AuctionView] = {}
    any_change = asyncio.Event()

    def on_event(message: dict[str, Any], _now: float) -> None:
        view = views.get(message.get("auction_id", ""))
        if view is None or message["type"] != "bid_placed" or message["seq"] <= view.seq:
            return
        view.seq = message["seq"]
        view.min_next = cents(message["data"]["min_next_bid"])
        leader = message["data"].get("highest_bidder") or message["data"]["bidder"]
        view.mine = leader["id"] == bidder["id"]
        any_change.set()

    try:
        conn = Conn(await ws_open(url, bidder["token"]), on_event)
        for auction_id in auction_ids:
            reply, _, _ = await conn.request({"type": "subscribe", "auction_id": auction_id})
            data = reply["data"]
            views[auction_id] = AuctionView(cents(data["min_next_bid"]), data["seq"])
            highest = data.get("highest_bidder") or {}
            views[auction_id].mine = highest.get("id") == bidder["id"]
    except Exception as error:
        result["errors"].append(f"setup: {error!r}")
        return
    attempts = 0
    try:
        while attempts < max_attempts and time.time() < deadline:
            offer = await _next_offer(views, any_change, extra_cents)
            if offer is None:
                continue
            auction_id, view, amount = offer
            attempts += 1
            message = {"type": "place_bid", "auction_id": auction_id, "amount": money(amount)}
            if random.random() < max_share:
                top = amount + random.randint(0, max_above_cents)
                message = {"type": "place_bid", "auction_id": auction_id, "max_amount": money(top)}
            reply, sent, received = await conn.request(message)
            result["sent"].append(sent)
            result["rtt"].append(received - sent)
            data = reply.get("data") or {}
            if reply["type"] == "bid_accepted":
                result["ok"].append(1)
                result["codes"]["accepted"] += 1
                if data["seq"] > view.seq:
                    view.seq = data["seq"]
                    view.min_next = cents(data["min_next_bid"])
                    view.mine = data.get("leading", True)
            else:
                result["ok"].append(0)
                result["codes"][reply.get("code", reply["type"])] += 1
                if data.get("min_next_bid") is not None:
                    view.min_next = max(view.min_next, cents(data["min_next_bid"]))
                if reply.get("code") == "already_highest":
                    view.mine = True
    except Exception as error:
        result["errors"].append(f"bid: {error!r}")
    finally:
        await conn.close()


async def _library_bidder(
    url: str,
    bidder: dict[str, str],
    auction_ids: list[str],
    deadline: float,
    max_attempts: int,
    extra_cents: int,
    max_share: float,
    max_above_cents: int,
    result: dict[str, Any],
) -> None:
    """_bidder's loop through the client library: its events, its bids, its errors."""
    _loopback_only(url)
    views: dict[str, AuctionView] = {}
    any_change = asyncio.Event()
    client = AuctionClient(url, bidder["token"], request_timeout=REPLY_TIMEOUT)

    async def follow() -> None:
        async for message in client:
            if not isinstance(message, Event) or message.type != "bid_placed":
                continue
            view = views.get(message.auction_id)
            if view is None or message.seq <= view.seq:
                continue
            view.seq = message.seq
            view.min_next = cents(message.data["min_next_bid"])
            leader = message.data.get("highest_bidder") or message.data["bidder"]
            view.mine = leader["id"] == bidder["id"]
            any_change.set()

    try:
        await client.connect()
        for auction_id in auction_ids:
            data = await client.subscribe(auction_id)
            views[auction_id] = AuctionView(cents(data["min_next_bid"]), data["seq"])
            views[auction_id].mine = (data.get("highest_bidder") or {}).get("id") == bidder["id"]
    except Exception as error:
        result["errors"].append(f"setup: {error!r}")
        await client.close()
        return
    follower = asyncio.create_task(follow())
    attempts = 0
    try:
        while attempts < max_attempts and time.time() < deadline:
            offer = await _next_offer(views, any_change, extra_cents)
            if offer is None:
                continue
            auction_id, view, amount = offer
            attempts += 1
            sent = time.time()
            try:
                if random.random() < max_share:
                    top = amount + random.randint(0, max_above_cents)
                    bid = await client.place_bid(auction_id, max_amount=money(top))
                else:
                    bid = await client.place_bid(auction_id, money(amount))
            except BidRejected as rejected:
                result["sent"].append(sent)
                result["rtt"].append(time.time() - sent)
                result["ok"].append(0)
                result["codes"][rejected.code] += 1
                if rejected.data.get("min_next_bid") is not None:
                    view.min_next = max(view.min_next, cents(rejected.data["min_next_bid"]))
                if rejected.code == "already_highest":
                    view.mine = True
                continue
            result["sent"].append(sent)
            result["rtt"].append(time.time() - sent)
            result["ok"].append(1)
            result["codes"]["accepted"] += 1
            if bid.seq > view.seq:
                view.seq = bid.seq
                view.min_next = cents(bid.data["min_next_bid"])
                view.mine = bid.leading
    except Exception as error:
        result["errors"].append(f"bid: {error!r}")
    finally:
        follower.cancel()
        await client.close()


# --- a steady bidder (fanout, reconnect) ------------------------------------------------


async def paced_bidder(
    *,
    urls: list[str],
    bidders: list[dict[str, str]],
    auction_id: str,
    rate: float,
    seconds: float,
    max_bids: int,
    control: dict[str, Any],
) -> dict[str, Any]:
    """Bid `rate` times a second, alternating two users so each bid is accepted.

    Waits for control["start"]; records the send time of every accepted bid by its seq
    and publishes the last seq in control["last_seq"].
    """
    result: dict[str, Any] = {"sent_by_seq": {}, "rtt": [], "codes": Counter(), "errors": []}
    conns = [
        Conn(await ws_open(urls[i % len(urls)], b["token"]), lambda *_: None)
        for i, b in enumerate(bidders)
    ]
    reply, _, _ = await conns[0].request({"type": "subscribe", "auction_id": auction_id})
    min_next = cents(reply["data"]["min_next_bid"])
    await wait_mp_event(control["start"], 120)
    start = time.time()
    interval = 1.0 / rate

    async def one(number: int) -> None:
        # Amounts rise a cent a bid, so the pace never waits for replies; a bid
        # overtaken by the next one is rejected and counted, nothing more.
        conn = conns[number % len(conns)]
        amount = money(min_next + number)
        message = {"type": "place_bid", "auction_id": auction_id, "amount": amount}
        try:
            reply, sent, received = await conn.request(message)
        except Exception as error:
            result["errors"].append(repr(error))
            return
        result["rtt"].append(received - sent)
        data = reply.get("data") or {}
        if reply["type"] == "bid_accepted":
            result["sent_by_seq"][data["seq"]] = sent
            control["last_seq"].value = max(control["last_seq"].value, data["seq"])
            result["codes"]["accepted"] += 1
        else:
            result["codes"][reply.get("code", "?")] += 1

    tasks = []
    for number in range(max_bids):
        if time.time() - start > seconds or control["stop"].is_set():
            break
        await asyncio.sleep(max(0.0, start + number * interval - time.time()))
        tasks.append(asyncio.create_task(one(number)))
    await asyncio.gather(*tasks)
    for conn in conns:
        await conn.close()
    result["codes"] = dict(result["codes"])
    result["started"] = start
    return result


# --- observers (fanout) and reconnecting clients (reconnect) ----------------------------


@dataclass
class Watcher:
    """One subscribed client: every event seq it saw, with receive times."""

    first_seq: int = 0
    seqs: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    resubscribed: float = 0.0
    converged: float = 0.0
    target: int = 0  # snapshot seq at resubscription: converged once seen
    last: int = 0
    opened: bool = False

    def on_event(self, message: dict[str, Any], now: float) -> None:
        self.seqs.append(message["seq"])
        self.times.append(now)
        self.last = max(self.last, message["seq"])
        if self.resubscribed and not self.converged and self.last >= self.target:
            self.converged = now


async def _subscribe(
    url: str, token: str, auction_id: str, watcher: Watcher, since: int | None = None
) -> Conn:
    conn = Conn(await ws_open(url, token), watcher.on_event)
    message: dict[str, Any] = {"type": "subscribe", "auction_id": auction_id}
    if since is not None:
        message["since_seq"] = since
    reply, _, received = await conn.request(message)
    if reply["type"] != "subscribed":
        raise RuntimeError(f"subscribe answered {reply}")
    seq = reply["data"]["seq"]
    watcher.opened = True
    if since is None:
        watcher.first_seq = seq
        watcher.last = max(watcher.last, seq)
    else:
        watcher.resubscribed = received
        watcher.target = seq
        if watcher.last >= seq:
            watcher.converged = received
    return conn


async def _gather_limited(factories: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def one(factory: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            try:
                return await factory()
            except Exception as error:
                return error

    return await asyncio.gather(*(one(factory) for factory in factories))


async def observers(
    *,
    urls: list[str],
    token: str,
    auction_id: str,
    count: int,
    seconds: float,
    control: dict[str, Any],
    reconnect: bool = False,
) -> dict[str, Any]:
    """`count` subscribers; with reconnect, all drop and resume at control["drop"]."""
    watchers = [Watcher() for _ in range(count)]
    factories: list[Callable[[], Awaitable[Any]]] = [
        functools.partial(_subscribe, urls[i % len(urls)], token, auction_id, watchers[i])
        for i in range(count)
    ]
    opened = await _gather_limited(factories, 50)
    conns = [conn for conn in opened if isinstance(conn, Conn)]
    errors = Counter(repr(conn)[:120] for conn in opened if not isinstance(conn, Conn))
    control["ready"].put(len(conns))
    deadline = time.time() + seconds
    if reconnect:
        await wait_mp_event(control["drop"], seconds)
        pairs = [(i, conn) for i, conn in enumerate(opened) if isinstance(conn, Conn)]
        await asyncio.gather(*(conn.close() for _, conn in pairs))
        factories = [
            functools.partial(
                _subscribe, urls[i % len(urls)], token, auction_id, watchers[i], watchers[i].last
            )
            for i, _ in pairs
        ]
        reopened = await _gather_limited(factories, 1000)
        conns = [conn for conn in reopened if isinstance(conn, Conn)]
        errors.update(repr(conn)[:120] for conn in reopened if not isinstance(conn, Conn))
    await wait_mp_event(control["stop"], max(0.0, deadline - time.time()))
    drain_end = time.time() + DRAIN_SECONDS
    while time.time() < drain_end:
        final = control["last_seq"].value
        if all(w.last >= final for w in watchers if w.opened):
            break
        await asyncio.sleep(0.05)
    await _gather_limited([conn.close for conn in conns], 500)
    return {
        "opened": len(opened) - sum(not isinstance(c, Conn) for c in opened),
        "errors": dict(errors),
        "watchers": [
            {
                "opened": w.opened,
                "first": w.first_seq,
                "seqs": w.seqs,
                "times": w.times,
                "resubscribed": w.resubscribed,
                "converged": w.converged,
            }
            for w in watchers
        ],
    }


# --- idle sockets -----------------------------------------------------------------------


async def idle(
    *,
    urls: list[str],
    token: str,
    per_url: int,
    seconds: float,
    control: dict[str, Any],
    concurrency: int = 50,
) -> dict[str, Any]:
    """Open up to per_url authenticated sockets on each URL (ping answered), then hold them.

    Stops opening on a URL after 50 failures in a row or when seconds have passed.
    """
    deadline = time.time() + seconds
    conns: list[ClientConnection] = []
    opened: Counter[str] = Counter()
    errors: Counter[str] = Counter()

    async def fill(url: str) -> None:
        failures_in_row = 0
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            nonlocal failures_in_row
            async with semaphore:
                if failures_in_row >= 50 or time.time() > deadline:
                    return
                try:
                    ws = await ws_open(url, token)
                    await ws.send('{"type":"ping"}')
                    reply = json.loads(await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT))
                    if reply.get("type") != "pong":
                        raise RuntimeError(f"ping answered {reply.get('type')}")
                    conns.append(ws)
                    opened[url] += 1
                    failures_in_row = 0
                except Exception as error:
                    failures_in_row += 1
                    errors[repr(error)[:120]] += 1

        await asyncio.gather(*(one() for _ in range(per_url)))

    await asyncio.gather(*(fill(url) for url in urls))
    control["ready"].put(dict(opened))
    await wait_mp_event(control["stop"], max(5.0, deadline - time.time() + 60))
    for ws in conns:
        ws.transport.abort()  # closing 10,000 sockets politely takes longer than it tells
    return {"opened": dict(opened), "errors": dict(errors)}


# --- churn ------------------------------------------------------------------------------


async def churn(
    *,
    urls: list[str],
    token: str,
    auction_id: str,
    loops: int,
    seconds: float,
    max_cycles: int,
) -> dict[str, Any]:
    """`loops` concurrent loops of connect, subscribe, disconnect."""
    deadline = time.time() + seconds
    result: dict[str, Any] = {"handshake": [], "cycle": [], "done_at": [], "errors": Counter()}
    per_loop = max(1, max_cycles // loops)

    async def loop(index: int) -> None:
        url = urls[index % len(urls)]
        for _ in range(per_loop):
            if time.time() > deadline:
                return
            began = time.time()
            try:
                ws = await ws_open(url, token)
                shaken = time.time()
                await ws.send(json.dumps({"type": "subscribe", "auction_id": auction_id}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT))
                if reply.get("type") != "subscribed":
                    raise RuntimeError(f"subscribe answered {reply.get('type')}")
                await ws.close()
            except Exception as error:
                result["errors"][repr(error)[:120]] += 1
                await asyncio.sleep(0.05)
                continue
            ended = time.time()
            result["handshake"].append(shaken - began)
            result["cycle"].append(ended - began)
            result["done_at"].append(ended)

    await asyncio.gather(*(loop(i) for i in range(loops)))
    result["errors"] = dict(result["errors"])
    return result


# --- running processes ------------------------------------------------------------------

KINDS: dict[str, Callable[..., Coroutine[Any, Any, dict[str, Any]]]] = {
    "bidders": bidders,
    "paced_bidder": paced_bidder,
    "observers": observers,
    "idle": idle,
    "churn": churn,
}


def _process_main(kind: str, params: dict[str, Any], results: Any) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        # uvloop: the load shares the cores with the servers it measures, so the less CPU
        # it takes per message and per handshake, the less it skews what it measures.
        results.put(uvloop.run(KINDS[kind](**params)))
    except BaseException:
        results.put({"fatal": traceback.format_exc()})


def control_new() -> dict[str, Any]:
    """Shared signals between the bench and its load processes."""
    return {
        "start": CONTEXT.Event(),
        "stop": CONTEXT.Event(),
        "drop": CONTEXT.Event(),
        "ready": CONTEXT.Queue(),
        "last_seq": CONTEXT.Value("q", 0),
    }


class Group:
    """Load processes of one kind; collect their results once."""

    def __init__(self, kind: str, params_list: list[dict[str, Any]]) -> None:
        self.results_queue = CONTEXT.Queue()
        self.processes = [
            CONTEXT.Process(target=_process_main, args=(kind, params, self.results_queue))
            for params in params_list
        ]
        for process in self.processes:
            process.start()

    def results(self, timeout: float) -> list[dict[str, Any]]:
        """Every process's result (waits at most timeout in all); stops the processes."""
        collected = []
        deadline = time.monotonic() + timeout
        for _ in self.processes:
            try:
                remaining = max(0.1, deadline - time.monotonic())
                collected.append(self.results_queue.get(timeout=remaining))
            except queue.Empty:
                collected.append({"fatal": "no result in time"})
        self.stop()
        for item in collected:
            if "fatal" in item:
                print(f"[bench] a load process failed: {item['fatal']}", flush=True)
        return collected

    def stop(self) -> None:
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
                process.join(5)
            if process.is_alive():
                process.kill()
                process.join()


def wait_ready(control: dict[str, Any], processes: int, timeout: float) -> list[Any]:
    """What each process put on control["ready"] (None for one that did not in time)."""
    values = []
    deadline = time.monotonic() + timeout
    for _ in range(processes):
        try:
            values.append(control["ready"].get(timeout=max(0.1, deadline - time.monotonic())))
        except queue.Empty:
            values.append(None)
    return values


def chunks(items: list[Any], parts: int) -> list[list[Any]]:
    """items split round-robin into `parts` lists."""
    out: list[list[Any]] = [[] for _ in range(parts)]
    for item, bucket in zip(items, itertools.cycle(range(parts)), strict=False):
        out[bucket].append(item)
    return out
