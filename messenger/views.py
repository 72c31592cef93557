"""API views of the core: sessions, challenges, policy. Parse, call one service, respond."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema, Status

from messenger.api import session_auth
from messenger.challenges import mint_challenge
from messenger.codec import b64u_decode, b64u_encode
from messenger.errors import InvalidRequest
from messenger.policy import current_policy
from messenger.ratelimits import limit_by_address
from messenger.sessions import mint_session, revoke_session

router = Router(tags=["core"])


class ErrorBody(Schema):
    code: str
    message: str


class ErrorOut(Schema):
    error: ErrorBody


class ChallengeOut(Schema):
    challenge: str
    expires_in: int
    pow_difficulty: int


class SessionIn(Schema):
    challenge: str | None = None
    nonce: str | None = None


class SessionOut(Schema):
    token: str
    expires_at: datetime


@router.post("/challenges", response={201: ChallengeOut, 429: ErrorOut}, auth=None)
def create_challenge(request: HttpRequest) -> Status:
    """A single-use challenge for a proof of work or an owner-signed request."""
    limit_by_address(request, "challenges", "120/m")
    return Status(
        201,
        {
            "challenge": b64u_encode(mint_challenge()),
            "expires_in": settings.CHALLENGE_TTL_SECONDS,
            "pow_difficulty": settings.POW_DIFFICULTY,
        },
    )


@router.post("/sessions", response={201: SessionOut, 400: ErrorOut, 429: ErrorOut}, auth=None)
def create_session(request: HttpRequest, body: SessionIn | None = None) -> Status:
    """Mint an anonymous session; solve the proof of work first when the policy asks."""
    limit_by_address(request, "sessions", settings.RATELIMIT_SESSION_MINT)
    try:
        challenge = b64u_decode(body.challenge) if body and body.challenge else None
        nonce = b64u_decode(body.nonce) if body and body.nonce else None
    except ValueError:
        raise InvalidRequest("challenge and nonce must be base64url.") from None
    if nonce is not None and len(nonce) > 64:
        raise InvalidRequest("nonce is at most 64 bytes.")
    token, expires_at = mint_session(challenge, nonce)
    return Status(201, {"token": token, "expires_at": expires_at})


@router.delete("/sessions", response={204: None, 401: ErrorOut}, auth=session_auth)
def delete_session(request: HttpRequest) -> HttpResponse:
    """End the session whose token authorizes this request."""
    revoke_session(request.auth)  # type: ignore[attr-defined]
    return HttpResponse(status=204)


@router.get("/policy", auth=None)
def policy(request: HttpRequest) -> dict[str, Any]:
    """Retention, sizes, quotas and limits: what clients show to their users."""
    return current_policy()
