"""Response headers that Django and django-csp do not set themselves."""

from __future__ import annotations

from collections.abc import Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase


def _add_headers(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    response.headers.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
    response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    response.headers.setdefault("Cross-Origin-Embedder-Policy", "require-corp")
    if request.path.startswith("/api/"):
        # API answers carry tokens and capabilities: no cache may keep them.
        response.headers["Cache-Control"] = "no-store"
    # The server never sets a cookie; drop any a library might add.
    response.cookies.clear()
    return response


def security_headers(get_response: Callable) -> Callable:
    if iscoroutinefunction(get_response):

        async def middleware(request: HttpRequest) -> HttpResponseBase:
            return _add_headers(request, await get_response(request))

        markcoroutinefunction(middleware)
        return middleware

    def sync_middleware(request: HttpRequest) -> HttpResponseBase:
        return _add_headers(request, get_response(request))

    return sync_middleware


security_headers.sync_capable = True  # type: ignore[attr-defined]
security_headers.async_capable = True  # type: ignore[attr-defined]
