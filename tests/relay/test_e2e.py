"""The relay against real daphne processes (messenger/processes.py), as clients see it.

In the first pass of `make test` the stack runs on SQLite and the in-memory layer; in the
second on a throwaway PostgreSQL database and the run's Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.relay_client import (
    RelaySocket,
    create_mailbox,
    fetch_pending,
    mint_session,
    send_envelope,
)
from tests.support.relay_protocol import Push, make_envelope, send_frame
from tests.support.servers import ServerStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerStack]:
    data_dir: Path = tmp_path_factory.mktemp("relay-e2e")
    with ServerStack(data_dir, redis_url=os.environ.get("REDIS_URL") or None) as running:
        yield running


async def test_an_envelope_sent_over_http_is_pushed_live_and_gone_after_ack(
    stack: ServerStack,
) -> None:
    token = mint_session(stack.url())
    mailbox = create_mailbox(stack.url(), token)
    socket = await RelaySocket.open(stack.ws_url(), stack.origin(), token)
    await socket.subscribe(mailbox)
    envelope = make_envelope(65536)
    with httpx.Client(timeout=10) as client:
        response = send_envelope(client, stack.url(), token, mailbox.send_id, envelope)
    assert response.status_code == 201, response.text
    push = await asyncio.wait_for(socket.receive(), 5)
    assert isinstance(push, Push) and push.envelope == envelope
    assert push.receive_id == mailbox.receive_id
    await socket.ack([push.id])
    await socket.connection.send(json.dumps({"type": "ping"}))
    assert (await asyncio.wait_for(socket.receive(), 5)) == {"type": "pong"}
    assert fetch_pending(stack.url(), token, mailbox) == {"envelopes": [], "more": False}
    await socket.close()


async def test_an_envelope_sent_over_the_socket_reaches_another_socket(
    stack: ServerStack,
) -> None:
    token = mint_session(stack.url())
    mailbox = create_mailbox(stack.url(), token)
    receiver = await RelaySocket.open(stack.ws_url(), stack.origin(), token)
    await receiver.subscribe(mailbox)
    sender = await RelaySocket.open(stack.ws_url(), stack.origin(), mint_session(stack.url()))
    envelope = make_envelope(4096)
    await sender.send(11, mailbox.send_id, envelope)
    accepted = await asyncio.wait_for(sender.receive(), 5)
    assert accepted["type"] == "accepted" and accepted["ref"] == 11
    push = await asyncio.wait_for(receiver.receive(), 5)
    assert isinstance(push, Push) and push.envelope == envelope
    await sender.close()
    await receiver.close()


async def test_wrong_size_envelopes_are_refused_over_http_and_the_socket(
    stack: ServerStack,
) -> None:
    token = mint_session(stack.url())
    mailbox = create_mailbox(stack.url(), token)
    with httpx.Client(timeout=10) as client:
        response = send_envelope(client, stack.url(), token, mailbox.send_id, b"\x01" * 1500)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_envelope_size"
    socket = await RelaySocket.open(stack.ws_url(), stack.origin(), token)
    await socket.connection.send(send_frame(1, mailbox.send_id, b"\x01" * 1500))
    error = await asyncio.wait_for(socket.receive(), 5)
    assert error["code"] == "invalid_envelope"
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(socket.receive(), 5)
    assert closed.value.rcvd.code == 4415


@pytest.mark.parametrize(
    ("size", "code"),
    [(70_000, 4413), (2 * 1024 * 1024, 1009)],
    ids=["above-the-bucket-maximum", "above-daphnes-limit"],
)
async def test_an_oversized_frame_closes_the_socket(
    stack: ServerStack, size: int, code: int
) -> None:
    token = mint_session(stack.url())
    socket = await RelaySocket.open(stack.ws_url(), stack.origin(), token)
    with pytest.raises(ConnectionClosed) as closed:
        # The server may drop the connection while the frame is still being written.
        await socket.connection.send(b"\x02" * size)
        while True:
            await asyncio.wait_for(socket.receive(), 20)
    received = closed.value.rcvd
    if code == 1009:
        # daphne (autobahn) refuses the message while it still arrives: 1009, or the TCP
        # connection is dropped before the close frame reaches the client.
        assert received is None or received.code == 1009
    else:
        assert received is not None and received.code == code


@pytest.mark.parametrize("origin", ["http://evil.example", None])
async def test_cross_origin_handshakes_are_refused(stack: ServerStack, origin: str | None) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(stack.ws_url(), origin=origin, open_timeout=5)
    assert refused.value.response.status_code == 403


async def test_the_token_never_travels_in_the_url(stack: ServerStack) -> None:
    # A token in the query string is not an auth frame: the socket still waits for one.
    token = mint_session(stack.url())
    connection = await connect(f"{stack.ws_url()}?token={token}", origin=stack.origin())
    await connection.send(json.dumps({"type": "ping"}))
    error = json.loads(await asyncio.wait_for(connection.recv(), 5))
    assert error["code"] == "unauthorized"
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(connection.recv(), 5)
    assert closed.value.rcvd.code == 4401
