"""Security properties of the Double Ratchet with header encryption."""

from __future__ import annotations

import pytest

from courier.crypto import primitives as p
from courier.crypto import ratchet
from courier.crypto.errors import DecryptionError, LimitExceeded
from courier.crypto.ratchet import Session

from .support import new_pair


def _snapshot(session: Session) -> bytes:
    return session.to_bytes()


def test_a_tampered_message_raises_and_changes_no_state() -> None:
    alice, bob, *_ = new_pair()
    msg = alice.encrypt(b"payload")
    before = _snapshot(bob)
    for position in (0, 20, 67, 68, len(msg) - 1):
        bad = bytearray(msg)
        bad[position] ^= 0x01
        with pytest.raises(DecryptionError):
            bob.decrypt(bytes(bad))
        assert _snapshot(bob) == before
    assert bob.decrypt(msg) == b"payload"


def test_a_truncated_message_raises_and_changes_no_state() -> None:
    alice, bob, *_ = new_pair()
    msg = alice.encrypt(b"payload")
    before = _snapshot(bob)
    for length in (0, 10, 67, 84, len(msg) - 1):
        with pytest.raises(DecryptionError):
            bob.decrypt(msg[:length])
        assert _snapshot(bob) == before
    assert bob.decrypt(msg) == b"payload"


def test_a_body_failure_after_a_new_ratchet_header_leaves_the_state_unchanged() -> None:
    alice, bob, *_ = new_pair()
    reply = bob.encrypt(b"reply")  # a new ratchet key for alice: its header opens under NHKr
    before = _snapshot(alice)
    bad = bytearray(reply)
    bad[-1] ^= 1
    with pytest.raises(DecryptionError):
        alice.decrypt(bytes(bad))
    assert _snapshot(alice) == before
    assert alice.decrypt(reply) == b"reply"


def test_a_replayed_message_is_refused_and_changes_no_state() -> None:
    alice, bob, *_, first = new_pair()
    msgs = [alice.encrypt(bytes([i])) for i in range(3)]
    bob.decrypt(msgs[2])
    bob.decrypt(msgs[0])  # from the skipped keys
    for replay in (first, msgs[0], msgs[2]):
        before = _snapshot(bob)
        with pytest.raises(DecryptionError):
            bob.decrypt(replay)
        assert _snapshot(bob) == before
    assert bob.decrypt(msgs[1]) == b"\x01"
    with pytest.raises(DecryptionError):
        bob.decrypt(msgs[1])


def test_out_of_order_messages_decrypt_within_the_limits() -> None:
    alice, bob, *_ = new_pair()
    msgs = [alice.encrypt(f"m{i}".encode()) for i in range(50)]
    order = list(range(49, -1, -2)) + list(range(0, 50, 2))
    for i in order:
        assert bob.decrypt(msgs[i]) == f"m{i}".encode()
    assert not bob.state.skipped


def test_out_of_order_messages_across_a_ratchet_turn_decrypt() -> None:
    alice, bob, *_ = new_pair()
    late = alice.encrypt(b"late")
    alice.encrypt(b"lost")
    bob.decrypt(alice.encrypt(b"on time"))
    alice.decrypt(bob.encrypt(b"turn"))
    new_chain = alice.encrypt(b"new chain")
    assert bob.decrypt(new_chain) == b"new chain"
    assert bob.decrypt(late) == b"late"


def test_skipped_keys_are_capped_and_the_oldest_are_evicted_first() -> None:
    alice, bob, *_ = new_pair()
    msgs = [alice.encrypt(bytes([i % 256])) for i in range(ratchet.MAX_SKIPPED_KEYS + 11)]
    bob.decrypt(msgs[-1])
    assert len(bob.state.skipped) == ratchet.MAX_SKIPPED_KEYS
    before = _snapshot(bob)
    with pytest.raises(DecryptionError):
        bob.decrypt(msgs[0])  # evicted
    assert _snapshot(bob) == before
    assert bob.decrypt(msgs[10]) == bytes([10])  # the oldest one kept


def test_a_forward_jump_beyond_the_limit_is_refused_without_changing_state() -> None:
    alice, bob, *_ = new_pair()  # bob has read message 0
    for _ in range(ratchet.MAX_FORWARD_JUMP + 1):
        alice.encrypt(b"x")
    far = alice.encrypt(b"x")  # needs MAX_FORWARD_JUMP + 1 skipped keys
    before = _snapshot(bob)
    with pytest.raises(LimitExceeded):
        bob.decrypt(far)
    assert _snapshot(bob) == before


def test_the_responder_cannot_send_before_it_has_received() -> None:
    from courier.crypto.identity import Identity, generate_bundle
    from courier.crypto.ratchet import init_responder

    bob_id = Identity.generate()
    _, secrets = generate_bundle(bob_id)
    state = init_responder(bytes(32), secrets.signed[1], bytes(32), bytes(32), b"")
    with pytest.raises(DecryptionError):
        Session(state).encrypt(b"too early")


def test_the_responders_first_reply_ratchets_to_a_fresh_key() -> None:
    alice, bob, _, _, secrets, _ = new_pair()
    signed_prekey_public = p.x25519_public(secrets.signed[1])
    assert alice.state.dhr == signed_prekey_public
    assert alice.decrypt(bob.encrypt(b"reply")) == b"reply"
    assert alice.state.dhr == p.x25519_public(bob.state.dhs_private)
    assert alice.state.dhr != signed_prekey_public


def test_a_replayed_initial_message_never_makes_the_responder_reuse_keys() -> None:
    from courier.crypto.identity import Identity, generate_bundle
    from courier.crypto.pqxdh import PrekeyHeader
    from courier.crypto.session import accept_session, start_session

    alice_id, bob_id = Identity.generate(), Identity.generate()
    bundle, secrets = generate_bundle(bob_id)  # no one-time prekeys: last resort only
    alice, _ = start_session(alice_id, bundle.claim())
    header = PrekeyHeader.decode(alice.state.pending_prekey_header or b"")
    first = alice.encrypt(b"hello")
    bob1, _, _ = accept_session(bob_id, secrets, header, first)
    bob2, _, _ = accept_session(bob_id, secrets, header, first)  # the replay
    r1, r2 = bob1.encrypt(b"same"), bob2.encrypt(b"same")
    assert r1[:68] != r2[:68] and r1[68:] != r2[68:]
    assert bob1.state.dhs_private != bob2.state.dhs_private
    assert bob1.state.rk != bob2.state.rk


def test_no_key_and_nonce_pair_repeats_over_a_long_conversation() -> None:
    alice, bob, *_ = new_pair()
    seen_body: set[tuple[bytes, bytes]] = set()
    seen_header: set[tuple[bytes, bytes]] = set()

    def send(sender: Session, receiver: Session, n: int) -> None:
        for _ in range(n):
            trace: ratchet.Trace = []
            msg = sender.encrypt(b"m", trace)
            t = trace[0]
            body_pair = (t["body_key"], t["body_nonce"])
            header_pair = (t["header_key"], t["header_nonce"])
            assert body_pair not in seen_body and header_pair not in seen_header
            seen_body.add(body_pair)
            seen_header.add(header_pair)
            receiver.decrypt(msg)

    for rounds in range(20):
        send(alice, bob, 1 + rounds % 4)
        send(bob, alice, 1 + rounds % 3)
    assert len(seen_body) > 80


def test_session_state_round_trips_through_bytes() -> None:
    alice, bob, *_ = new_pair()
    msgs = [alice.encrypt(bytes([i])) for i in range(5)]
    bob.decrypt(msgs[4])
    restored = Session.from_bytes(bob.to_bytes())
    assert restored.to_bytes() == bob.to_bytes()
    assert restored.state == bob.state
    assert restored.decrypt(msgs[1]) == b"\x01"
    assert Session.from_bytes(alice.to_bytes()).state == alice.state


def test_a_corrupt_session_state_is_refused() -> None:
    from courier.crypto.errors import EncodingError

    _, bob, *_ = new_pair()
    data = bob.to_bytes()
    for bad in (b"", b"\x02" + data[1:], data[:-1], data + b"\x00"):
        with pytest.raises(EncodingError):
            Session.from_bytes(bad)
