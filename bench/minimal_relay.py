"""A minimal relay on the plain `websockets` library: the baseline of bench/bench_relay.py.

It keeps the Courier relay's durability and nothing else: every envelope is committed to
PostgreSQL (one INSERT in autocommit) before it is answered "accepted", a Redis PUBLISH of
the envelope id is the doorbell, the subscribed socket fetches the row by id and pushes it,
an ack deletes it. No sessions, signatures, at-rest encryption, quotas, size checks or
limits. Frames are the Courier relay's (docs/api/relay.md), minus auth: subscribe is
`{"type": "subscribe", "receive_id": ...}` where the receive id is also the send id.

Run:  python bench/minimal_relay.py --port 8765 --database-url postgres://... --redis-url redis://...
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import secrets
import struct
from collections import defaultdict

import psycopg
import redis.asyncio as aioredis
from websockets.asyncio.server import ServerConnection, serve

SEND_HEADER = struct.Struct(">BI16sI")
PUSH_HEADER = struct.Struct(">B16s16sQ")
PREFIX = "minimal-relay:"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Relay:
    def __init__(self, database_url: str, redis_url: str) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.subscribers: dict[bytes, set[ServerConnection]] = defaultdict(set)
        self.sending: set[asyncio.Future] = set()

    async def start(self) -> None:
        self.db = await psycopg.AsyncConnection.connect(self.database_url, autocommit=True)
        await self.db.execute(
            "CREATE TABLE IF NOT EXISTS envelope (id bytea PRIMARY KEY, mailbox bytea NOT NULL,"
            " payload bytea NOT NULL, expires_at timestamptz NOT NULL)"
        )
        await self.db.execute("CREATE INDEX IF NOT EXISTS envelope_mailbox ON envelope (mailbox)")
        self.redis = aioredis.from_url(self.redis_url)
        self.pubsub = self.redis.pubsub()
        await self.pubsub.subscribe(PREFIX + "init")
        self.listener = asyncio.create_task(self.listen())

    async def listen(self) -> None:
        async for message in self.pubsub.listen():
            if message["type"] != "message":
                continue
            mailbox = bytes.fromhex(message["channel"].decode()[len(PREFIX) :])
            envelope_id = message["data"]
            sockets = self.subscribers.get(mailbox)
            if not sockets:
                continue
            row = await (
                await self.db.execute(
                    "SELECT payload, expires_at FROM envelope WHERE id = %s AND expires_at > now()",
                    (envelope_id,),
                )
            ).fetchone()
            if row is None:
                continue
            frame = PUSH_HEADER.pack(1, envelope_id, mailbox, int(row[1].timestamp())) + row[0]
            for socket in list(sockets):
                task = asyncio.ensure_future(socket.send(frame))
                self.sending.add(task)
                task.add_done_callback(self.sending.discard)

    async def handle(self, socket: ServerConnection) -> None:
        mine: set[bytes] = set()
        try:
            async for frame in socket:
                if isinstance(frame, bytes):
                    await self.enqueue(socket, frame)
                    continue
                message = json.loads(frame)
                kind = message.get("type")
                if kind == "subscribe":
                    mailbox = unb64u(message["receive_id"])
                    if not self.subscribers[mailbox]:
                        await self.pubsub.subscribe(PREFIX + mailbox.hex())
                    self.subscribers[mailbox].add(socket)
                    mine.add(mailbox)
                    await socket.send(json.dumps({"type": "subscribed"}))
                    rows = await (
                        await self.db.execute(
                            "SELECT id, payload, expires_at FROM envelope"
                            " WHERE mailbox = %s AND expires_at > now()",
                            (mailbox,),
                        )
                    ).fetchall()
                    for envelope_id, payload, expires_at in rows:
                        header = PUSH_HEADER.pack(
                            1, envelope_id, mailbox, int(expires_at.timestamp())
                        )
                        await socket.send(header + payload)
                elif kind == "ack":
                    ids = [unb64u(i) for i in message["ids"]]
                    await self.db.execute("DELETE FROM envelope WHERE id = ANY(%s)", (ids,))
                elif kind == "ping":
                    await socket.send(json.dumps({"type": "pong"}))
        finally:
            for mailbox in mine:
                self.subscribers[mailbox].discard(socket)

    async def enqueue(self, socket: ServerConnection, frame: bytes) -> None:
        _, ref, send_id, ttl = SEND_HEADER.unpack_from(frame)
        envelope_id = secrets.token_bytes(16)
        await self.db.execute(
            "INSERT INTO envelope (id, mailbox, payload, expires_at)"
            " VALUES (%s, %s, %s, now() + make_interval(secs => %s))",
            (envelope_id, send_id, frame[SEND_HEADER.size :], ttl),
        )
        await self.redis.publish(PREFIX + send_id.hex(), envelope_id)
        await socket.send(json.dumps({"type": "accepted", "ref": ref, "id": b64u(envelope_id)}))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", ""))
    args = parser.parse_args()
    relay = Relay(args.database_url, args.redis_url)
    await relay.start()
    async with serve(relay.handle, "127.0.0.1", args.port, max_size=2**17, ping_interval=20):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
