"""Fixtures of the prekey directory's tests."""

from __future__ import annotations

import pytest
from django.test import Client

from courier.crypto.identity import Identity
from tests.keys.support import Directory


@pytest.fixture
def identity() -> Identity:
    return Identity.generate()


@pytest.fixture
def directory(auth_client: Client) -> Directory:
    return Directory(auth_client)


@pytest.fixture
def roomy_rates(settings) -> None:
    """Claim rates high enough that a test's own claims never hit them."""
    settings.RATELIMIT_PREKEY_CLAIM_PER_HANDLE = "1000/m"
    settings.RATELIMIT_PREKEY_CLAIM_PER_SESSION = "1000/m"
