"""The relay's wire format as a client writes it (docs/api/relay.md), for tests and bench.

Kept apart from the server code on purpose: tests that build frames with the server's own
helpers would not notice when the server drifts from the documented format.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SEND_HEADER = struct.Struct(">BI16sI")  # 0x02, ref, send id, ttl seconds
PUSH_HEADER = struct.Struct(">B16s16sQ")  # 0x01, envelope id, receive id, expiry
SUBSCRIBE_CONTEXT = b"courier-v1 relay-subscribe\x00"
REQUEST_CONTEXT = b"courier-v1 request\x00"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def make_envelope(size: int = 1024, marker: bytes = b"") -> bytes:
    """A bucket-sized envelope: version byte, an optional marker, random filler."""
    return b"\x01" + marker + os.urandom(size - 1 - len(marker))


@dataclass
class Owner:
    """A mailbox owner key and what it signs."""

    key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> Owner:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public(self) -> bytes:
        return self.key.public_key().public_bytes_raw()

    def sign_subscription(self, challenge: bytes, receive_id: bytes) -> bytes:
        return self.key.sign(SUBSCRIBE_CONTEXT + challenge + receive_id)

    def sign_request(self, challenge: bytes, method: str, path: str, body: bytes) -> bytes:
        message = b"".join(
            [
                REQUEST_CONTEXT,
                challenge,
                method.upper().encode(),
                b"\x00",
                path.encode(),
                b"\x00",
                hashlib.sha256(body).digest(),
            ]
        )
        return self.key.sign(message)

    def request_headers(self, challenge: bytes, method: str, path: str, body: bytes) -> dict:
        return {
            "X-Courier-Challenge": b64u(challenge),
            "X-Courier-Signature": b64u(self.sign_request(challenge, method, path, body)),
        }


def send_frame(ref: int, send_id: bytes, envelope: bytes, ttl: int = 3600) -> bytes:
    return SEND_HEADER.pack(0x02, ref, send_id, ttl) + envelope


@dataclass(frozen=True)
class Push:
    id: bytes
    receive_id: bytes
    expires_at: datetime
    envelope: bytes


def parse_push(frame: bytes) -> Push:
    kind, envelope_id, receive_id, expires = PUSH_HEADER.unpack_from(frame)
    assert kind == 0x01, f"not a push frame: {kind}"
    return Push(
        envelope_id,
        receive_id,
        datetime.fromtimestamp(expires, tz=UTC),
        frame[PUSH_HEADER.size :],
    )


def auth_frame(token: str) -> str:
    return json.dumps({"type": "auth", "token": token})


def subscribe_frame(owner: Owner, challenge: bytes, receive_id: bytes) -> str:
    return json.dumps(
        {
            "type": "subscribe",
            "receive_id": b64u(receive_id),
            "challenge": b64u(challenge),
            "signature": b64u(owner.sign_subscription(challenge, receive_id)),
        }
    )


def ack_frame(ids: list[bytes]) -> str:
    return json.dumps({"type": "ack", "ids": [b64u(i) for i in ids]})
