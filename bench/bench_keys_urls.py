"""URLconf for bench/bench_keys.py: the project's URLs plus a bare view doing one indexed
read, the floor under which no Django view on this stack can answer.
"""

from django.http import HttpRequest, JsonResponse
from django.urls import path

from keys.models import PrekeyBundle
from messenger.urls import handler400, handler403, handler404, handler500  # noqa: F401
from messenger.urls import urlpatterns as project_urlpatterns


def indexed_read(request: HttpRequest, handle: str) -> JsonResponse:
    """One primary-key read of a bundle row, nothing else (no session, no rate limit)."""
    expires_at = (
        PrekeyBundle.objects.filter(handle=handle).values_list("expires_at", flat=True).first()
    )
    return JsonResponse({"found": expires_at is not None})


def no_database(request: HttpRequest, handle: str) -> JsonResponse:
    """The same answer without touching the database: the daphne + Django floor."""
    return JsonResponse({"found": True})


urlpatterns = [
    path("bench/indexed-read/<str:handle>", indexed_read),
    path("bench/no-database/<str:handle>", no_database),
    *project_urlpatterns,
]
