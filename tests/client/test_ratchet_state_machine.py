"""Long random conversations: send, drop, reorder, duplicate, tamper, save and restore.

Every delivered plaintext must be right, every replay and every tampered copy refused with the
receiver's state unchanged, and the parties must keep talking after any of it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from courier.crypto.errors import DecryptionError
from courier.crypto.ratchet import Session

from .support import new_pair


@dataclass
class InFlight:
    sender: int
    message: bytes
    plaintext: bytes
    delivered: bool = False


class Conversation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        alice, bob, *_ = new_pair()
        self.parties: list[Session] = [alice, bob]
        self.flight: list[InFlight] = []
        self.counter = 0
        self.delivered = 0

    @rule(sender=st.integers(0, 1), size=st.integers(0, 64))
    def send(self, sender: int, size: int) -> None:
        self.counter += 1
        plaintext = self.counter.to_bytes(4, "big") + bytes(size)
        message = self.parties[sender].encrypt(plaintext)
        self.flight.append(InFlight(sender, message, plaintext))

    @precondition(lambda self: any(not m.delivered for m in self.flight))
    @rule(data=st.data())
    def deliver_any_pending_message(self, data: st.DataObject) -> None:
        pending = [m for m in self.flight if not m.delivered]
        m = data.draw(st.sampled_from(pending))  # any order: this is the reordering
        receiver = self.parties[1 - m.sender]
        assert receiver.decrypt(m.message) == m.plaintext
        m.delivered = True
        self.delivered += 1

    @precondition(lambda self: any(m.delivered for m in self.flight))
    @rule(data=st.data())
    def duplicate_a_delivered_message(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from([m for m in self.flight if m.delivered]))
        receiver = self.parties[1 - m.sender]
        before = receiver.to_bytes()
        try:
            receiver.decrypt(m.message)
        except DecryptionError:
            pass
        else:
            raise AssertionError("a replayed message was accepted")
        assert receiver.to_bytes() == before

    @precondition(lambda self: any(not m.delivered for m in self.flight))
    @rule(data=st.data(), position=st.integers(0, 10_000), bit=st.integers(0, 7))
    def tamper_with_a_pending_message(self, data: st.DataObject, position: int, bit: int) -> None:
        m = data.draw(st.sampled_from([m for m in self.flight if not m.delivered]))
        receiver = self.parties[1 - m.sender]
        bad = bytearray(m.message)
        bad[position % len(bad)] ^= 1 << bit
        before = receiver.to_bytes()
        try:
            receiver.decrypt(bytes(bad))
        except DecryptionError:
            pass
        else:
            raise AssertionError("a tampered message was accepted")
        assert receiver.to_bytes() == before

    @precondition(lambda self: any(not m.delivered for m in self.flight))
    @rule(data=st.data())
    def drop_a_pending_message(self, data: st.DataObject) -> None:
        m = data.draw(st.sampled_from([m for m in self.flight if not m.delivered]))
        self.flight.remove(m)

    @rule(party=st.integers(0, 1))
    def save_and_restore(self, party: int) -> None:
        session = self.parties[party]
        restored = Session.from_bytes(session.to_bytes(), session.rng)
        assert restored.state == session.state
        self.parties[party] = restored

    @invariant()
    def skipped_keys_stay_bounded(self) -> None:
        for session in self.parties:
            assert len(session.state.skipped) <= 1000


Conversation.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_random_conversations_deliver_every_message_and_refuse_every_replay = Conversation.TestCase
