"""base64url without padding: the encoding of every binary field in the API."""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = re.compile(r"^[A-Za-z0-9_-]*$")


def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, *, length: int | None = None) -> bytes:
    """Decode strictly: no padding, no other alphabet, optionally an exact length."""
    if not isinstance(text, str) or not _ALPHABET.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url without padding") from None
    if b64u_encode(data) != text:
        raise ValueError("not canonical base64url")
    if length is not None and len(data) != length:
        raise ValueError(f"must decode to {length} bytes")
    return data
