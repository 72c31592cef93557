"""Single-use server challenges: for proof of work and for owner-signed requests.

A challenge lives in the shared cache for CHALLENGE_TTL_SECONDS and is consumed by
deleting it; the cache's delete reports whether the key existed, atomically on Redis and
under a lock in local memory, so two requests can never both spend the same challenge.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.cache import cache

CHALLENGE_BYTES = 32


def _cache_key(challenge: bytes) -> str:
    return "challenge:" + hashlib.sha256(challenge).hexdigest()


def mint_challenge() -> bytes:
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    cache.set(_cache_key(challenge), 1, timeout=settings.CHALLENGE_TTL_SECONDS)
    return challenge


def consume_challenge(challenge: bytes) -> bool:
    """True exactly once for a challenge this server minted and that has not expired."""
    if len(challenge) != CHALLENGE_BYTES:
        return False
    return bool(cache.delete(_cache_key(challenge)))
