"""Periodic task of notification e-mail."""

from celery import shared_task

from notifications.email import emails_send_pending


@shared_task(ignore_result=True)
def send_notification_emails() -> int:
    """Beat, every NOTIFY_EMAIL_CHECK_SECONDS: mail what is due (notifications.email)."""
    return emails_send_pending()
