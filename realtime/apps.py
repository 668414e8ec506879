from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Real-time delivery"

    def ready(self) -> None:
        # The domain records events and asks for them to be published after commit
        # (auctions.events); delivery tells it how, so the domain never imports delivery.
        from auctions.events import events_publisher_set
        from notifications.services import notifications
        from realtime.publish import events_publish_live, notifications_publish_live

        events_publisher_set(events_publish_live)
        notifications.publisher_set(notifications_publish_live)

        from accounts.services import token_revoked
        from realtime.publish import token_revocation_publish

        token_revoked.connect(token_revocation_publish, dispatch_uid="realtime.token_revoked")
