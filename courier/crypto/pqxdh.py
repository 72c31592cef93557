"""PQXDH key agreement (docs/protocol.md section 6).

Follows Signal's PQXDH specification (https://signal.org/docs/specifications/pqxdh/) with
curve = X25519, hash = SHA-256, pqkem = ML-KEM-768, and two changes forced by our identity being
an Ed25519 key plus a signed X25519 key instead of one XEdDSA key:

- DH1 and DH2 use the X25519 identity key ``IKdh``;
- AD = IKa || IKdh_a || IKb || IKdh_b (128 bytes), raw keys in that order.

The KEM step is a seam (``Encapsulate``): the initiator can be driven from a recorded
(ciphertext, shared secret) pair, because ML-KEM encapsulation randomness cannot be injected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import primitives as p
from .encoding import Random, Reader, system_random, u8, u32be
from .errors import DecryptionError, EncodingError, InvalidKey, InvalidSignature
from .identity import (
    PQ_KIND_LAST_RESORT,
    PQ_KIND_ONE_TIME,
    ClaimedBundle,
    Identity,
    PrekeySecrets,
    PublicIdentity,
)

INFO_PQXDH = b"courier-v1 pqxdh X25519 SHA-256 ML-KEM-768"
F = b"\xff" * 32  # Signal's domain-separation prefix for X25519
SALT = bytes(32)
PREKEY_HEADER_VERSION = 0x01
# version, identity (128), EK (32), SPK id (4), OPK flag (1) and id (4), PQ kind (1) and id (4),
# KEM ciphertext (1088)
PREKEY_HEADER_LEN = 1 + 128 + 32 + 4 + 1 + 4 + 1 + 4 + p.MLKEM_CIPHERTEXT_LEN

# encapsulate(public key) -> (ciphertext, shared secret)
Encapsulate = Callable[[bytes], tuple[bytes, bytes]]


@dataclass(frozen=True)
class PrekeyHeader:
    """What the initiator sends so the responder can run PQXDH (section 6.3)."""

    initiator: PublicIdentity
    ephemeral_key: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None
    pq_prekey_kind: int
    pq_prekey_id: int
    kem_ciphertext: bytes

    def encode(self) -> bytes:
        return b"".join(
            [
                u8(PREKEY_HEADER_VERSION),
                self.initiator.encode(),
                self.ephemeral_key,
                u32be(self.signed_prekey_id),
                u8(0 if self.one_time_prekey_id is None else 1),
                u32be(self.one_time_prekey_id or 0),
                u8(self.pq_prekey_kind),
                u32be(self.pq_prekey_id),
                self.kem_ciphertext,
            ]
        )

    @classmethod
    def read(cls, r: Reader) -> PrekeyHeader:
        if r.u8() != PREKEY_HEADER_VERSION:
            raise EncodingError("unknown prekey header version")
        initiator = PublicIdentity.read(r)
        ek, spk_id = r.take(32), r.u32()
        opk_flag, opk_id = r.u8(), r.u32()
        if opk_flag not in (0, 1) or (opk_flag == 0 and opk_id != 0):
            raise EncodingError("bad one-time prekey flag")
        kind, pq_id = r.u8(), r.u32()
        if kind not in (PQ_KIND_LAST_RESORT, PQ_KIND_ONE_TIME):
            raise EncodingError("bad PQ prekey kind")
        ct = r.take(p.MLKEM_CIPHERTEXT_LEN)
        return cls(initiator, ek, spk_id, opk_id if opk_flag else None, kind, pq_id, ct)

    @classmethod
    def decode(cls, data: bytes) -> PrekeyHeader:
        r = Reader(data)
        header = cls.read(r)
        r.end()
        return header


@dataclass(frozen=True)
class AgreedKeys:
    """PQXDH's output: the ratchet's root key, the two shared header keys, and AD."""

    sk: bytes
    hka: bytes  # initiator's first sending header key
    nhkb: bytes  # responder's first "next" sending header key
    ad: bytes
    their_identity: PublicIdentity
    ikm: bytes  # F || DH1 || DH2 || DH3 [|| DH4] || SS, kept for the test vectors only


def associated_data(initiator: PublicIdentity, responder: PublicIdentity) -> bytes:
    return (
        initiator.identity_key
        + initiator.identity_dh_key
        + responder.identity_key
        + responder.identity_dh_key
    )


def derive(ikm: bytes) -> tuple[bytes, bytes, bytes]:
    """SK || HKa || NHKb = HKDF(salt = 32 zero bytes, ikm, INFO_PQXDH, 96)."""
    out = p.hkdf(SALT, ikm, INFO_PQXDH, 96)
    return out[:32], out[32:64], out[64:]


def default_encapsulate(public: bytes) -> tuple[bytes, bytes]:
    return p.mlkem_encapsulate(public)


def initiate(
    identity: Identity,
    bundle: ClaimedBundle,
    rng: Random = system_random,
    encapsulate: Encapsulate = default_encapsulate,
) -> tuple[AgreedKeys, PrekeyHeader]:
    """The initiator's side. ``bundle`` must come from ``verify_claimed_bundle``."""
    ek = rng(32)
    spk = bundle.signed_prekey.key
    responder = bundle.identity
    dh1 = p.x25519(identity.dh_private, spk)
    dh2 = p.x25519(ek, responder.identity_dh_key)
    dh3 = p.x25519(ek, spk)
    dh4 = b"" if bundle.one_time_prekey is None else p.x25519(ek, bundle.one_time_prekey.key)
    pq = bundle.pq_prekey
    ct, ss = encapsulate(pq.key)
    if len(ct) != p.MLKEM_CIPHERTEXT_LEN or len(ss) != p.MLKEM_SHARED_LEN:
        raise InvalidKey("bad KEM output length")
    ikm = F + dh1 + dh2 + dh3 + dh4 + ss
    sk, hka, nhkb = derive(ikm)
    me = identity.public
    header = PrekeyHeader(
        initiator=me,
        ephemeral_key=p.x25519_public(ek),
        signed_prekey_id=bundle.signed_prekey.id,
        one_time_prekey_id=None if bundle.one_time_prekey is None else bundle.one_time_prekey.id,
        pq_prekey_kind=pq.kind,
        pq_prekey_id=pq.id,
        kem_ciphertext=ct,
    )
    return AgreedKeys(sk, hka, nhkb, associated_data(me, responder), responder, ikm), header


def respond(identity: Identity, secrets: PrekeySecrets, header: PrekeyHeader) -> AgreedKeys:
    """The responder's side. Pure: it does not delete the one-time prekeys; call
    ``consume_prekeys`` once the first message has decrypted, so a forged header costs nothing."""
    try:
        header.initiator.verify()
    except InvalidSignature as exc:
        raise DecryptionError("initiator identity signature does not verify") from exc
    spk_private = secrets.signed.get(header.signed_prekey_id)
    if spk_private is None:
        raise DecryptionError("unknown signed prekey")
    if header.pq_prekey_kind == PQ_KIND_ONE_TIME:
        pq_seed = secrets.pq_one_time.get(header.pq_prekey_id)
    else:
        pq_seed = secrets.pq_last_resort.get(header.pq_prekey_id)
    if pq_seed is None:
        raise DecryptionError("unknown or already used PQ prekey")
    ek = header.ephemeral_key
    try:
        dh1 = p.x25519(spk_private, header.initiator.identity_dh_key)
        dh2 = p.x25519(identity.dh_private, ek)
        dh3 = p.x25519(spk_private, ek)
        dh4 = b""
        if header.one_time_prekey_id is not None:
            opk_private = secrets.one_time.get(header.one_time_prekey_id)
            if opk_private is None:
                raise DecryptionError("unknown or already used one-time prekey")
            dh4 = p.x25519(opk_private, ek)
    except InvalidKey as exc:
        raise DecryptionError("refused initiator key") from exc
    ss = p.mlkem_decapsulate(pq_seed, header.kem_ciphertext)
    ikm = F + dh1 + dh2 + dh3 + dh4 + ss
    sk, hka, nhkb = derive(ikm)
    ad = associated_data(header.initiator, identity.public)
    return AgreedKeys(sk, hka, nhkb, ad, header.initiator, ikm)


def consume_prekeys(secrets: PrekeySecrets, header: PrekeyHeader) -> None:
    """Delete the one-time prekeys a header used: a replay of it can then no longer be answered."""
    if header.one_time_prekey_id is not None:
        secrets.one_time.pop(header.one_time_prekey_id, None)
    if header.pq_prekey_kind == PQ_KIND_ONE_TIME:
        secrets.pq_one_time.pop(header.pq_prekey_id, None)
