"""Anonymous sessions: the only credential the server hands out.

A session is 32 random bytes given to the client once; the server keeps only their
SHA-256 and a coarse expiry. Clients use one session per contact they send to, so the
server cannot link sends by token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from messenger.challenges import consume_challenge
from messenger.codec import b64u_decode, b64u_encode
from messenger.errors import ApiError
from messenger.models import AnonymousSession

TOKEN_BYTES = 32
POW_CONTEXT = b"courier-v1 pow\x00"


class ProofOfWorkRequired(ApiError):
    status = 400
    code = "pow_required"
    message = "This server requires a proof of work: fetch a challenge and solve it."


class ProofOfWorkInvalid(ApiError):
    status = 400
    code = "pow_invalid"
    message = "The proof of work does not meet the difficulty, or its challenge is spent."


def coarse_time(moment: datetime) -> datetime:
    """Round up to TIME_GRANULARITY_SECONDS, so stored times say little about events."""
    step = settings.TIME_GRANULARITY_SECONDS
    if step <= 1:
        return moment
    seconds = int(moment.timestamp())
    rounded = -(-seconds // step) * step
    return datetime.fromtimestamp(rounded, tz=moment.tzinfo or UTC)


def hash_token(token: str) -> bytes | None:
    try:
        raw = b64u_decode(token, length=TOKEN_BYTES)
    except ValueError:
        return None
    return hashlib.sha256(raw).digest()


def leading_zero_bits(digest: bytes) -> int:
    count = 0
    for byte in digest:
        if byte == 0:
            count += 8
            continue
        return count + (8 - byte.bit_length())
    return count


def check_proof_of_work(challenge: bytes, nonce: bytes, difficulty: int) -> bool:
    digest = hashlib.sha256(POW_CONTEXT + challenge + nonce).digest()
    return leading_zero_bits(digest) >= difficulty


def solve_proof_of_work(challenge: bytes, difficulty: int) -> bytes:
    """What a client does; here for tests and the management commands."""
    counter = 0
    while True:
        nonce = counter.to_bytes(8, "big")
        if check_proof_of_work(challenge, nonce, difficulty):
            return nonce
        counter += 1


def mint_session(
    challenge: bytes | None = None, nonce: bytes | None = None
) -> tuple[str, datetime]:
    """Create a session, after checking the proof of work when the policy asks for one."""
    difficulty = settings.POW_DIFFICULTY
    if difficulty > 0:
        if challenge is None or nonce is None:
            raise ProofOfWorkRequired()
        # Check the work before spending the challenge: a wrong answer must not burn it
        # for a client that is still solving.
        if not check_proof_of_work(challenge, nonce, difficulty):
            raise ProofOfWorkInvalid()
        if not consume_challenge(challenge):
            raise ProofOfWorkInvalid("The challenge is unknown, expired or already used.")
    raw = secrets.token_bytes(TOKEN_BYTES)
    expires_at = coarse_time(timezone.now() + timedelta(seconds=settings.SESSION_TTL_SECONDS))
    AnonymousSession.objects.create(token_hash=hashlib.sha256(raw).digest(), expires_at=expires_at)
    return b64u_encode(raw), expires_at


def authenticate_token(token: str) -> AnonymousSession | None:
    token_hash = hash_token(token)
    if token_hash is None:
        return None
    return AnonymousSession.objects.live().filter(token_hash=token_hash).first()


async def aauthenticate_token(token: str) -> AnonymousSession | None:
    token_hash = hash_token(token)
    if token_hash is None:
        return None
    return await AnonymousSession.objects.live().filter(token_hash=token_hash).afirst()


def revoke_session(session: AnonymousSession) -> None:
    AnonymousSession.objects.filter(token_hash=session.token_hash).delete()


def purge_expired_sessions() -> int:
    deleted, _ = AnonymousSession.objects.expired().delete()
    return deleted


def address_key(address: str) -> str:
    """A keyed hash of a client address that changes every hour.

    Rate limits on minting sessions must key on something; only this hash reaches the
    cache (with a short expiry), never the address, and it cannot be linked across hours.
    """
    hour = int(timezone.now().timestamp()) // 3600
    key = hmac.new(settings.SECRET_KEY.encode(), f"addr-{hour}".encode(), "sha256").digest()
    return hmac.new(key, address.encode(), "sha256").hexdigest()[:32]
