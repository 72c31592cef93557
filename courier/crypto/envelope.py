"""Padding and envelopes (docs/protocol.md section 9).

An envelope is one version byte followed by bytes indistinguishable from random, and its total
length is exactly one of the bucket sizes the server publishes. The padding sits inside the
encryption, so the server learns only the bucket, never the length of what is inside.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import ratchet
from .encoding import u32be
from .errors import DecryptionError, EncodingError
from .ratchet import Session

ENVELOPE_VERSION = 0x01
DEFAULT_BUCKETS: tuple[int, ...] = (1024, 4096, 16384, 65536)
PAD_LENGTH_PREFIX = 4


def pad(payload: bytes, size: int) -> bytes:
    """u32be(len(payload)) || payload || zero bytes, exactly ``size`` bytes long."""
    if len(payload) + PAD_LENGTH_PREFIX > size:
        raise EncodingError("payload does not fit")
    return u32be(len(payload)) + payload + bytes(size - PAD_LENGTH_PREFIX - len(payload))


def unpad(padded: bytes) -> bytes:
    """Inverse of ``pad``; refuses a length that overruns and padding that is not zero."""
    if len(padded) < PAD_LENGTH_PREFIX:
        raise EncodingError("padded data too short")
    n = int.from_bytes(padded[:PAD_LENGTH_PREFIX], "big")
    if n > len(padded) - PAD_LENGTH_PREFIX:
        raise EncodingError("bad padding length")
    if any(padded[PAD_LENGTH_PREFIX + n :]):
        raise EncodingError("non-zero padding")
    return padded[PAD_LENGTH_PREFIX : PAD_LENGTH_PREFIX + n]


def choose_bucket(needed: int, buckets: Sequence[int] = DEFAULT_BUCKETS) -> int:
    """The smallest bucket that holds ``needed`` bytes."""
    for size in sorted(buckets):
        if size >= needed:
            return size
    raise EncodingError("payload too large for the largest bucket")


def message_capacity(bucket: int) -> int:
    """Payload bytes a ratchet envelope of this bucket size can carry."""
    return bucket - 1 - ratchet.MESSAGE_OVERHEAD - PAD_LENGTH_PREFIX


def seal_message(
    session: Session, payload: bytes, buckets: Sequence[int] = DEFAULT_BUCKETS
) -> bytes:
    """Encrypt a payload for a pairwise mailbox: 0x01 || ratchet message, padded to a bucket."""
    overhead = 1 + ratchet.MESSAGE_OVERHEAD
    bucket = choose_bucket(overhead + PAD_LENGTH_PREFIX + len(payload), buckets)
    return bytes([ENVELOPE_VERSION]) + session.encrypt(pad(payload, bucket - overhead))


def check_envelope(envelope: bytes, buckets: Sequence[int] = DEFAULT_BUCKETS) -> bytes:
    """Return the body after the version byte, or raise if the framing is wrong."""
    if len(envelope) not in buckets:
        raise DecryptionError("envelope is not of a bucket size")
    if envelope[0] != ENVELOPE_VERSION:
        raise DecryptionError("unknown envelope version")
    return envelope[1:]


def open_message(
    session: Session, envelope: bytes, buckets: Sequence[int] = DEFAULT_BUCKETS
) -> bytes:
    """Decrypt and unpad; all-or-nothing like ``Session.decrypt`` (padding is checked first)."""
    body = check_envelope(envelope, buckets)
    new_state, padded = ratchet.decrypt(session.state, body, session.rng)
    try:
        payload = unpad(padded)
    except EncodingError as exc:
        raise DecryptionError("bad padding") from exc
    session.state = new_state
    return payload
