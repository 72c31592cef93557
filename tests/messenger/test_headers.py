"""Every response carries the strict header set, and no response sets a cookie."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PATHS = {
    "html": ("get", "/"),
    "json": ("get", "/api/v1/policy"),
    "health": ("get", "/healthz"),
    "api_error": ("delete", "/api/v1/sessions"),
    "not_found": ("get", "/no/such/page"),
    "schema": ("get", "/api/v1/openapi.json"),
    "static": ("get", "/static/css/app.css"),
}


def csp_directives(header: str) -> dict[str, list[str]]:
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.parametrize("kind", sorted(PATHS))
def test_every_response_carries_the_security_headers(client: Client, kind: str) -> None:
    method, path = PATHS[kind]
    response = getattr(client, method)(path)
    assert response.status_code < 500
    csp = csp_directives(response.headers["Content-Security-Policy"])
    assert csp["default-src"] == ["'none'"]
    for directive in ("script-src", "style-src", "connect-src"):
        assert csp[directive] == ["'self'"], directive
    assert csp["img-src"] == ["'self'", "blob:"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["base-uri"] == ["'none'"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Resource-Policy"] == "same-origin"
    policy = response.headers["Permissions-Policy"]
    assert "microphone=()" in policy and "geolocation=()" in policy
    assert "Set-Cookie" not in response.headers
    assert not response.cookies


def test_api_responses_are_never_cached(client: Client) -> None:
    assert client.get("/api/v1/policy").headers["Cache-Control"] == "no-store"


def test_minting_a_session_sets_no_cookie(client: Client) -> None:
    response = client.post("/api/v1/sessions", content_type="application/json")
    assert response.status_code == 201
    assert not response.cookies and "Set-Cookie" not in response.headers


def test_hsts_is_sent_over_https_in_production(client: Client, settings) -> None:
    settings.SECURE_HSTS_SECONDS = 63072000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    response = client.get("/api/v1/policy", secure=True)
    hsts = response.headers["Strict-Transport-Security"]
    assert int(hsts.split("max-age=")[1].split(";")[0]) >= 15552000  # six months
