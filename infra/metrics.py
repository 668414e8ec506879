"""The service's Prometheus metrics (spec §11), for every process of a machine together.

Each process records into prometheus_client's default registry. With
PROMETHEUS_MULTIPROC_DIR set (scripts/stack.py sets it for the quick start; a deployment
sets it per machine, emptied before the processes start), prometheus_client writes every
process's values to files there, and `metrics_text` adds them all up, so one process's
`/metrics` shows the web processes, the worker and beat together. Without it, a
process shows its own.
"""

import atexit
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

# Seconds, from a lone bid on an idle machine to a batch waiting behind a slow one.
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Seconds, for things that are late by design a little (a schedule, a delivery).
_LATE = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

BIDS = Counter(
    "auction_bids",
    "Bids and buy-it-now offers decided, by outcome (accepted or the rejection code).",
    ["outcome"],
)
BID_DECISION_SECONDS = Histogram(
    "auction_bid_decision_seconds",
    "From an offer reaching the bid engine to its decision (its wait for a batch included).",
    buckets=_FAST,
)
EVENTS_PUBLISHED = Counter(
    "auction_events_published", "Outbox rows published to the channel layer, by stream.", ["stream"]
)
DELIVERY_LAG_SECONDS = Histogram(
    "auction_delivery_lag_seconds",
    "From a live message's commit to the end of its hand-out to this process's sockets.",
    buckets=_LATE,
)
CONNECTIONS = Gauge(
    "auction_websocket_connections", "Open WebSocket connections.", multiprocess_mode="livesum"
)
SUBSCRIPTIONS = Gauge(
    "auction_subscriptions",
    "Auction subscriptions of open connections.",
    multiprocess_mode="livesum",
)
EMAILS = Counter(
    "auction_notification_emails",
    "Notification e-mails by result: sent, skipped, failed (refused for good), deferred"
    " (tried again later).",
    ["result"],
)
SCHEDULE_LATENESS_SECONDS = Histogram(
    "auction_schedule_lateness_seconds",
    "How late an auction was started or ended after its time, by what happened.",
    ["transition"],
    buckets=_LATE,
)

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

# Labels known in advance start at 0, so a scrape shows every series from the first one.
BIDS.labels("accepted")
for _stream in ("event", "notification"):
    EVENTS_PUBLISHED.labels(_stream)
for _result in ("sent", "skipped", "failed", "deferred"):
    EMAILS.labels(_result)
for _transition in ("start", "end"):
    SCHEDULE_LATENESS_SECONDS.labels(_transition)

if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # A process that exits stops counting in the live gauges (connections, subscriptions).
    # One that is killed keeps its last values there until the directory is emptied, when
    # the machine's processes next start together.
    atexit.register(mark_process_dead, os.getpid())


def metrics_text() -> bytes:
    """Every metric in the Prometheus text format: the machine's processes added up when
    PROMETHEUS_MULTIPROC_DIR is set, else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
