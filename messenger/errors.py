"""The one error shape of the API, and the stable codes every app shares.

Every 4xx answer is `{"error": {"code": "<stable_code>", "message": "<plain words>"}}`.
Apps raise `ApiError` (or a subclass with a fixed code) from their services; the API
object in messenger/api.py turns it into a response.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


class ApiError(Exception):
    status = 400
    code = "bad_request"
    message = "The request is not valid."

    def __init__(
        self, message: str | None = None, *, code: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message
        if code:
            self.code = code
        if status:
            self.status = status


class InvalidRequest(ApiError):
    status = 400
    code = "invalid_request"


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"
    message = "A live session token is required (Authorization: Bearer <token>)."


class Forbidden(ApiError):
    status = 403
    code = "forbidden"
    message = "This request is not allowed."


class NotFound(ApiError):
    status = 404
    code = "not_found"
    message = "Nothing is here."


class Conflict(ApiError):
    status = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "body_too_large"
    message = "The request body is larger than the server accepts."


class RateLimited(ApiError):
    status = 429
    code = "rate_limited"
    message = "Too many requests; slow down and try again later."


def error_response(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def api_error_response(error: ApiError) -> JsonResponse:
    response = error_response(error.status, error.code, error.message)
    if error.status == 401:
        response["WWW-Authenticate"] = "Bearer"
    return response


# Django's own handlers, so even a request that never reaches the API gets the shape.
def bad_request(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(400, "bad_request", "The request could not be understood.")


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(403, "forbidden", "This request is not allowed.")


def not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return error_response(404, "not_found", "Nothing is here.")


def server_error(request: HttpRequest) -> JsonResponse:
    return error_response(500, "server_error", "The server failed; nothing was changed.")
