"""At-least-once delivery through crashes: no accepted envelope is ever lost.

A sender pushes 2,000 envelopes (over HTTP and two pipelined sockets) while the ASGI
process is killed with SIGKILL and restarted twice (and, in the Redis configuration,
Redis is killed and restarted once). A receiver keeps a socket open, reconnecting
whenever it drops, and acknowledges what it gets. Afterwards a fresh socket collects
whatever is left. Every accepted envelope must have arrived, with the right bytes;
duplicates are allowed on the wire (acks lost in a crash) and collapse when deduplicated
by envelope id; the server's queue must be empty after the acks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from tests.support.relay_client import (
    RelaySocket,
    RemoteMailbox,
    create_mailbox,
    fetch_pending,
    mint_session,
)
from tests.support.relay_protocol import Push, b64u, make_envelope, unb64u
from tests.support.servers import RedisServer, ServerStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TOTAL = 2000
SOCKET_SENDERS = 2
STACK_ENV = {
    "RATELIMIT_ENABLE": "false",
    "RELAY_WS_RATE_PER_SECOND": "2000",
    "RELAY_WS_RATE_BURST": "2000",
    # Heals doorbells lost while Redis is down without waiting for a reconnect.
    "RELAY_WS_RESYNC_SECONDS": "2",
}
SOCKET_ERRORS = (ConnectionClosed, InvalidHandshake, InvalidStatus, OSError, TimeoutError)


def seq_of(envelope: bytes) -> int:
    return int.from_bytes(envelope[1:5], "big")


class Scenario:
    def __init__(self, stack: ServerStack, redis: RedisServer | None) -> None:
        self.stack = stack
        self.redis = redis
        self.token = mint_session(stack.url())
        self.mailbox: RemoteMailbox = create_mailbox(stack.url(), self.token)
        self.accepted: dict[bytes, int] = {}  # envelope id -> sequence number
        self.sent: dict[int, bytes] = {}  # sequence number -> envelope
        self.received: dict[bytes, bytes] = {}  # envelope id -> envelope, deduplicated
        self.pushes = 0
        self.failed_attempts = 0
        self.crashes: list[str] = []
        self.next_seq = 0
        self.retry: list[int] = []
        self.receiving = True
        self.timings: dict[str, float] = {}

    # --- senders ------------------------------------------------------------------------

    def _take(self) -> int | None:
        """The next sequence number to send: a retry first, else a new envelope."""
        if self.retry:
            return self.retry.pop()
        if self.next_seq >= TOTAL:
            return None
        seq = self.next_seq
        self.next_seq += 1
        self.sent[seq] = make_envelope(1024, seq.to_bytes(4, "big"))
        return seq

    def _not_accepted(self, seqs: list[int]) -> None:
        # Not accepted (server down, or the answer lost): the client sends again. The
        # first try may still have been committed: a duplicate the receiver drops by
        # content, as the ratchet would.
        self.failed_attempts += len(seqs)
        self.retry.extend(seqs)

    async def http_sender(self) -> None:
        path = f"{self.stack.url()}/api/v1/mailboxes/{b64u(self.mailbox.send_id)}/envelopes"
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/octet-stream",
        }
        async with httpx.AsyncClient(timeout=5) as client:
            while (seq := self._take()) is not None:
                try:
                    response = await client.post(
                        path + "?ttl=600", content=self.sent[seq], headers=headers
                    )
                except httpx.HTTPError:
                    response = None
                if response is not None and response.status_code == 201:
                    self.accepted[unb64u(response.json()["id"])] = seq
                else:
                    self._not_accepted([seq])
                    await asyncio.sleep(0.05)

    async def socket_sender(self, window: int = 16) -> None:
        """Pipelined sends over a socket; whatever is unanswered at a drop is sent again."""
        while self.next_seq < TOTAL or self.retry:
            try:
                socket = await RelaySocket.open(
                    self.stack.ws_url(), self.stack.origin(), self.token
                )
            except SOCKET_ERRORS:
                await asyncio.sleep(0.1)
                continue
            waiting: dict[int, int] = {}  # ref -> seq
            try:
                while True:
                    while len(waiting) < window and (seq := self._take()) is not None:
                        waiting[seq] = seq
                        await socket.send(seq, self.mailbox.send_id, self.sent[seq])
                    if not waiting:
                        break
                    reply = await asyncio.wait_for(socket.receive(), 5)
                    if isinstance(reply, dict) and reply.get("type") == "accepted":
                        self.accepted[unb64u(reply["id"])] = waiting.pop(reply["ref"])
            except SOCKET_ERRORS:
                self._not_accepted(list(waiting.values()))
                await asyncio.sleep(0.05)
            finally:
                with contextlib.suppress(Exception):
                    await socket.close()

    # --- receiver -----------------------------------------------------------------------

    async def receiver(self) -> None:
        while self.receiving:
            try:
                socket = await RelaySocket.open(
                    self.stack.ws_url(), self.stack.origin(), self.token
                )
            except SOCKET_ERRORS:
                await asyncio.sleep(0.1)
                continue
            try:
                await socket.subscribe(self.mailbox)
                await self._drain(socket, until=lambda: not self.receiving)
            except SOCKET_ERRORS:
                await asyncio.sleep(0.1)
            finally:
                with contextlib.suppress(Exception):
                    await socket.close()

    async def _drain(self, socket: RelaySocket, until, quiet: float = 0.2) -> None:
        """Take pushes, acknowledging in batches, until `until()` holds and all is quiet."""
        unacked: list[bytes] = []
        while True:
            try:
                frame = await asyncio.wait_for(socket.receive(), quiet)
            except TimeoutError:
                frame = None
            if isinstance(frame, Push):
                self.pushes += 1
                self.received.setdefault(frame.id, frame.envelope)
                unacked.append(frame.id)
            if unacked and (frame is None or len(unacked) >= 25):
                await socket.ack(unacked)
                unacked = []
            if frame is None and until():
                return

    # --- chaos --------------------------------------------------------------------------

    async def chaos(self) -> None:
        plan = [(500, "web0"), (1000, "web0")]
        if self.redis is not None:
            plan.append((1500, "redis"))
        for threshold, target in plan:
            while len(self.accepted) < threshold:  # noqa: ASYNC110 - polling a counter
                await asyncio.sleep(0.01)
            if target == "redis":
                await asyncio.to_thread(self.redis.restart)
            else:
                await asyncio.to_thread(self.stack.restart, target)
            self.crashes.append(target)
            self.timings[f"crash {len(self.crashes)} at"] = len(self.accepted)

    # --- run ----------------------------------------------------------------------------

    async def run(self) -> None:
        started = time.monotonic()
        receiver = asyncio.create_task(self.receiver())
        await asyncio.gather(
            self.chaos(), self.http_sender(), *(self.socket_sender() for _ in range(SOCKET_SENDERS))
        )
        self.timings["sent"] = time.monotonic() - started
        deadline = time.monotonic() + 30
        while not set(self.accepted) <= set(self.received) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        self.timings["received"] = time.monotonic() - started
        self.receiving = False
        await receiver
        # After reconnecting, a fresh socket gets whatever is still queued, and acks it.
        socket = await RelaySocket.open(self.stack.ws_url(), self.stack.origin(), self.token)
        await socket.subscribe(self.mailbox)
        await self._drain(socket, until=lambda: True, quiet=1.0)
        await socket.connection.send(json.dumps({"type": "ping"}))
        while not (isinstance(reply := await socket.receive(), dict) and reply["type"] == "pong"):
            pass
        await socket.close()
        self.timings["done"] = time.monotonic() - started
        print(self.timings, "pushes", self.pushes, "failed attempts", self.failed_attempts)

    def check(self) -> None:
        assert self.crashes == (["web0", "web0", "redis"] if self.redis else ["web0", "web0"])
        assert len(self.accepted) == TOTAL
        missing = set(self.accepted) - set(self.received)
        assert not missing, f"{len(missing)} accepted envelopes never arrived"
        for envelope_id, seq in self.accepted.items():
            assert self.received[envelope_id] == self.sent[seq]
        # Envelopes committed whose answer was lost in a crash arrive too; nothing else.
        extra = set(self.received) - set(self.accepted)
        assert len(extra) <= self.failed_attempts
        assert {seq_of(e) for e in self.received.values()} == set(range(TOTAL))
        # Exactly once after dedupe: one envelope per accepted id, whatever came twice.
        assert self.pushes >= len(self.received)
        assert fetch_pending(self.stack.url(), self.token, self.mailbox) == {
            "envelopes": [],
            "more": False,
        }


@pytest.mark.sqlite_only
async def test_no_accepted_envelope_is_lost_when_the_server_is_killed_twice(
    tmp_path: Path,
) -> None:
    with ServerStack(tmp_path / "stack", database="sqlite", env=STACK_ENV) as stack:
        scenario = Scenario(stack, None)
        await scenario.run()
        scenario.check()


@pytest.mark.postgres
@pytest.mark.redis
async def test_no_accepted_envelope_is_lost_when_the_server_and_redis_are_killed(
    tmp_path: Path,
) -> None:
    assert os.environ.get("DATABASE_URL", "").startswith("postgres"), "needs PostgreSQL"
    assert shutil.which("redis-server"), "needs redis-server for a throwaway Redis"
    with RedisServer(tmp_path / "redis") as redis:
        stack = ServerStack(
            tmp_path / "stack", database="postgres", redis_url=redis.url, env=STACK_ENV
        )
        with stack:
            scenario = Scenario(stack, redis)
            await scenario.run()
            scenario.check()
