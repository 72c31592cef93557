"""Optional Prometheus endpoint: the aggregate numbers of messenger/stats.py, nothing else.

Off unless METRICS_ENABLED is set; then it answers on every node at /metrics. The compose
Caddyfile refuses /metrics from the public side: scrape the nodes on the internal network.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from messenger.errors import NotFound, api_error_response
from messenger.stats import collect, prometheus_text


@require_GET
def prometheus(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_ENABLED:
        return api_error_response(NotFound())
    return HttpResponse(
        prometheus_text(collect()), content_type="text/plain; version=0.0.4; charset=utf-8"
    )
