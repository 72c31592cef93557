"""A port of libsignal's message-key-limit scenario (rust/protocol/tests/session.rs,
``test_message_key_limits``) to our limits: 1,000 stored skipped keys, 2,000 per forward jump."""

from __future__ import annotations

import pytest

from courier.crypto import ratchet
from courier.crypto.errors import DecryptionError

from .support import new_pair


def test_with_2300_messages_in_flight_1000_and_2299_decrypt_and_an_evicted_one_fails() -> None:
    alice, bob, *_ = new_pair()
    inflight = [alice.encrypt(f"message {i}".encode()) for i in range(2300)]

    assert bob.decrypt(inflight[1000]) == b"message 1000"
    assert bob.decrypt(inflight[2299]) == b"message 2299"
    assert len(bob.state.skipped) == ratchet.MAX_SKIPPED_KEYS

    before = bob.to_bytes()
    with pytest.raises(DecryptionError):
        bob.decrypt(inflight[0])  # its key was evicted
    assert bob.to_bytes() == before
    # The newest skipped keys survived the eviction.
    assert bob.decrypt(inflight[2298]) == b"message 2298"
    assert bob.decrypt(inflight[1299]) == b"message 1299"
    # And the conversation goes on.
    assert alice.decrypt(bob.encrypt(b"still here")) == b"still here"
