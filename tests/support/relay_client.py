"""A small client of a running relay (HTTP + /ws/v1/relay), for end-to-end tests and bench.

It speaks only the documented wire format (docs/api/relay.md) through httpx and the
`websockets` library, as a third-party client would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.support.relay_protocol import (
    Owner,
    Push,
    ack_frame,
    auth_frame,
    b64u,
    parse_push,
    send_frame,
    subscribe_frame,
    unb64u,
)


@dataclass
class RemoteMailbox:
    owner: Owner
    send_id: bytes
    receive_id: bytes


def mint_session(base_url: str) -> str:
    response = httpx.post(base_url + "/api/v1/sessions", json={}, timeout=10)
    response.raise_for_status()
    return response.json()["token"]


def create_mailbox(base_url: str, token: str, ttl: int = 3600) -> RemoteMailbox:
    owner = Owner.generate()
    response = httpx.post(
        base_url + "/api/v1/mailboxes",
        json={"owner_key": b64u(owner.public), "ttl_seconds": ttl},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    body = response.json()
    return RemoteMailbox(owner, unb64u(body["send_id"]), unb64u(body["receive_id"]))


def send_envelope(
    client: httpx.Client, base_url: str, token: str, send_id: bytes, envelope: bytes, ttl: int = 600
) -> httpx.Response:
    return client.post(
        f"{base_url}/api/v1/mailboxes/{b64u(send_id)}/envelopes?ttl={ttl}",
        content=envelope,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"},
    )


def fetch_pending(base_url: str, token: str, mailbox: RemoteMailbox) -> dict[str, Any]:
    """The owner-signed HTTP fetch (the fallback for clients without WebSockets)."""
    path = f"/api/v1/mailboxes/{b64u(mailbox.receive_id)}/envelopes"
    with httpx.Client(base_url=base_url, timeout=10) as client:
        challenge = unb64u(client.post("/api/v1/challenges").json()["challenge"])
        headers = mailbox.owner.request_headers(challenge, "GET", path, b"")
        headers["Authorization"] = f"Bearer {token}"
        response = client.get(path + "?limit=100", headers=headers)
    response.raise_for_status()
    return response.json()


class RelaySocket:
    """One authenticated /ws/v1/relay connection."""

    def __init__(self, connection: ClientConnection, challenge: bytes) -> None:
        self.connection = connection
        self.challenge = challenge

    @classmethod
    async def open(cls, ws_url: str, origin: str, token: str) -> RelaySocket:
        connection = await connect(ws_url, origin=origin, max_size=2**17, open_timeout=10)
        await connection.send(auth_frame(token))
        ready = json.loads(await connection.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"not ready: {ready}")
        return cls(connection, unb64u(ready["challenge"]))

    async def subscribe(self, mailbox: RemoteMailbox) -> None:
        """Subscribe and wait for the confirmation (pushes may follow at once)."""
        frame = subscribe_frame(mailbox.owner, self.challenge, mailbox.receive_id)
        await self.connection.send(frame)
        reply = json.loads(await self.connection.recv())
        if reply.get("type") != "subscribed":
            raise RuntimeError(f"not subscribed: {reply}")

    async def send(self, ref: int, send_id: bytes, envelope: bytes, ttl: int = 600) -> None:
        await self.connection.send(send_frame(ref, send_id, envelope, ttl))

    async def ack(self, ids: list[bytes]) -> None:
        for start in range(0, len(ids), 100):
            await self.connection.send(ack_frame(ids[start : start + 100]))

    async def receive(self) -> Push | dict[str, Any]:
        """The next frame: a Push for binary frames, the parsed JSON for text frames."""
        frame = await self.connection.recv()
        if isinstance(frame, bytes):
            return parse_push(frame)
        return json.loads(frame)

    async def close(self) -> None:
        await self.connection.close()
