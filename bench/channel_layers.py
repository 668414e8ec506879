"""Channel layers for our fan-out: pub/sub against the list-based layer, same settings.

Run against a Redis you may load (no database needed):

    REDIS_URL=redis://127.0.0.1:56379/0 .venv/bin/python -m bench.channel_layers
    .venv/bin/python -m bench.channel_layers --subscribers 200,2000 --rate 50 --count 250

The pattern is ours: N consumers in ONE process (one daphne), all in the group of one
auction, and one publisher in another process doing `group_send` of event-sized messages
(~300 B, shaped like `realtime.publish`'s) at a fixed rate for a bounded count. Each
consumer runs the loop channels runs for it: `await layer.receive(channel)`, forever.

Measured: messages delivered per second in the subscriber process (from the first
delivery to the last), the subscriber's CPU time per delivered message
(`resource.getrusage`, user + system), lost messages, delivery latency (publisher's
send time to the consumer's receive, one machine clock), and the publisher's
`group_send` latency and CPU per call. The layers are built the way the settings build
them (`CHANNEL_LAYER=pubsub|list` selects `CHANNEL_LAYER_BACKENDS[...]` with the same
CONFIG), but both in one run. Keys and channels are unique per run and are not flushed
(flushing would wipe anyone else's data on the same Redis).
"""

import argparse
import asyncio
import json
import logging
import multiprocessing
import os
import platform
import resource
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auction_site.settings.local")
django.setup()

from django.conf import settings  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402

DEFAULT_OUTPUT = Path(settings.BASE_DIR) / "bench-results" / "channel_layers.json"
SETUP_TIMEOUT = 60.0
# After the publisher is done, how long deliveries may trail (and how long a quiet spell
# ends the wait early).
DRAIN_TIMEOUT = 30.0
QUIET_SECONDS = 3.0


def layer_make(name: str) -> Any:
    """The layer `CHANNEL_LAYER=name` would give, with the settings' CONFIG."""
    backend = settings.CHANNEL_LAYER_BACKENDS[name]
    return import_string(backend)(**settings.CHANNEL_LAYERS["default"].get("CONFIG", {}))


def event_message(seq: int, auction_id: str) -> dict[str, Any]:
    """A channel-layer message like realtime.publish's for a `bid_placed` (~300 B packed)."""
    text = json.dumps(
        {
            "type": "bid_placed",
            "auction_id": auction_id,
            "seq": seq,
            "timestamp": round(time.time(), 3),
            "data": {
                "bid_id": str(uuid.uuid4()),
                "amount": "1234.56",
                "bidder": {"id": str(uuid.uuid4()), "name": "bidder42"},
                "current_price": "1234.56",
                "min_next_bid": "1234.57",
                "bid_count": seq,
                "end_time": "2030-01-01T00:00:00.000Z",
            },
        },
        separators=(",", ":"),
    )
    return {
        "type": "auction.event",
        "auction_id": auction_id,
        "seq": seq,
        "text": text,
        "sent_at": time.time(),
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# --- subscriber process ----------------------------------------------------------


def quiet_layer_logs() -> None:
    # The list layer logs every over-capacity send at INFO; losses are counted instead.
    logging.getLogger("channels_redis").setLevel(logging.WARNING)


def subscriber_main(layer_name: str, n: int, group: str, count: int, pipe: Connection) -> None:
    quiet_layer_logs()
    asyncio.run(_subscriber(layer_name, n, group, count, pipe))


async def _subscriber(layer_name: str, n: int, group: str, count: int, pipe: Connection) -> None:
    layer = layer_make(layer_name)
    started = time.perf_counter()
    channels = [await layer.new_channel() for _ in range(n)]
    for channel in channels:
        await layer.group_add(group, channel)
    delivered = 0
    first = last = 0.0
    latencies: list[float] = []
    seen: list[set[int]] = [set() for _ in range(n)]
    duplicates = 0

    async def consume(index: int, channel: str) -> None:
        nonlocal delivered, first, last, duplicates
        while True:
            message = await layer.receive(channel)
            now = time.time()
            delivered += 1
            last = time.perf_counter()
            first = first or last
            if message["seq"] in seen[index]:
                duplicates += 1
            seen[index].add(message["seq"])
            if index % 10 == 0:  # a sample of consumers is enough for the latency
                latencies.append(now - message["sent_at"])

    tasks = [asyncio.create_task(consume(i, channel)) for i, channel in enumerate(channels)]
    await asyncio.sleep(0.2)  # every consumer waiting in receive()
    cpu_before = cpu_seconds()
    pipe.send({"setup_seconds": time.perf_counter() - started})

    expected = n * count
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, pipe.recv)  # the publisher is done
    deadline = time.monotonic() + DRAIN_TIMEOUT
    progress_at, progress = time.monotonic(), delivered
    while delivered < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        if delivered != progress:
            progress_at, progress = time.monotonic(), delivered
        elif time.monotonic() - progress_at > QUIET_SECONDS:
            break
    cpu = cpu_seconds() - cpu_before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for channel in channels:
        await layer.group_discard(group, channel)
    span = (last - first) if delivered > 1 else 0.0
    pipe.send(
        {
            "delivered": delivered,
            "expected": expected,
            "lost": expected - sum(len(s) for s in seen),
            "duplicates": duplicates,
            "delivered_per_s": delivered / span if span else None,
            "cpu_seconds": cpu,
            "cpu_us_per_delivery": cpu / delivered * 1e6 if delivered else None,
            "latency_ms_p50": _ms(percentile(latencies, 0.5)),
            "latency_ms_p99": _ms(percentile(latencies, 0.99)),
            "latency_ms_max": _ms(max(latencies, default=None)),
        }
    )


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


# --- publisher process -------------------------------------------------------------


def publisher_main(layer_name: str, group: str, count: int, rate: float, pipe: Connection) -> None:
    quiet_layer_logs()
    asyncio.run(_publisher(layer_name, group, count, rate, pipe))


async def _publisher(
    layer_name: str, group: str, count: int, rate: float, pipe: Connection
) -> None:
    layer = layer_make(layer_name)
    auction_id = str(uuid.uuid4())
    await layer.group_send(f"{group}-warmup", event_message(0, auction_id))  # connect first
    took: list[float] = []
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    for i in range(count):
        # A fixed schedule: a slow group_send does not push the later ones back.
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.perf_counter()
        await layer.group_send(group, event_message(i + 1, auction_id))
        took.append(time.perf_counter() - sent)
    elapsed = time.perf_counter() - started
    pipe.send(
        {
            "published": count,
            "publish_seconds": elapsed,
            "published_per_s": count / elapsed,
            "group_send_ms_p50": _ms(percentile(took, 0.5)),
            "group_send_ms_p99": _ms(percentile(took, 0.99)),
            "publisher_cpu_us_per_send": (cpu_seconds() - cpu_before) / count * 1e6,
        }
    )


# --- orchestration ---------------------------------------------------------------


def wire_bytes(layer_name: str, n: int) -> int:
    """Bytes one group_send puts on the wire to Redis for one subscriber process.

    The pub/sub layer publishes the message once; the list-based one pushes it with the
    names of every local channel it is for (`__asgi_channel__`)."""
    layer = layer_make(layer_name)
    message = event_message(1, str(uuid.uuid4()))
    if layer_name == "list":
        names = [f"specific.{uuid.uuid4().hex}!{uuid.uuid4().hex}" for _ in range(n)]
        message = dict(message, __asgi_channel__=names)
    return len(layer.serialize(message))


def run_one(layer_name: str, n: int, count: int, rate: float) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    group = f"auction.bench-{uuid.uuid4().hex[:12]}"
    sub_end, sub_pipe = context.Pipe()
    pub_end, pub_pipe = context.Pipe()
    subscriber = context.Process(
        target=subscriber_main, args=(layer_name, n, group, count, sub_pipe), daemon=True
    )
    publisher = context.Process(
        target=publisher_main, args=(layer_name, group, count, rate, pub_pipe), daemon=True
    )
    subscriber.start()
    try:
        if not sub_end.poll(SETUP_TIMEOUT):
            raise RuntimeError(f"{layer_name}/{n}: subscribers not ready")
        setup = sub_end.recv()
        publisher.start()
        if not pub_end.poll(count / rate + SETUP_TIMEOUT):
            raise RuntimeError(f"{layer_name}/{n}: publisher did not finish")
        published = pub_end.recv()
        sub_end.send("published")
        if not sub_end.poll(DRAIN_TIMEOUT + SETUP_TIMEOUT):
            raise RuntimeError(f"{layer_name}/{n}: subscriber did not report")
        received = sub_end.recv()
    finally:
        for process in (publisher, subscriber):
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
    return {
        "layer": layer_name,
        "backend": settings.CHANNEL_LAYER_BACKENDS[layer_name],
        "subscribers": n,
        "rate": rate,
        "count": count,
        "wire_bytes_per_send": wire_bytes(layer_name, n),
        **setup,
        **published,
        **received,
    }


COLUMNS = [
    ("layer", "layer", "{}"),
    ("subscribers", "subs", "{}"),
    ("delivered", "delivered", "{}"),
    ("lost", "lost", "{}"),
    ("delivered_per_s", "deliv/s", "{:.0f}"),
    ("cpu_us_per_delivery", "cpu us/deliv", "{:.1f}"),
    ("latency_ms_p50", "lat p50 ms", "{:.1f}"),
    ("latency_ms_p99", "lat p99 ms", "{:.1f}"),
    ("group_send_ms_p50", "send p50 ms", "{:.2f}"),
    ("group_send_ms_p99", "send p99 ms", "{:.2f}"),
    ("publisher_cpu_us_per_send", "pub cpu us/send", "{:.0f}"),
    ("wire_bytes_per_send", "bytes/send", "{}"),
    ("setup_seconds", "setup s", "{:.1f}"),
]


def table(runs: list[dict[str, Any]]) -> str:
    def cell(run: dict[str, Any], key: str, fmt: str) -> str:
        value = run.get(key)
        return "-" if value is None else fmt.format(value)

    rows = [[title for _, title, _ in COLUMNS]]
    rows += [[cell(run, key, fmt) for key, _, fmt in COLUMNS] for run in runs]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(value.rjust(width) for value, width in zip(row, widths, strict=True))
        for row in rows
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="pubsub,list")
    parser.add_argument("--subscribers", default="200,2000")
    parser.add_argument("--rate", type=float, default=50.0, help="group_send per second")
    parser.add_argument("--count", type=int, default=250, help="group_send calls per run")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    layers = [name.strip() for name in args.layers.split(",")]
    sizes = [int(n) for n in args.subscribers.split(",")]
    runs = []
    for n in sizes:
        for layer_name in layers:
            print(f"{layer_name}: {n} subscribers, {args.count} sends at {args.rate:g}/s ...")
            runs.append(run_one(layer_name, n, args.count, args.rate))
    print()
    print(table(runs))
    meta = {
        "redis_url": settings.REDIS_URL.split("@")[-1],
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"meta": meta, "runs": runs}, indent=2))
    print(f"results written to {args.output}")


if __name__ == "__main__":
    main()
