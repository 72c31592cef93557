"""Byte encodings shared by every construction: base64url, integers, canonical JSON, randomness."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import struct
from collections.abc import Callable
from typing import Any

from .errors import EncodingError

# Every random byte in the protocol comes from a callable like this. Injecting a deterministic one
# is what makes tests/vectors/protocol.json reproducible.
Random = Callable[[int], bytes]


def system_random(n: int) -> bytes:
    """The default random source: the operating system's CSPRNG."""
    return os.urandom(n)


_B64U_RE = re.compile(r"^[A-Za-z0-9_-]*$")


def b64u_encode(data: bytes) -> str:
    """base64url without padding (RFC 4648 section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, length: int | None = None) -> bytes:
    """Strict base64url decoding: no padding, no foreign characters, canonical trailing bits.

    Python's decoder is lenient (it skips junk and ignores trailing bits), so two different strings
    could name the same bytes; we refuse anything that does not re-encode to itself.
    """
    if not isinstance(text, str) or not _B64U_RE.match(text) or len(text) % 4 == 1:
        raise EncodingError("malformed base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise EncodingError("malformed base64url") from exc
    if b64u_encode(data) != text:
        raise EncodingError("non-canonical base64url")
    if length is not None and len(data) != length:
        raise EncodingError(f"expected {length} bytes, got {len(data)}")
    return data


def u8(x: int) -> bytes:
    return struct.pack(">B", x)


def u16be(x: int) -> bytes:
    return struct.pack(">H", x)


def u32be(x: int) -> bytes:
    return struct.pack(">I", x)


def u64be(x: int) -> bytes:
    return struct.pack(">Q", x)


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the byte form both clients emit."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Reader:
    """A cursor over bytes that raises EncodingError instead of reading past the end."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise EncodingError("truncated")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(struct.unpack(">H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def rest(self) -> bytes:
        return self.take(len(self.data) - self.pos)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise EncodingError("trailing bytes")
