"""Safety numbers (docs/protocol.md section 14).

Modelled on Signal's numeric fingerprints (libsignal ``fingerprint``): per party, 5200 iterations of
SHA-512 over the Ed25519 identity key; 30 digits from each; the two halves ordered so that both
parties see the same 60 digits. The QR payload carries the two 32-byte hashes in the same order.
"""

from __future__ import annotations

from . import primitives as p
from .encoding import u16be

SAFETY_VERSION = 0
QR_VERSION = 0x01
ITERATIONS = 5200
STABLE_ID = b"courier-v1 safety-number"


def party_hash(identity_key: bytes) -> bytes:
    """h1 = SHA-512(u16be(0) || key || STABLE_ID); h(i+1) = SHA-512(h(i) || key); return h5200."""
    h = p.sha512(u16be(SAFETY_VERSION) + identity_key + STABLE_ID)
    for _ in range(ITERATIONS - 1):
        h = p.sha512(h + identity_key)
    return h


def _digits(h: bytes) -> str:
    """30 digits: six 5-byte big-endian chunks, each mod 100000, zero-padded to 5 digits."""
    return "".join(f"{int.from_bytes(h[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5))


def _ordered(key_a: bytes, key_b: bytes) -> tuple[bytes, bytes]:
    ha, hb = party_hash(key_a), party_hash(key_b)
    return (ha, hb) if ha[:32] <= hb[:32] else (hb, ha)


def safety_number(key_a: bytes, key_b: bytes) -> str:
    """60 digits; the same whichever party computes it."""
    first, second = _ordered(key_a, key_b)
    return _digits(first) + _digits(second)


def safety_number_groups(key_a: bytes, key_b: bytes) -> list[str]:
    """The 60 digits as 12 groups of 5, for display."""
    digits = safety_number(key_a, key_b)
    return [digits[i : i + 5] for i in range(0, 60, 5)]


def qr_payload(key_a: bytes, key_b: bytes) -> bytes:
    """0x01 || first hash[:32] || second hash[:32] (65 bytes), in the same order as the digits."""
    first, second = _ordered(key_a, key_b)
    return bytes([QR_VERSION]) + first[:32] + second[:32]
