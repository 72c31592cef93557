from django.urls import path

from messenger import metrics, pages
from messenger.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("healthz", pages.healthz, name="healthz"),
    path("metrics", metrics.prometheus, name="metrics"),
    path("", pages.landing, name="landing"),
    path("security", pages.security, name="security"),
    path("policy", pages.policy_page, name="policy"),
    path("app", pages.app, name="app"),
    path("c", pages.app, name="contact-link"),
]

handler400 = "messenger.errors.bad_request"
handler403 = "messenger.errors.permission_denied"
handler404 = "messenger.errors.not_found"
handler500 = "messenger.errors.server_error"
