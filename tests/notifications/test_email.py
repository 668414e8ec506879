"""Notification e-mail against a real SMTP server (aiosmtpd) that the tests start on loopback
(spec §8): each mail once, the kinds a user keeps, links that work, and none lost while the
server is away or refuses for now."""

import logging
import socket
import threading
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from auctions.notices import notice_data
from notifications.email import emails_send_pending, retry_delay
from notifications.models import EmailState, Kind, Notification
from notifications.services import Notice, email_kinds_off, email_settings_set, notices_record
from notifications.tasks import send_notification_emails
from tests.factories import AuctionFactory, UserFactory

pytestmark = pytest.mark.django_db


class Mailbox:
    """An aiosmtpd handler that keeps what it receives, and refuses what it is told to."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refuse: dict[str, str] = {}  # recipient -> the RCPT reply, e.g. "550 …"
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def ids(self) -> list[str]:
        return [m["X-Notification-Id"] for m in self.messages]


class SmtpServer:
    """A real SMTP server on 127.0.0.1 that can be stopped and started again on its port."""

    def __init__(self) -> None:
        self.mailbox = Mailbox()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    yield server
    server.stop()


@pytest.fixture
def mailbox(smtp) -> Mailbox:
    return smtp.mailbox


@pytest.fixture
def alice(db):
    return UserFactory(username="alice", email="alice@example.com")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob", email="bob@example.com")


def notify(user, auction, kinds=(Kind.OUTBID,)) -> list[Notification]:
    """Notifications for `user` as the domain records them, committed (or in the test's
    transaction), one `created_at` per call, so calls are mailed in order."""
    data = notice_data(
        auction_id=auction.id, item_name=auction.item.name, price=auction.current_price
    )
    with transaction.atomic():
        return notices_record(
            [Notice(user.id, kind, auction.id, data) for kind in kinds],
            at=timezone.now(),
            auction_id=auction.id,
        )


def state(notification: Notification) -> Notification:
    return Notification.objects.get(id=notification.id)


def come_due() -> None:
    """The wait before the next attempt is over (instead of sleeping through it)."""
    Notification.objects.filter(email_next_at__isnull=False).update(
        email_next_at=timezone.now() - timedelta(seconds=1)
    )


def body_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


class TestOnce:
    def test_each_mail_arrives_once_however_often_the_sender_runs(
        self, mailbox, auction, alice, bob
    ):
        sent = notify(alice, auction, [Kind.OUTBID, Kind.ENDING_SOON]) + notify(bob, auction)
        assert emails_send_pending() == 3
        assert emails_send_pending() == 0
        assert emails_send_pending() == 0
        assert sorted(mailbox.ids()) == sorted(str(n.id) for n in sent)
        assert [m["To"] for m in mailbox.messages].count("alice@example.com") == 2
        assert {state(n).email_state for n in sent} == {EmailState.SENT}

    def test_a_later_notification_is_mailed_by_a_later_run(self, mailbox, auction, alice):
        [first] = notify(alice, auction)
        emails_send_pending()
        [second] = notify(alice, auction, [Kind.WON])
        assert emails_send_pending() == 1
        assert mailbox.ids() == [str(first.id), str(second.id)]

    def test_the_celery_task_sends_them(self, mailbox, auction, alice):
        [note] = notify(alice, auction)
        result = send_notification_emails.apply()
        assert result.successful()
        assert result.get() == 1
        assert mailbox.ids() == [str(note.id)]
        assert send_notification_emails.apply().get() == 0


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_send_each_mail_once(mailbox, seller, alice, bob):
    auction = AuctionFactory(item__owner=seller)
    notes = [n for _ in range(15) for n in notify(alice, auction) + notify(bob, auction)]
    start = threading.Barrier(2)
    counts: list[int] = []
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            start.wait(timeout=10)
            total = 0
            while sent := emails_send_pending(limit=4):
                total += sent
            counts.append(total)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sum(counts) == len(notes) == 30
    assert sorted(mailbox.ids()) == sorted(str(n.id) for n in notes)  # none twice, none lost
    assert set(Notification.objects.values_list("email_state", flat=True)) == {EmailState.SENT}


class TestWhoGetsMail:
    def test_kinds_switched_off_are_skipped(self, mailbox, auction, alice):
        email_settings_set(user=alice, kinds_on=[Kind.WON])
        outbid, won = notify(alice, auction, [Kind.OUTBID, Kind.WON])
        assert emails_send_pending() == 1
        assert mailbox.ids() == [str(won.id)]
        assert state(outbid).email_state == EmailState.SKIPPED
        assert state(won).email_state == EmailState.SENT
        assert emails_send_pending() == 0

    def test_a_user_without_an_address_is_skipped(self, mailbox, auction, alice):
        nobody = UserFactory(username="no-mail", email="")
        [theirs] = notify(nobody, auction)
        [hers] = notify(alice, auction)
        assert emails_send_pending() == 1
        assert mailbox.ids() == [str(hers.id)]
        assert state(theirs).email_state == EmailState.SKIPPED


class TestTheMail:
    def test_it_names_the_item_and_links_to_the_auction(self, mailbox, auction, alice):
        notify(alice, auction)
        emails_send_pending()
        [message] = mailbox.messages
        assert message["To"] == "alice@example.com"
        assert message["From"] == django_settings.DEFAULT_FROM_EMAIL
        assert message["Subject"] == f"You were outbid on {auction.item.name}"
        body = body_of(message)
        assert f"{django_settings.SITE_URL}/auctions/{auction.id}/" in body
        assert "The price is now 10.00." in body

    def test_the_unsubscribe_link_and_headers_work_in_one_click(self, mailbox, auction, alice):
        notify(alice, auction)
        emails_send_pending()
        [message] = mailbox.messages
        # Folded onto its own line (valid: RFC 5322 folding white space), hence the strip.
        header = message["List-Unsubscribe"].strip()
        assert header.startswith("<") and header.endswith(">")
        link = header[1:-1]
        assert link.startswith(f"{django_settings.SITE_URL}/notifications/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert f"Stop these e-mails (outbid): {link}" in body_of(message)

        # The mail client's one-click POST (RFC 8058): no session, no CSRF token.
        response = Client(enforce_csrf_checks=True).post(
            urlsplit(link).path,
            "List-Unsubscribe=One-Click",
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 200
        assert email_kinds_off(user=alice) == {"outbid"}

        # From now on that kind is not mailed; the others still are.
        outbid, won = notify(alice, auction, [Kind.OUTBID, Kind.WON])
        assert emails_send_pending() == 1
        assert mailbox.ids()[1:] == [str(won.id)]
        assert state(outbid).email_state == EmailState.SKIPPED

    def test_the_browser_link_asks_first(self, mailbox, auction, alice):
        notify(alice, auction, [Kind.ENDING_SOON])
        emails_send_pending()
        link = mailbox.messages[0]["List-Unsubscribe"].strip()[1:-1]
        page = Client().get(urlsplit(link).path)
        assert page.status_code == 200
        assert "when an auction you watch is about to end" in page.content.decode()
        assert email_kinds_off(user=alice) == set()


class TestServerAway:
    def test_a_stopped_server_delays_mail_and_loses_none(self, smtp, auction, alice, bob, caplog):
        notes = notify(alice, auction, [Kind.OUTBID, Kind.WON]) + notify(bob, auction)
        smtp.stop()
        before = timezone.now()
        with caplog.at_level(logging.WARNING, logger="notifications.email"):
            assert emails_send_pending() == 0
        for note in notes:
            row = state(note)
            assert row.email_state == EmailState.PENDING
            assert row.email_attempts == 1
            assert row.email_next_at >= before + retry_delay(1)
        [warning] = [r for r in caplog.records if r.name == "notifications.email"]
        assert warning.levelno == logging.WARNING
        assert "mail server unavailable" in warning.getMessage()
        assert "3 e-mail(s) wait" in warning.getMessage()

        # Before the wait is over nothing is tried, even with the server back.
        smtp.start()
        assert emails_send_pending() == 0
        assert smtp.mailbox.messages == []

        # Down again when the wait is over: the wait grows.
        smtp.stop()
        come_due()
        assert emails_send_pending() == 0
        assert {state(n).email_attempts for n in notes} == {2}
        assert state(notes[0]).email_next_at >= timezone.now() + retry_delay(2) - timedelta(
            seconds=5
        )

        # Back, and the wait is over: every mail arrives, once.
        smtp.start()
        come_due()
        assert emails_send_pending() == 3
        assert emails_send_pending() == 0
        come_due()
        assert emails_send_pending() == 0
        assert sorted(smtp.mailbox.ids()) == sorted(str(n.id) for n in notes)
        assert {state(n).email_state for n in notes} == {EmailState.SENT}

    def test_the_waits_grow_to_an_hour(self):
        assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
        assert retry_delay(50) == timedelta(hours=1)


class TestRefusals:
    def test_a_permanent_refusal_marks_failed_and_others_still_go(
        self, mailbox, auction, alice, bob, caplog
    ):
        mailbox.refuse["alice@example.com"] = "550 5.1.1 No such mailbox"
        [hers] = notify(alice, auction)
        [his] = notify(bob, auction)
        with caplog.at_level(logging.WARNING, logger="notifications.email"):
            assert emails_send_pending() == 1
        assert state(hers).email_state == EmailState.FAILED
        assert state(his).email_state == EmailState.SENT
        assert mailbox.ids() == [str(his.id)]
        assert any("refused" in r.getMessage() for r in caplog.records)
        # Failed is final: it is not tried again.
        del mailbox.refuse["alice@example.com"]
        come_due()
        assert emails_send_pending() == 0
        assert mailbox.ids() == [str(his.id)]

    def test_a_temporary_refusal_is_tried_again_later(self, mailbox, auction, alice):
        mailbox.refuse["alice@example.com"] = "450 4.2.1 Mailbox busy, try later"
        [note] = notify(alice, auction)
        assert emails_send_pending() == 0
        row = state(note)
        assert (row.email_state, row.email_attempts) == (EmailState.PENDING, 1)
        assert row.email_next_at > timezone.now()
        assert mailbox.messages == []

        del mailbox.refuse["alice@example.com"]
        assert emails_send_pending() == 0  # still waiting
        come_due()
        assert emails_send_pending() == 1
        assert mailbox.ids() == [str(note.id)]
        assert state(note).email_state == EmailState.SENT

    def test_one_mailbox_refusing_for_now_holds_back_nobody_else(
        self, mailbox, auction, alice, bob
    ):
        mailbox.refuse["alice@example.com"] = "452 4.2.2 Mailbox full"
        [hers] = notify(alice, auction)  # the oldest: first in every batch
        [his] = notify(bob, auction)
        assert emails_send_pending() == 1
        assert mailbox.ids() == [str(his.id)]
        assert state(his).email_state == EmailState.SENT
        assert state(his).email_attempts == 0
        assert state(hers).email_state == EmailState.PENDING
        assert state(hers).email_attempts == 1
