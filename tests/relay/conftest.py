"""Fixtures of the relay tests: owner keys, mailboxes, and a socket driver."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from messenger.asgi import application
from relay import services
from relay.models import Mailbox
from tests.support.relay_protocol import (
    Owner,
    Push,
    auth_frame,
    b64u,
    parse_push,
    subscribe_frame,
    unb64u,
)

ORIGIN = (b"origin", b"http://127.0.0.1")


@dataclass
class OwnedMailbox:
    owner: Owner
    mailbox: Mailbox

    @property
    def send_id(self) -> bytes:
        return bytes(self.mailbox.send_id)

    @property
    def receive_id(self) -> bytes:
        return bytes(self.mailbox.receive_id)


def new_mailbox(ttl: int = 3600) -> OwnedMailbox:
    owner = Owner.generate()
    return OwnedMailbox(owner, services.create_mailbox(owner.public, ttl))


@pytest.fixture
def mailbox(db: None) -> OwnedMailbox:
    return new_mailbox()


@pytest.fixture
def other_mailbox(db: None) -> OwnedMailbox:
    return new_mailbox()


def signed(client: Client, owner: Owner, method: str, path: str, body: bytes = b"") -> dict:
    """Headers of an owner-signed request, with a fresh challenge from the server."""
    challenge = unb64u(client.post("/api/v1/challenges").json()["challenge"])
    return owner.request_headers(challenge, method, path, body)


class Socket:
    """Drives /ws/v1/relay through the real ASGI application (origin check included)."""

    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.communicator = WebsocketCommunicator(
            application, "/ws/v1/relay", headers=[ORIGIN] if headers is None else headers
        )
        self.challenge = b""

    async def connect(self) -> bool:
        connected, _ = await self.communicator.connect()
        return connected

    async def auth(self, token: str) -> None:
        assert await self.connect()
        await self.communicator.send_to(text_data=auth_frame(token))
        ready = await self.json()
        assert ready["type"] == "ready", ready
        self.challenge = unb64u(ready["challenge"])

    async def subscribe(self, owned: OwnedMailbox, *, owner: Owner | None = None) -> None:
        frame = subscribe_frame(owner or owned.owner, self.challenge, owned.receive_id)
        await self.communicator.send_to(text_data=frame)

    async def send_json(self, message: dict[str, Any]) -> None:
        await self.communicator.send_to(text_data=json.dumps(message))

    async def output(self, wait: float = 2) -> dict[str, Any]:
        return await self.communicator.receive_output(wait)

    async def json(self, wait: float = 2) -> dict[str, Any]:
        message = await self.output(wait)
        assert message["type"] == "websocket.send" and message.get("text"), message
        return json.loads(message["text"])

    async def push(self, wait: float = 2) -> Push:
        message = await self.output(wait)
        assert message["type"] == "websocket.send" and message.get("bytes"), message
        return parse_push(message["bytes"])

    async def closed_with(self, wait: float = 2) -> tuple[str, int]:
        """The error frame's code and the close code that follows it."""
        error = await self.json(wait)
        assert error["type"] == "error", error
        close = await self.output(wait)
        assert close["type"] == "websocket.close", close
        return error["code"], close["code"]

    async def nothing(self) -> bool:
        return await self.communicator.receive_nothing(timeout=0.3)

    async def close(self) -> None:
        await self.communicator.disconnect()


__all__ = ["ORIGIN", "OwnedMailbox", "Socket", "b64u", "new_mailbox", "signed"]
