"""WebSocket routes: `/ws/` (and `/ws`)."""

from typing import Any

from django.urls import re_path

from realtime.consumers import AuctionConsumer

# Channels routes hold ASGI applications where Django's own routes (and types) hold views.
websocket_urlpatterns: list[Any] = [re_path(r"^ws/?$", AuctionConsumer.as_asgi())]  # type: ignore[arg-type]
