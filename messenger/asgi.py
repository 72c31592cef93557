"""ASGI entry point: HTTP goes to Django, WebSockets to the relay's consumer.

The WebSocket stack checks Origin against ALLOWED_HOSTS before any consumer runs, so a
page on another site cannot open a socket with the user's browser.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messenger.settings")

from django.core.asgi import get_asgi_application

django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from relay.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
