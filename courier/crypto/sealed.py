"""The sealed first message to an intro mailbox (docs/protocol.md section 10).

The intro mailbox is named in the contact link; so is the intro key ``INK``, a dedicated X25519 key
of the recipient. We seal to it rather than to the identity X25519 key so that (a) the identity key
is used for PQXDH only, (b) a contact link can be revoked by discarding its intro key, and (c) the
intro key, which the server never sees, can also hide the ephemeral key (see ``_mask``).

Layout of the envelope: 0x01 || nonce (16) || masked ephemeral key (32) || AES-256-GCM(padded INTRO)
INTRO = 0x01 || PQXDH prekey header (1263) || first ratchet message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import primitives as p
from .encoding import Random, Reader, system_random
from .envelope import DEFAULT_BUCKETS, ENVELOPE_VERSION, check_envelope, choose_bucket, pad, unpad
from .errors import DecryptionError, EncodingError, InvalidKey
from .pqxdh import PrekeyHeader
from .ratchet import MESSAGE_OVERHEAD, Session

INFO_SEALED = b"courier-v1 sealed"
INFO_SEALED_MASK = b"courier-v1 sealed mask"
INTRO_VERSION = 0x01
SEAL_NONCE_LEN = 16
SEAL_OVERHEAD = 1 + SEAL_NONCE_LEN + 32 + p.GCM_TAG_LEN  # 65 bytes around the padded INTRO


def _mask(nonce: bytes, intro_key: bytes) -> bytes:
    """A per-envelope pad for the ephemeral public key.

    An X25519 public key is not uniformly random (its top bit is 0 and it lies on the curve), so
    sent in the clear it would mark the envelope. XORing it with a pad derived from the intro key,
    which only holders of the contact link know, makes it look random to the server.
    """
    return p.hkdf(nonce, intro_key, INFO_SEALED_MASK, 32)


def _seal_keys(dh: bytes, ephemeral_key: bytes, intro_key: bytes) -> tuple[bytes, bytes]:
    out = p.hkdf(ephemeral_key + intro_key, dh, INFO_SEALED, 44)
    return out[:32], out[32:]


@dataclass(frozen=True)
class SealTrace:
    nonce: bytes
    ephemeral_private: bytes
    ephemeral_key: bytes
    mask: bytes
    shared_secret: bytes
    key: bytes
    aead_nonce: bytes
    intro: bytes
    padded: bytes


def seal(
    intro_key: bytes,
    intro: bytes,
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    rng: Random = system_random,
) -> tuple[bytes, SealTrace]:
    """Seal an INTRO to the recipient's intro key; return (envelope, intermediate values)."""
    bucket = choose_bucket(SEAL_OVERHEAD + 4 + len(intro), buckets)
    nonce = rng(SEAL_NONCE_LEN)
    ephemeral_private = rng(32)
    ephemeral_key = p.x25519_public(ephemeral_private)
    dh = p.x25519(ephemeral_private, intro_key)
    key, aead_nonce = _seal_keys(dh, ephemeral_key, intro_key)
    mask = _mask(nonce, intro_key)
    masked = bytes(a ^ b for a, b in zip(ephemeral_key, mask, strict=True))
    padded = pad(intro, bucket - SEAL_OVERHEAD)
    ct = p.aead_encrypt(key, aead_nonce, padded, b"")
    envelope = bytes([ENVELOPE_VERSION]) + nonce + masked + ct
    trace = SealTrace(
        nonce, ephemeral_private, ephemeral_key, mask, dh, key, aead_nonce, intro, padded
    )
    return envelope, trace


def unseal(
    intro_private: bytes, envelope: bytes, buckets: Sequence[int] = DEFAULT_BUCKETS
) -> bytes:
    """Open a sealed envelope with the intro private key; return the INTRO bytes."""
    body = check_envelope(envelope, buckets)
    nonce, masked, ct = body[:SEAL_NONCE_LEN], body[SEAL_NONCE_LEN : SEAL_NONCE_LEN + 32], body[48:]
    intro_key = p.x25519_public(intro_private)
    mask = _mask(nonce, intro_key)
    ephemeral_key = bytes(a ^ b for a, b in zip(masked, mask, strict=True))
    try:
        dh = p.x25519(intro_private, ephemeral_key)
    except InvalidKey as exc:
        raise DecryptionError("refused ephemeral key") from exc
    key, aead_nonce = _seal_keys(dh, ephemeral_key, intro_key)
    padded = p.aead_decrypt(key, aead_nonce, ct, b"")
    try:
        return unpad(padded)
    except EncodingError as exc:
        raise DecryptionError("bad padding") from exc


def encode_intro(prekey_header: bytes, ratchet_message: bytes) -> bytes:
    return bytes([INTRO_VERSION]) + prekey_header + ratchet_message


def decode_intro(intro: bytes) -> tuple[PrekeyHeader, bytes]:
    """Split an INTRO into the PQXDH header and the ratchet message that follows it."""
    r = Reader(intro)
    try:
        if r.u8() != INTRO_VERSION:
            raise EncodingError("unknown intro version")
        header = PrekeyHeader.read(r)
    except EncodingError as exc:
        raise DecryptionError("malformed intro") from exc
    return header, r.rest()


def seal_intro_message(
    session: Session,
    intro_key: bytes,
    payload: bytes,
    buckets: Sequence[int] = DEFAULT_BUCKETS,
    rng: Random = system_random,
) -> bytes:
    """Initiator, before the first reply: ratchet-encrypt ``payload`` and seal it with the PQXDH
    header to the intro mailbox. The inner ratchet message is not padded: the sealed layer is."""
    header = session.state.pending_prekey_header
    if header is None:
        raise EncodingError("the peer has answered: send to its pairwise mailbox instead")
    # Check the size before encrypting, so a payload that cannot be sent does not advance the chain.
    choose_bucket(SEAL_OVERHEAD + 4 + 1 + len(header) + MESSAGE_OVERHEAD + len(payload), buckets)
    envelope, _ = seal(intro_key, encode_intro(header, session.encrypt(payload)), buckets, rng)
    return envelope
