"""Server-rendered pages of the web client, and the load balancer's health check.

The pages carry no user data: everything personal lives encrypted in the browser. The app
page renders every screen of the client (unlock, chats, conversation, add contact, contact
details, settings) as its own template; static/js/app.js shows one at a time, so the
unlocked keys stay in memory while a person moves between screens.
"""

from __future__ import annotations

from functools import cache

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_GET

from messenger.policy import current_policy
from messenger.templatetags.sri import integrity

# Every module app.js imports, directly or not. Each gets a <link rel="modulepreload"> with
# its SRI hash, so no script runs unchecked: Chromium fills its module map from the checked
# preloads, and `import` statements then reuse those entries.
APP_MODULES = (
    "js/encoding.js",
    "js/primitives.js",
    "js/keys.js",
    "js/pqxdh.js",
    "js/ratchet.js",
    "js/session.js",
    "js/envelope.js",
    "js/sealed.js",
    "js/files.js",
    "js/messages.js",
    "js/link.js",
    "js/safety.js",
    "js/qr.js",
    "js/storage.js",
    "js/transport.js",
    "js/ui.js",
    "js/app.js",
)


@cache
def _module_preloads() -> tuple[tuple[str, str], ...]:
    return tuple((static(path), integrity(path)) for path in APP_MODULES if path != "js/app.js")


def _page(request: HttpRequest, template: str, **context: object) -> HttpResponse:
    return render(request, template, {"policy": current_policy(), **context})


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    return _page(request, "landing.html", page="home")


@require_GET
def security(request: HttpRequest) -> HttpResponse:
    return _page(request, "security.html", page="security")


@require_GET
def policy_page(request: HttpRequest) -> HttpResponse:
    return _page(request, "policy.html", page="policy")


@require_GET
def app(request: HttpRequest) -> HttpResponse:
    """The web client. `/c` (a contact link; its fragment never reaches us) renders it too."""
    return _page(
        request,
        "app.html",
        page="app",
        preloads=_module_preloads(),
    )


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Healthy when the database answers; the load balancer needs nothing more."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
