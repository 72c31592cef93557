"""Helpers shared by the client crypto tests (not fixtures, so nothing leaks into other suites)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from courier.crypto.identity import Identity, PrekeySecrets, generate_bundle
from courier.crypto.ratchet import Session
from courier.crypto.session import accept_session, start_session

VECTORS = Path(__file__).resolve().parent.parent / "vectors"


def load_wycheproof(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / "wycheproof" / name).read_text())


def new_pair(
    one_time: bool = True,
) -> tuple[Session, Session, Identity, Identity, PrekeySecrets, bytes]:
    """Alice has started a session with Bob's bundle, sent one message, and Bob accepted it.

    Returns (alice, bob, alice_identity, bob_identity, bob_secrets, first_message).
    """
    alice_id, bob_id = Identity.generate(), Identity.generate()
    ids = (7,) if one_time else ()
    bundle, secrets = generate_bundle(
        bob_id, one_time_ids=ids, pq_one_time_ids=(8,) if one_time else ()
    )
    alice, _ = start_session(alice_id, bundle.claim())
    first = alice.encrypt(b"hello")
    from courier.crypto.pqxdh import PrekeyHeader

    header = PrekeyHeader.decode(alice.state.pending_prekey_header or b"")
    bob, plaintext, _ = accept_session(bob_id, secrets, header, first)
    assert plaintext == b"hello"
    return alice, bob, alice_id, bob_id, secrets, first
