from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from messenger.codec import b64u_decode, b64u_encode
from messenger.models import AnonymousSession
from messenger.sessions import check_proof_of_work, solve_proof_of_work

pytestmark = pytest.mark.django_db


def mint(client: Client, **body: str) -> dict:
    response = client.post("/api/v1/sessions", body or None, content_type="application/json")
    return {"status": response.status_code, "json": response.json()}


def test_it_mints_a_256_bit_token_and_stores_only_its_hash(client: Client) -> None:
    answer = mint(client)
    assert answer["status"] == 201
    raw = b64u_decode(answer["json"]["token"])
    assert len(raw) == 32
    stored = AnonymousSession.objects.get()
    assert bytes(stored.token_hash) == hashlib.sha256(raw).digest()
    assert raw not in bytes(stored.token_hash)


def test_a_minted_token_authorizes_and_deleting_it_ends_the_session(client: Client) -> None:
    token = mint(client)["json"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.delete("/api/v1/sessions", headers=headers).status_code == 204
    second = client.delete("/api/v1/sessions", headers=headers)
    assert second.status_code == 401
    assert second.json()["error"]["code"] == "unauthorized"
    assert AnonymousSession.objects.count() == 0


def test_an_expired_session_is_refused_and_purged(client: Client) -> None:
    token = mint(client)["json"]["token"]
    AnonymousSession.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.delete("/api/v1/sessions", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    from messenger.tasks import purge_expired_sessions

    assert purge_expired_sessions() == 1
    assert AnonymousSession.objects.count() == 0


def test_expiry_is_coarsened_to_the_minute(client: Client) -> None:
    mint(client)
    stored = AnonymousSession.objects.get()
    assert stored.expires_at.second == 0 and stored.expires_at.microsecond == 0


@pytest.mark.parametrize("token", ["", "x", "A" * 43 + "=", "not a token at all"])
def test_it_refuses_malformed_tokens(client: Client, token: str) -> None:
    response = client.delete("/api/v1/sessions", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_proof_of_work_is_required_when_the_policy_asks(client: Client, settings) -> None:
    settings.POW_DIFFICULTY = 8
    answer = mint(client)
    assert answer["status"] == 400
    assert answer["json"]["error"]["code"] == "pow_required"


def test_a_wrong_proof_of_work_is_refused_and_a_right_one_accepted(
    client: Client, settings
) -> None:
    settings.POW_DIFFICULTY = 10
    challenge_b64 = client.post("/api/v1/challenges").json()["challenge"]
    challenge = b64u_decode(challenge_b64)
    nonce = solve_proof_of_work(challenge, 10)
    wrong = next(
        n
        for n in (i.to_bytes(8, "big") for i in range(10_000))
        if not check_proof_of_work(challenge, n, 10)
    )
    refused = mint(client, challenge=challenge_b64, nonce=b64u_encode(wrong))
    assert refused["status"] == 400 and refused["json"]["error"]["code"] == "pow_invalid"
    accepted = mint(client, challenge=challenge_b64, nonce=b64u_encode(nonce))
    assert accepted["status"] == 201
    # A challenge is spent once: the same solution cannot mint a second session.
    again = mint(client, challenge=challenge_b64, nonce=b64u_encode(nonce))
    assert again["status"] == 400 and again["json"]["error"]["code"] == "pow_invalid"


def test_minting_is_rate_limited_per_address(client: Client, settings) -> None:
    settings.RATELIMIT_SESSION_MINT = "5/h"
    statuses = [mint(client)["status"] for _ in range(7)]
    assert statuses == [201] * 5 + [429, 429]
    # Another address is not affected.
    other = Client(REMOTE_ADDR="192.0.2.7")
    assert mint(other)["status"] == 201


def test_the_rate_limit_cache_holds_no_address(client: Client) -> None:
    from django.core.cache import cache

    mint(Client(REMOTE_ADDR="198.51.100.23"))
    backend = cache._cache
    if isinstance(backend, dict):  # local memory
        keys = [str(key) for key in backend]
    else:  # Redis: the test run's own database
        keys = [key.decode() for key in backend.get_client().keys("*")]
    assert keys, "the rate limiter stored nothing"
    assert not any("198.51.100.23" in str(key) for key in keys)


def test_every_session_has_an_overall_request_rate(client: Client, settings) -> None:
    from django.test import RequestFactory

    from messenger.api import session_auth
    from messenger.errors import RateLimited

    settings.RATELIMIT_PER_SESSION = "3/m"
    token, other = mint(client)["json"]["token"], mint(client)["json"]["token"]

    def authenticate(value: str):
        request = RequestFactory().get("/", headers={"Authorization": f"Bearer {value}"})
        return session_auth(request)

    assert all(authenticate(token) is not None for _ in range(3))
    with pytest.raises(RateLimited):
        authenticate(token)
    # The limit of one session leaves another untouched.
    assert authenticate(other) is not None
