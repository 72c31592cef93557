"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.test import Client

from messenger.atrest import clear_key_caches
from messenger.sessions import mint_session


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    # Rate-limit counters and challenges live in the cache; every test starts clean.
    # In the Redis pass the cache is a dedicated Redis database, so this clears only it.
    cache.clear()
    # Unwrapped at-rest keys are cached per process; a rolled-back test must not leave a
    # key id behind that the next test would trust.
    clear_key_caches()
    yield
    cache.clear()
    clear_key_caches()


@pytest.fixture
def client() -> Client:
    return Client()


@pytest.fixture
def session_token(db: None) -> str:
    token, _ = mint_session()
    return token


@pytest.fixture
def auth_client(session_token: str) -> Client:
    return Client(headers={"Authorization": f"Bearer {session_token}"})
