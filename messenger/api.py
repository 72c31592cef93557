"""The JSON API under /api/v1/: one NinjaAPI, one error shape, one auth scheme.

Each app contributes a router from its own views module; this module wires them in and
maps every exception to `{"error": {"code", "message"}}` with a 4xx status.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from messenger.errors import ApiError, Unauthorized, api_error_response, error_response
from messenger.models import AnonymousSession
from messenger.ratelimits import limit_by_value
from messenger.sessions import authenticate_token


class SessionAuth(HttpBearer):
    """`Authorization: Bearer <token>` with a live anonymous session.

    The session is left on `request.auth`; views never see the token itself.
    """

    openapi_scheme = "bearer"

    def authenticate(self, request: HttpRequest, token: str) -> AnonymousSession | None:
        session = authenticate_token(token)
        if session is not None:
            # Every authenticated request counts against its session's overall rate.
            limit_by_value(
                request, "session", bytes(session.token_hash).hex(), settings.RATELIMIT_PER_SESSION
            )
        return session


session_auth = SessionAuth()

api = NinjaAPI(
    title="Courier messenger API",
    version="1",
    description="Anonymous sessions, prekey directory, mailbox relay and encrypted blobs. "
    "Every binary field is base64url without padding.",
    urls_namespace="api-v1",
    # The interactive docs page loads scripts from a CDN, which the CSP forbids; the
    # schema itself is served at /api/v1/openapi.json.
    docs_url=None,
)


@api.exception_handler(ApiError)
def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return api_error_response(exc)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    problems = []
    for error in exc.errors[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        problems.append(f"{where or 'body'}: {error.get('msg', 'invalid')}")
    return error_response(400, "invalid_request", "; ".join(problems) or "Invalid request.")


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api_error_response(Unauthorized())


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, RequestDataTooBig):
        return error_response(413, "body_too_large", "The request body is too large.")
    if exc.status_code == 400:
        return error_response(400, "malformed_body", "The request body is not valid JSON.")
    return error_response(exc.status_code, "http_error", str(exc))


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(413, "body_too_large", "The request body is too large.")


api.add_router("/", "messenger.views.router")
api.add_router("/keys", "keys.views.router")
api.add_router("/", "relay.views.router")
api.add_router("/blobs", "files.views.router")
