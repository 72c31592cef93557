"""Owner-signed HTTP requests (docs/api.md, "Signed requests").

Publishing a prekey bundle (signed by the identity key) and the relay's HTTP fallback
(signed by a mailbox owner key) prove possession of a private key the same way:

    signed = b"courier-v1 request\\x00" || challenge (32 bytes)
             || METHOD || 0x00 || path || 0x00 || SHA-256(body)

sent as the headers `X-Courier-Challenge` and `X-Courier-Signature` (base64url). The
challenge is single-use, so a captured request cannot be replayed.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.http import HttpRequest

from messenger.challenges import CHALLENGE_BYTES, consume_challenge
from messenger.codec import b64u_decode
from messenger.errors import ApiError

REQUEST_CONTEXT = b"courier-v1 request\x00"


class BadSignature(ApiError):
    status = 403
    code = "bad_signature"
    message = "The request's signature does not verify."


class StaleChallenge(ApiError):
    status = 403
    code = "stale_challenge"
    message = "The challenge is unknown, expired or already used; fetch a new one."


def signed_request_bytes(challenge: bytes, method: str, path: str, body: bytes) -> bytes:
    return b"".join(
        [
            REQUEST_CONTEXT,
            challenge,
            method.upper().encode("ascii"),
            b"\x00",
            path.encode("utf-8"),
            b"\x00",
            hashlib.sha256(body).digest(),
        ]
    )


def verify_ed25519(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_signed_request(request: HttpRequest, public_key: bytes, body: bytes) -> None:
    """Raise unless the request carries a valid signature by `public_key`.

    The signature is checked before the challenge is spent, so a forged request cannot
    burn someone else's challenge; the challenge is then consumed exactly once.
    """
    try:
        challenge = b64u_decode(
            request.headers.get("X-Courier-Challenge", ""), length=CHALLENGE_BYTES
        )
        signature = b64u_decode(request.headers.get("X-Courier-Signature", ""), length=64)
    except ValueError:
        raise BadSignature(
            "X-Courier-Challenge and X-Courier-Signature headers are required (base64url)."
        ) from None
    message = signed_request_bytes(challenge, request.method or "", request.path, body)
    if not verify_ed25519(public_key, signature, message):
        raise BadSignature()
    if not consume_challenge(challenge):
        raise StaleChallenge()
