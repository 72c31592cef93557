from __future__ import annotations

from django.urls import URLPattern, path

from relay.consumers import RelayConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/v1/relay", RelayConsumer.as_asgi()),
]
