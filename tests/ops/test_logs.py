"""Logs (spec §11): one INFO line per request and per WebSocket connection; housekeeping that
finds nothing to do logs nothing above DEBUG; JSON lines with LOG_FORMAT=json."""

import functools
import json
import logging
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from celery.app import trace
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient
from django.utils import timezone

from accounts.services import api_token_create
from auction_site.access_log import WebSocketConnection
from auction_site.asgi import application
from auction_site.logs import BEAT_SENDING, QuietHousekeeping
from auctions.models import Auction, AuctionStatus
from auctions.services import auction_create
from realtime.internals import daphne_transport
from tests.factories import UserFactory
from tests.servers import CELERY, server_environment, spawn

ACCESS = "auction_site.access"


def access_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == ACCESS]


# HTTP


@pytest.mark.django_db
def test_a_request_logs_one_line_with_method_path_status_duration_and_user(client, alice, caplog):
    client.force_login(alice)
    with caplog.at_level(logging.INFO, logger=ACCESS):
        response = client.get("/?q=lamp")
    assert response.status_code == 200
    [record] = access_records(caplog)
    assert record.levelno == logging.INFO
    assert (record.method, record.path, record.status, record.user) == ("GET", "/", 200, "alice")
    assert record.duration_ms >= 0
    assert record.getMessage().startswith("GET / 200 ")
    assert "lamp" not in record.getMessage(), "query strings are not logged"


@pytest.mark.django_db
def test_an_anonymous_request_and_a_not_found_are_logged_too(client, caplog):
    with caplog.at_level(logging.INFO, logger=ACCESS):
        client.get("/healthz")
        client.get("/no-such-page")
    assert [(r.path, r.status, r.user) for r in access_records(caplog)] == [
        ("/healthz", 200, "-"),
        ("/no-such-page", 404, "-"),
    ]


@pytest.mark.django_db
def test_an_api_request_names_the_tokens_user(client, alice, caplog):
    _, token = api_token_create(user=alice)
    with caplog.at_level(logging.INFO, logger=ACCESS):
        response = client.get("/api/auctions/", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    [record] = access_records(caplog)
    assert (record.path, record.user) == ("/api/auctions/", "alice")


@pytest.mark.django_db(transaction=True)
async def test_the_middleware_logs_under_asgi_too(caplog):
    with caplog.at_level(logging.INFO, logger=ACCESS):
        response = await AsyncClient().get("/healthz")
    assert response.status_code == 200
    [record] = access_records(caplog)
    assert (record.method, record.path, record.status) == ("GET", "/healthz", 200)


# WebSocket


@pytest.mark.django_db(transaction=True)
async def test_a_websocket_connection_logs_one_line_when_it_ends(caplog):
    user = await database_sync_to_async(UserFactory)(username="ws-alice")
    _, token = await database_sync_to_async(api_token_create)(user=user)
    with caplog.at_level(logging.INFO, logger=ACCESS):
        communicator = WebsocketCommunicator(application, f"/ws/?token={token}")
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        for n in range(3):
            await communicator.send_json_to({"type": "ping", "request_id": f"p{n}"})
            assert (await communicator.receive_json_from(timeout=5))["type"] == "pong"
        assert not access_records(caplog), "the line comes when the connection ends"
        await communicator.disconnect(code=1001)
    [record] = access_records(caplog)
    assert record.levelno == logging.INFO
    assert (record.method, record.path, record.accepted) == ("WEBSOCKET", "/ws/", True)
    assert (record.close_code, record.messages_in, record.user) == (1001, 3, "ws-alice")
    assert token not in record.getMessage()
    assert record.getMessage().startswith("WEBSOCKET /ws/ close=1001 ")


@pytest.mark.django_db(transaction=True)
async def test_a_refused_handshake_and_a_closed_unauthenticated_one_are_logged(caplog):
    with caplog.at_level(logging.INFO, logger=ACCESS):
        cross_site = WebsocketCommunicator(
            application, "/ws/", headers=[(b"origin", b"http://evil.example")]
        )
        assert (await cross_site.connect(timeout=5))[0] is False
        await cross_site.wait(timeout=5)
        anonymous = WebsocketCommunicator(application, "/ws/")
        accepted, _ = await anonymous.connect(timeout=5)
        assert accepted
        assert (await anonymous.receive_output(timeout=5))["code"] == 4401
        await anonymous.disconnect()
    refused, closed = access_records(caplog)
    assert (refused.accepted, refused.status, refused.user) == (False, 403, "-")
    assert "refused=403" in refused.getMessage()
    assert (closed.accepted, closed.close_code, closed.user) == (True, 4401, "-")


def test_the_connection_keeps_daphnes_send_findable():
    """realtime.internals writes live events straight to daphne's transport, which it finds
    through the `real_send` of each middleware's send: the access log must keep the chain."""
    protocol = SimpleNamespace(transport=object())
    server = SimpleNamespace(handle_reply=lambda protocol, message: None)
    daphne_send = functools.partial(server.handle_reply, protocol)

    async def receive():
        return {}

    connection = WebSocketConnection({"type": "websocket", "path": "/ws/"}, receive, daphne_send)
    assert daphne_transport(connection.send) is protocol.transport


# Housekeeping


def celery_record(logger: str, msg: str, args: object) -> logging.LogRecord:
    record = logging.LogRecord(logger, logging.INFO, __file__, 1, msg, None, None)
    record.args = args
    return record


def beat_sending(task: str) -> logging.LogRecord:
    return celery_record("celery.beat", BEAT_SENDING, ("a periodic task", task))


def received(task: str) -> logging.LogRecord:
    return celery_record("celery.worker.strategy", trace.LOG_RECEIVED, {"name": task, "id": "1"})


def succeeded(task: str, return_value: str) -> logging.LogRecord:
    context = {"name": task, "id": "1", "runtime": 0.001, "return_value": return_value}
    return celery_record("celery.app.trace", trace.LOG_SUCCESS, context)


@pytest.fixture
def info_level():
    loggers = [logging.getLogger(name) for name in ("celery.beat", "celery.app.trace")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.INFO)
    yield loggers
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


@pytest.mark.parametrize(
    "record",
    [
        beat_sending("auctions.tasks.dispatch_due"),
        received("realtime.tasks.publish_pending_events"),
        succeeded("auctions.tasks.dispatch_due", "0"),
        succeeded("auctions.tasks.reconcile_schedule", "{'start': 0, 'end': 0}"),
        succeeded("notifications.tasks.send_notification_emails", "None"),
    ],
    ids=["beat-sending", "received", "did-nothing", "counts-all-zero", "none"],
)
def test_housekeeping_that_did_nothing_is_not_logged_at_info(info_level, record):
    assert QuietHousekeeping().filter(record) is False


def test_at_debug_level_it_is_logged_as_debug(info_level):
    for logger in info_level:
        logger.setLevel(logging.DEBUG)
    record = succeeded("auctions.tasks.dispatch_due", "0")
    assert QuietHousekeeping().filter(record) is True
    assert (record.levelno, record.levelname) == (logging.DEBUG, "DEBUG")


@pytest.mark.parametrize(
    "record",
    [
        succeeded("auctions.tasks.dispatch_due", "3"),
        succeeded("auctions.tasks.reconcile_schedule", "{'start': 0, 'end': 2}"),
        received("auctions.tasks.run_scheduled"),
        succeeded("auctions.tasks.run_scheduled", "True"),
        beat_sending("some.other.task"),
    ],
    ids=["did-something", "counts", "real-work-received", "real-work-done", "not-housekeeping"],
)
def test_work_done_keeps_its_info_line(info_level, record):
    assert QuietHousekeeping().filter(record) is True
    assert record.levelno == logging.INFO


def test_a_housekeeping_failure_stays_an_error(info_level):
    record = celery_record(
        "celery.app.trace",
        trace.LOG_FAILURE,
        {"name": "auctions.tasks.dispatch_due", "id": "1", "description": "raised", "exc": "x"},
    )
    record.levelno, record.levelname = logging.ERROR, "ERROR"
    assert QuietHousekeeping().filter(record) is True
    assert record.levelno == logging.ERROR


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_log_json_and_only_what_did_something(tmp_path, seller):
    """A real worker and beat for a few seconds at LOG_LEVEL=INFO: the housekeeping runs
    every second leave no line; the auction they end does; every log line is JSON."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from auction_site.periodic_tasks import periodic_tasks_install
    from tests.scheduling.conftest import clear_schedule

    clear_schedule()
    periodic_tasks_install(IntervalSchedule, PeriodicTask)
    auction = auction_create(
        creator=seller,
        item_name="Lamp",
        starting_price="10",
        end_time=timezone.now() + timedelta(seconds=4),
    )
    env = server_environment(LOG_LEVEL="INFO", LOG_FORMAT="json")
    # -q: no banner on stdout (it is not a log line).
    worker = spawn(
        "worker",
        [*CELERY, "-q", "worker", "--concurrency=1", "--without-gossip", "--without-mingle"],
        env,
        tmp_path,
    )
    beat = spawn(
        "beat",
        [
            *CELERY,
            "-q",
            "beat",
            "--scheduler=django_celery_beat.schedulers:DatabaseScheduler",
            "--max-interval=1",
            f"--pidfile={tmp_path}/beat.pid",
        ],
        env,
        tmp_path,
    )
    try:
        worker.wait_for_log(" ready.")
        beat.wait_for_log("beat: Starting")
        deadline = time.monotonic() + 40
        while Auction.objects.get(id=auction.id).status == AuctionStatus.ACTIVE:
            assert time.monotonic() < deadline, worker.log_tail()
            time.sleep(0.3)
        time.sleep(3)  # a few more seconds of housekeeping with nothing to do
    finally:
        worker.stop()
        beat.stop()
        clear_schedule()

    records = []
    for server in (worker, beat):
        for line in server.log_text().splitlines():
            if line.startswith("{"):
                records.append(json.loads(line))
            else:
                # Only warnings Python prints itself (running as root, say) are not JSON.
                assert "Task " not in line and "Scheduler:" not in line, line
    messages = [record["message"] for record in records]
    assert any(message.endswith(" ready.") for message in messages)
    assert not [m for m in messages if m.startswith("Scheduler: Sending due task")]
    assert not [m for m in messages if "received" in m and "tasks.dispatch_due" in m]
    dispatches = [m for m in messages if "tasks.dispatch_due" in m and "succeeded" in m]
    assert dispatches and all(not m.endswith(": 0") for m in dispatches), dispatches
    assert [m for m in messages if "tasks.run_scheduled" in m and "succeeded" in m]
    assert all(record["level"] in ("INFO", "WARNING") for record in records), records
