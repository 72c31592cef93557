"""The relay socket, `/ws/v1/relay` (docs/api/relay.md, "WebSocket").

Text frames carry JSON control messages; binary frames carry envelopes, so a 64 KiB
envelope costs no base64. The first frame must authenticate with a session token.
Subscribing to a mailbox needs the owner key's signature over this socket's challenge
and the receive id. Every protocol error sends an `error` frame and closes the socket
with a 4xxx code (daphne does not forward close reasons, hence the frame).

Delivery: the database is the queue. On subscribe (and every RELAY_WS_RESYNC_SECONDS)
the socket reads pending envelopes; a doorbell from the channel layer makes it fetch one
envelope by id. At most RELAY_WS_MAX_INFLIGHT envelopes are pushed and not yet
acknowledged; acknowledgements delete rows and make room for more.

Channels dispatches one event at a time per consumer; the watchdog task (timeouts and
resync) is the only other actor, and it takes the same lock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import struct
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from channels.consumer import AsyncConsumer
from channels.exceptions import StopConsumer
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from messenger.challenges import CHALLENGE_BYTES
from messenger.codec import b64u_decode, b64u_encode
from messenger.errors import ApiError
from messenger.sessions import aauthenticate_token
from relay import services
from relay.errors import SocketError
from relay.models import ID_BYTES

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Binary frames. Client -> server "send": kind, ref, send id, ttl, envelope.
FRAME_SEND = 0x02
SEND_HEADER = struct.Struct(">BI16sI")
# Server -> client "push": kind, envelope id, receive id, expiry (unix seconds), envelope.
FRAME_PUSH = 0x01
PUSH_HEADER = struct.Struct(">B16s16sQ")
# Control frames are small; an ack of 100 ids is under 3 KiB.
MAX_TEXT_FRAME = 16 * 1024


def max_binary_frame() -> int:
    return SEND_HEADER.size + max(settings.ENVELOPE_BUCKETS)


def _pooled() -> bool:
    return bool(settings.DATABASES["default"].get("OPTIONS", {}).get("pool"))


def _run_in_db_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    try:
        return function(*args, **kwargs)
    except DatabaseError:
        # A broken connection (database restarted) must not poison every later call in
        # this thread; Django reconnects lazily on the next query.
        connection.close()
        raise
    finally:
        if _pooled():
            # With a pool, closing hands the connection back (cheaply); a thread that
            # kept it would starve the pool.
            connection.close()


def _parallel_database() -> bool:
    return "postgresql" in settings.DATABASES["default"]["ENGINE"]


async def in_db(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one self-contained ORM call (its own transaction, if any) off the event loop.

    Not `database_sync_to_async`: without a connection pool it would close the connection
    after every call (CONN_MAX_AGE is 0), costing a new connection per pushed envelope.
    Without a pool this keeps each thread's connection and drops it only when it breaks;
    with the pool (the PostgreSQL default) it returns the connection after each call.

    On PostgreSQL the calls run in the loop's thread pool, one connection per thread: a
    commit waits for the WAL flush (about 7 ms on this machine), and commits from several
    connections share one flush, whereas Django's single "thread-sensitive" thread would
    cap a process at one commit per flush. SQLite takes one writer at a time anyway, so
    there the calls stay in Django's one database thread.
    """
    call = sync_to_async(_run_in_db_thread, thread_sensitive=not _parallel_database())
    return await call(function, *args, **kwargs)


def _decode_id(value: Any, length: int, field: str) -> bytes:
    try:
        return b64u_decode(value, length=length)
    except ValueError:
        raise SocketError("bad_frame", f"{field} must be {length} bytes in base64url.") from None


class RelayConsumer(AsyncConsumer):
    async def websocket_connect(self, event: dict[str, Any]) -> None:
        self.closed = False
        self.session_expires_at: datetime | None = None
        self.challenge = b""
        self.challenge_issued = 0.0
        # internal mailbox id -> receive id, and back
        self.subscriptions: dict[bytes, bytes] = {}
        self.by_receive_id: dict[bytes, bytes] = {}
        # envelope id -> internal mailbox id, pushed and not yet acknowledged
        self.inflight: dict[bytes, bytes] = {}
        # mailboxes that may hold envelopes not pushed yet
        self.dirty: set[bytes] = set()
        now = time.monotonic()
        self.auth_deadline = now + settings.RELAY_WS_AUTH_TIMEOUT_SECONDS
        self.last_frame = now
        self.next_resync = now + settings.RELAY_WS_RESYNC_SECONDS
        self.tokens = float(settings.RELAY_WS_RATE_BURST)
        self.tokens_at = now
        self.lock = asyncio.Lock()
        await self.send({"type": "websocket.accept"})
        self.watchdog = asyncio.create_task(self._watch())

    async def websocket_disconnect(self, event: dict[str, Any]) -> None:
        self.closed = True
        self.watchdog.cancel()
        for mailbox_id in list(self.subscriptions):
            await self._leave_group(mailbox_id)
        raise StopConsumer()

    async def websocket_receive(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        async with self.lock:
            try:
                await self._receive(event)
            except SocketError as error:
                await self._close(error)
            except DatabaseError:
                logger.warning("relay socket closed: database unavailable")
                await self._close(SocketError("unavailable", "The server is busy; reconnect."))

    async def relay_doorbell(self, event: dict[str, Any]) -> None:
        if self.closed:
            return
        async with self.lock:
            try:
                await self._ring(bytes.fromhex(event["mailbox"]), bytes.fromhex(event["envelope"]))
            except DatabaseError:
                # The envelope stays queued; the next resync or subscribe pushes it.
                logger.warning("relay doorbell not served: database unavailable")

    # --- frames ---------------------------------------------------------------------------

    async def _receive(self, event: dict[str, Any]) -> None:
        text, data = event.get("text"), event.get("bytes")
        size = len(text) if text is not None else len(data or b"")
        limit = MAX_TEXT_FRAME if text is not None else max_binary_frame()
        if size > limit:
            raise SocketError("frame_too_large", f"Frames of this kind are at most {limit} bytes.")
        self._take_token()
        self.last_frame = time.monotonic()
        if self.session_expires_at is None:
            await self._authenticate(text)
            return
        if self.session_expires_at <= timezone.now():
            raise SocketError("unauthorized", "The session has expired; start a new one.")
        if data is not None:
            await self._send_envelope(data)
            return
        message = self._parse(text or "")
        kind = message.get("type")
        if kind == "subscribe":
            await self._subscribe(message)
        elif kind == "ack":
            await self._ack(message)
        elif kind == "unsubscribe":
            await self._unsubscribe(message)
        elif kind == "challenge":
            await self._new_challenge("challenge")
        elif kind == "ping":
            await self._send_json({"type": "pong"})
        else:
            raise SocketError("bad_frame", "Unknown frame type.")

    def _parse(self, text: str) -> dict[str, Any]:
        try:
            message = json.loads(text)
        except ValueError:
            raise SocketError("bad_frame", "A text frame must be a JSON object.") from None
        if not isinstance(message, dict):
            raise SocketError("bad_frame", "A text frame must be a JSON object.")
        return message

    def _take_token(self) -> None:
        now = time.monotonic()
        self.tokens = min(
            float(settings.RELAY_WS_RATE_BURST),
            self.tokens + (now - self.tokens_at) * settings.RELAY_WS_RATE_PER_SECOND,
        )
        self.tokens_at = now
        if self.tokens < 1:
            raise SocketError("rate_limited", "Too many frames; slow down.")
        self.tokens -= 1

    async def _authenticate(self, text: str | None) -> None:
        message = self._parse(text) if text is not None else {}
        token = message.get("token") if message.get("type") == "auth" else None
        session = await aauthenticate_token(token) if isinstance(token, str) else None
        if session is None:
            raise SocketError("unauthorized", "The first frame must be auth with a live token.")
        self.session_expires_at = session.expires_at
        await self._new_challenge("ready")

    async def _new_challenge(self, frame_type: str) -> None:
        self.challenge = secrets.token_bytes(CHALLENGE_BYTES)
        self.challenge_issued = time.monotonic()
        await self._send_json({"type": frame_type, "challenge": b64u_encode(self.challenge)})

    async def _subscribe(self, message: dict[str, Any]) -> None:
        receive_id = _decode_id(message.get("receive_id"), ID_BYTES, "receive_id")
        challenge = _decode_id(message.get("challenge"), CHALLENGE_BYTES, "challenge")
        signature = _decode_id(message.get("signature"), 64, "signature")
        fresh = time.monotonic() - self.challenge_issued < settings.CHALLENGE_TTL_SECONDS
        if challenge != self.challenge or not fresh:
            raise SocketError("stale_challenge", "Sign this socket's current challenge.")
        mailbox_id = self.by_receive_id.get(receive_id)
        if mailbox_id is None and len(self.subscriptions) >= settings.RELAY_WS_MAX_SUBSCRIPTIONS:
            raise SocketError("too_many_subscriptions", "This socket has as many as it may.")
        mailbox = await in_db(services.find_owned_mailbox, receive_id)
        if mailbox is None:
            await self._send_json(
                {
                    "type": "subscribe_refused",
                    "receive_id": b64u_encode(receive_id),
                    "code": "mailbox_not_found",
                }
            )
            return
        if not services.verify_subscription(mailbox, challenge, receive_id, signature):
            raise SocketError("bad_signature", "The signature does not verify under the owner key.")
        mailbox_id = bytes(mailbox.pk)
        if mailbox_id not in self.subscriptions:
            # Join the doorbell group before reading the queue, so nothing committed in
            # between is missed; a doorbell for something already pushed is ignored.
            group = services.doorbell_group(mailbox_id)
            await self.channel_layer.group_add(group, self.channel_name)
            self.subscriptions[mailbox_id] = receive_id
            self.by_receive_id[receive_id] = mailbox_id
        await self._send_json({"type": "subscribed", "receive_id": b64u_encode(receive_id)})
        self.dirty.add(mailbox_id)
        await self._refill()

    async def _unsubscribe(self, message: dict[str, Any]) -> None:
        receive_id = _decode_id(message.get("receive_id"), ID_BYTES, "receive_id")
        mailbox_id = self.by_receive_id.pop(receive_id, None)
        if mailbox_id is not None:
            self.subscriptions.pop(mailbox_id, None)
            self.dirty.discard(mailbox_id)
            for envelope_id in [e for e, m in self.inflight.items() if m == mailbox_id]:
                del self.inflight[envelope_id]
            await self._leave_group(mailbox_id)
        await self._send_json({"type": "unsubscribed", "receive_id": b64u_encode(receive_id)})

    async def _ack(self, message: dict[str, Any]) -> None:
        ids = message.get("ids")
        if not isinstance(ids, list) or not 1 <= len(ids) <= services.MAX_IDS_PER_ACK:
            raise SocketError("bad_frame", "ids is a list of 1 to 100 envelope ids.")
        envelope_ids = [_decode_id(value, ID_BYTES, "ids[]") for value in ids]
        await in_db(services.acknowledge_envelopes, list(self.subscriptions), envelope_ids)
        for envelope_id in envelope_ids:
            self.inflight.pop(envelope_id, None)
        await self._refill()

    async def _send_envelope(self, data: bytes) -> None:
        if len(data) < SEND_HEADER.size or data[0] != FRAME_SEND:
            raise SocketError("bad_frame", "Unknown binary frame.")
        _, ref, send_id, ttl = SEND_HEADER.unpack_from(data)
        envelope = data[SEND_HEADER.size :]
        try:
            services.check_envelope(envelope)
        except ApiError as error:
            raise SocketError("invalid_envelope", error.message) from None
        try:
            accepted = await in_db(services.enqueue_envelope, send_id, envelope, ttl, ring=False)
        except ApiError as error:
            # Not a protocol error: the mailbox is gone or full, or the ttl is refused.
            await self._send_json(
                {"type": "rejected", "ref": ref, "code": error.code, "message": error.message}
            )
            return
        await services.aring_doorbell(accepted.mailbox_id, accepted.id)
        await self._send_json(
            {
                "type": "accepted",
                "ref": ref,
                "id": b64u_encode(accepted.id),
                "expires_at": accepted.expires_at.isoformat(),
            }
        )

    # --- delivery -------------------------------------------------------------------------

    async def _ring(self, mailbox_id: bytes, envelope_id: bytes) -> None:
        if mailbox_id not in self.subscriptions or envelope_id in self.inflight:
            return
        if mailbox_id in self.dirty or len(self.inflight) >= settings.RELAY_WS_MAX_INFLIGHT:
            # The window is full: the envelope goes out with the refill after an ack.
            self.dirty.add(mailbox_id)
            return
        delivery = await in_db(services.envelope_for_delivery, mailbox_id, envelope_id)
        if delivery is not None and not self.closed:
            await self._push(delivery)

    async def _refill(self) -> None:
        while self.dirty and not self.closed:
            room = settings.RELAY_WS_MAX_INFLIGHT - len(self.inflight)
            if room <= 0:
                return
            deliveries = await in_db(
                services.pending_envelopes, list(self.dirty), list(self.inflight), room
            )
            for delivery in deliveries:
                if delivery.mailbox_id in self.subscriptions:
                    await self._push(delivery)
            if len(deliveries) < room:
                self.dirty.clear()

    async def _push(self, delivery: services.Delivery) -> None:
        self.inflight[delivery.id] = delivery.mailbox_id
        header = PUSH_HEADER.pack(
            FRAME_PUSH,
            delivery.id,
            self.subscriptions[delivery.mailbox_id],
            int(delivery.expires_at.timestamp()),
        )
        await self.send({"type": "websocket.send", "bytes": header + delivery.envelope})

    # --- housekeeping ---------------------------------------------------------------------

    async def _watch(self) -> None:
        """Close sockets that never authenticate or fall silent; resync subscriptions."""
        resync = settings.RELAY_WS_RESYNC_SECONDS
        try:
            while not self.closed:
                now = time.monotonic()
                if self.session_expires_at is None and now >= self.auth_deadline:
                    async with self.lock:
                        await self._close(SocketError("auth_timeout", "No auth frame in time."))
                    return
                idle_deadline = self.last_frame + settings.RELAY_WS_IDLE_TIMEOUT_SECONDS
                if now >= idle_deadline:
                    async with self.lock:
                        await self._close(SocketError("idle_timeout", "No frame in time; ping."))
                    return
                if resync > 0 and now >= self.next_resync:
                    self.next_resync = now + resync
                    async with self.lock:
                        self.dirty.update(self.subscriptions)
                        try:
                            await self._refill()
                        except DatabaseError:
                            logger.warning("relay resync skipped: database unavailable")
                wake = idle_deadline
                if self.session_expires_at is None:
                    wake = min(wake, self.auth_deadline)
                if resync > 0:
                    wake = min(wake, self.next_resync)
                await asyncio.sleep(max(0.05, wake - time.monotonic()))
        except asyncio.CancelledError:
            pass

    async def _leave_group(self, mailbox_id: bytes) -> None:
        try:
            await self.channel_layer.group_discard(
                services.doorbell_group(mailbox_id), self.channel_name
            )
        except Exception:  # the layer may be down; the membership expires anyway
            logger.warning("relay socket could not leave a doorbell group")

    async def _send_json(self, message: dict[str, Any]) -> None:
        await self.send({"type": "websocket.send", "text": json.dumps(message)})

    async def _close(self, error: SocketError) -> None:
        if self.closed:
            return
        self.closed = True
        await self._send_json({"type": "error", "code": error.code, "message": error.message})
        await self.send({"type": "websocket.close", "code": error.close_code, "reason": error.code})
