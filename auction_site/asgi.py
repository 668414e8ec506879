"""ASGI entry point: `daphne auction_site.asgi:application` serves HTTP, pages and WebSocket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "auction_site.settings.production")

# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from auction_site.access_log import WebSocketAccessLog, WebSocketUser  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402
from realtime.security import websocket_stack  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # One access line per connection when it ends; WebSocketUser, inside the
        # authentication middleware, tells it who the connection is.
        "websocket": WebSocketAccessLog(
            websocket_stack(WebSocketUser(URLRouter(websocket_urlpatterns)))
        ),
    }
)
