"""WebSocket routes: `/ws/` (and `/ws`)."""

from django.urls import re_path

from realtime.consumers import AuctionConsumer

websocket_urlpatterns = [re_path(r"^ws/?$", AuctionConsumer.as_asgi())]
