"""Plaintext payloads carried inside the ratchet (docs/protocol.md section 11).

Canonical JSON objects with a version ``v`` = 1, a ``type``, a random 16-byte message ``id`` and the
sender's clock ``sent_at`` (seconds). JSON keeps the browser simple; binary fields are base64url.
Decoders ignore unknown fields (so version 1 can grow) but refuse wrong types and unknown types.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .encoding import Random, b64u_decode, b64u_encode, canonical_json, system_random
from .errors import EncodingError

MESSAGE_VERSION = 1
MESSAGE_ID_LEN = 16
MAX_TIMER_SECONDS = 365 * 24 * 3600


@dataclass(frozen=True)
class TextMessage:
    id: bytes
    sent_at: int
    body: str


@dataclass(frozen=True)
class FileMessage:
    """A file descriptor: everything needed to fetch, decrypt and check an uploaded file."""

    id: bytes
    sent_at: int
    blob_id: str
    download_capability: str
    key: bytes  # 32-byte file key
    digest: bytes  # SHA-256 of the whole plaintext file
    size: int
    chunk_size: int
    chunk_count: int
    name: str
    mime_type: str


@dataclass(frozen=True)
class TimerMessage:
    """Sets the conversation's disappearing-message timer; 0 turns it off."""

    id: bytes
    sent_at: int
    seconds: int


@dataclass(frozen=True)
class ReceiptMessage:
    """Delivery receipt for the listed message ids."""

    id: bytes
    sent_at: int
    message_ids: tuple[bytes, ...]


@dataclass(frozen=True)
class ReplyHereMessage:
    """ "Reply here": the send capability of the mailbox the peer should use from now on."""

    id: bytes
    sent_at: int
    mailbox: str


Message = TextMessage | FileMessage | TimerMessage | ReceiptMessage | ReplyHereMessage

_TYPES: dict[type, str] = {
    TextMessage: "text",
    FileMessage: "file",
    TimerMessage: "timer",
    ReceiptMessage: "receipt",
    ReplyHereMessage: "reply_here",
}


def new_message_id(rng: Random = system_random) -> bytes:
    return rng(MESSAGE_ID_LEN)


def encode_message(message: Message) -> bytes:
    obj: dict[str, Any] = {
        "v": MESSAGE_VERSION,
        "type": _TYPES[type(message)],
        "id": b64u_encode(message.id),
        "sent_at": message.sent_at,
    }
    if isinstance(message, TextMessage):
        obj["body"] = message.body
    elif isinstance(message, FileMessage):
        obj.update(
            blob_id=message.blob_id,
            download_capability=message.download_capability,
            key=b64u_encode(message.key),
            digest=b64u_encode(message.digest),
            size=message.size,
            chunk_size=message.chunk_size,
            chunk_count=message.chunk_count,
            name=message.name,
            mime_type=message.mime_type,
        )
    elif isinstance(message, TimerMessage):
        obj["seconds"] = message.seconds
    elif isinstance(message, ReceiptMessage):
        obj["message_ids"] = [b64u_encode(i) for i in message.message_ids]
    else:
        obj["mailbox"] = message.mailbox
    return canonical_json(obj)


def _get(obj: dict[str, Any], key: str, kind: type) -> Any:
    value = obj.get(key)
    # bool is an int in Python, but not in our format.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise EncodingError(f"field {key!r} missing or not a {kind.__name__}")
    if isinstance(value, int) and value < 0:
        raise EncodingError(f"field {key!r} is negative")
    return value


def decode_message(data: bytes) -> Message:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EncodingError("payload is not UTF-8 JSON") from exc
    if not isinstance(obj, dict):
        raise EncodingError("payload is not a JSON object")
    if _get(obj, "v", int) != MESSAGE_VERSION:
        raise EncodingError("unknown payload version")
    kind = _get(obj, "type", str)
    mid = b64u_decode(_get(obj, "id", str), MESSAGE_ID_LEN)
    sent_at = _get(obj, "sent_at", int)
    if kind == "text":
        return TextMessage(mid, sent_at, _get(obj, "body", str))
    if kind == "file":
        return FileMessage(
            mid,
            sent_at,
            blob_id=_get(obj, "blob_id", str),
            download_capability=_get(obj, "download_capability", str),
            key=b64u_decode(_get(obj, "key", str), 32),
            digest=b64u_decode(_get(obj, "digest", str), 32),
            size=_get(obj, "size", int),
            chunk_size=_get(obj, "chunk_size", int),
            chunk_count=_get(obj, "chunk_count", int),
            name=_get(obj, "name", str),
            mime_type=_get(obj, "mime_type", str),
        )
    if kind == "timer":
        seconds = _get(obj, "seconds", int)
        if seconds > MAX_TIMER_SECONDS:
            raise EncodingError("timer too long")
        return TimerMessage(mid, sent_at, seconds)
    if kind == "receipt":
        ids = _get(obj, "message_ids", list)
        if not all(isinstance(i, str) for i in ids):
            raise EncodingError("message_ids must be strings")
        return ReceiptMessage(mid, sent_at, tuple(b64u_decode(i, MESSAGE_ID_LEN) for i in ids))
    if kind == "reply_here":
        return ReplyHereMessage(mid, sent_at, _get(obj, "mailbox", str))
    raise EncodingError(f"unknown payload type {kind!r}")
