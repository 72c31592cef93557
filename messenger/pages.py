"""Server-rendered pages of the web client, and the load balancer's health check."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from messenger.policy import current_policy


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "landing.html", {"policy": current_policy()})


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Healthy when the database answers; the load balancer needs nothing more."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
