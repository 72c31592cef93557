"""Rate limits on django-ratelimit, keyed on nothing that identifies a person.

Per-session limits key on the session's token hash. Minting sessions has no session to
key on, so it keys on `address_key`: a keyed hash of the address that rotates hourly.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import is_ratelimited

from messenger.errors import RateLimited
from messenger.sessions import address_key


def _address(group: str, request: HttpRequest) -> str:
    return address_key(request.META.get("REMOTE_ADDR", ""))


def _session(group: str, request: HttpRequest) -> str:
    session = getattr(request, "auth", None)
    token_hash = getattr(session, "token_hash", b"")
    return bytes(token_hash).hex() or _address(group, request)


def limit_by_address(request: HttpRequest, group: str, rate: str) -> None:
    if is_ratelimited(request, group=group, key=_address, rate=rate, increment=True):
        raise RateLimited()


def limit_by_session(request: HttpRequest, group: str, rate: str | None = None) -> None:
    rate = rate or settings.RATELIMIT_PER_SESSION
    if is_ratelimited(request, group=group, key=_session, rate=rate, increment=True):
        raise RateLimited()


def limit_by_value(request: HttpRequest, group: str, value: str, rate: str) -> None:
    """Limit on an opaque value (a handle, a mailbox id), whoever asks."""
    if is_ratelimited(request, group=group, key=lambda g, r: value, rate=rate, increment=True):
        raise RateLimited()
