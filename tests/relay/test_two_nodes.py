"""Scale-out: two daphne nodes sharing PostgreSQL and Redis deliver to each other's clients."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.support.relay_client import RelaySocket, create_mailbox, mint_session, send_envelope
from tests.support.relay_protocol import Push, make_envelope
from tests.support.servers import RedisServer, ServerStack

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]


async def next_push(socket: RelaySocket) -> Push:
    frame = await asyncio.wait_for(socket.receive(), 10)
    assert isinstance(frame, Push), frame
    return frame


async def test_an_envelope_sent_through_node_a_reaches_a_receiver_on_node_b(
    tmp_path: Path,
) -> None:
    assert os.environ.get("DATABASE_URL", "").startswith("postgres"), "needs PostgreSQL"
    assert shutil.which("redis-server"), "needs redis-server"
    with (
        RedisServer(tmp_path / "redis") as redis,
        ServerStack(
            tmp_path / "stack", web_nodes=2, database="postgres", redis_url=redis.url
        ) as stack,
    ):
        a = stack.url(0)
        token = mint_session(a)
        mailbox = create_mailbox(a, token)

        # Live: the receiver sits on node B, the sender talks to node A (HTTP and socket).
        receiver = await RelaySocket.open(stack.ws_url(1), stack.origin(1), token)
        await receiver.subscribe(mailbox)
        over_http = make_envelope(4096)
        with httpx.Client(timeout=10) as client:
            assert send_envelope(client, a, token, mailbox.send_id, over_http).status_code == 201
        push = await next_push(receiver)
        assert push.envelope == over_http
        sender = await RelaySocket.open(stack.ws_url(0), stack.origin(0), mint_session(a))
        over_socket = make_envelope(1024)
        await sender.send(1, mailbox.send_id, over_socket)
        assert (await asyncio.wait_for(sender.receive(), 10))["type"] == "accepted"
        second = await next_push(receiver)
        assert second.envelope == over_socket
        await receiver.ack([push.id, second.id])
        await receiver.close()

        # After a reconnect: what node A accepted while nobody listened arrives on node B.
        waiting = [make_envelope(1024) for _ in range(3)]
        for envelope in waiting:
            await sender.send(2, mailbox.send_id, envelope)
            assert (await asyncio.wait_for(sender.receive(), 10))["type"] == "accepted"
        receiver = await RelaySocket.open(stack.ws_url(1), stack.origin(1), token)
        await receiver.subscribe(mailbox)
        pushes = [await next_push(receiver) for _ in waiting]
        assert sorted(p.envelope for p in pushes) == sorted(waiting)
        await receiver.ack([p.id for p in pushes])
        await receiver.close()
        await sender.close()
