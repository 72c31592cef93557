"""Fixtures of the client's tests: a real server stack on loopback and client homes.

No server is mocked: the library and the command line talk to daphne, a Celery worker and
beat started by tests/support/servers.py (own data folder and database; PostgreSQL in the
second pass of `make test`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from courier.client import Courier
from tests.support.servers import ServerStack

# Fast enough for tests; the real cost is stored in each state file and used when reading it.
TEST_SCRYPT_LOG2_N = "12"
SERVER_ENV = {
    # Every client of every test comes from one loopback address within seconds; the
    # per-address limits (sessions, challenges) are the server's tests' business.
    "RATELIMIT_ENABLE": "false",
    "PURGE_INTERVAL_SECONDS": "1",
    # Stored times are rounded to this; a second keeps expiry tests short.
    "TIME_GRANULARITY_SECONDS": "1",
    # Production asks for a proof of work before minting a session; so does this server, so
    # that every session the client mints here solves one.
    "POW_DIFFICULTY": "10",
    # So that the signed prekey goes stale within a test and the client must rotate it.
    "SIGNED_PREKEY_ROTATION_SECONDS": "2",
}


@pytest.fixture(autouse=True)
def _cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COURIER_SCRYPT_LOG2_N", TEST_SCRYPT_LOG2_N)


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerStack]:
    with ServerStack(
        tmp_path_factory.mktemp("server"), worker=True, beat=True, env=SERVER_ENV
    ) as running:
        yield running


@pytest.fixture
def make_client(stack: ServerStack, tmp_path: Path) -> Iterator:
    made: list[Courier] = []

    def make(name: str) -> Courier:
        client = Courier.create(tmp_path / name, f"passphrase of {name}", stack.url())
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def connect(alice: Courier, bob: Courier, alice_calls_bob: str = "bob") -> str:
    """Alice adds Bob's link; both receive until the conversation is on pairwise mailboxes.
    Returns the name Bob's client gave Alice."""
    alice.add_contact(bob.contact_link(), alice_calls_bob)
    events = bob.receive()
    (new,) = [e.contact for e in events if e.kind == "contact"]
    bob.rename(new, "alice")
    alice.receive()
    return "alice"
