"""Identity keys, prekeys, and the prekey bundle (docs/protocol.md sections 2 and 3).

The server verifies published bundles with exactly the rules in ``verify_bundle``; a client runs
``verify_claimed_bundle`` on what a claim returns before starting PQXDH with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import primitives as p
from .encoding import Random, Reader, b64u_decode, b64u_encode, system_random, u8, u32be
from .errors import EncodingError, InvalidBundle, InvalidKey, InvalidSignature

CTX_IDENTITY_DH = b"courier-v1 identity-dh\x00"
CTX_SIGNED_PREKEY = b"courier-v1 signed-prekey\x00"
CTX_PQ_PREKEY = b"courier-v1 pq-prekey\x00"
CTX_FINGERPRINT = b"courier-v1 fingerprint\x00"
PQ_KIND_LAST_RESORT = 0x01
PQ_KIND_ONE_TIME = 0x02
U32_MAX = 2**32 - 1


def identity_dh_message(identity_dh_key: bytes) -> bytes:
    return CTX_IDENTITY_DH + identity_dh_key


def signed_prekey_message(prekey_id: int, key: bytes) -> bytes:
    return CTX_SIGNED_PREKEY + u32be(prekey_id) + key


def pq_prekey_message(kind: int, prekey_id: int, key: bytes) -> bytes:
    return CTX_PQ_PREKEY + u8(kind) + u32be(prekey_id) + key


def fingerprint(identity_key: bytes) -> bytes:
    """The 32-byte identity fingerprint carried in contact links."""
    return p.sha256(CTX_FINGERPRINT + identity_key)


@dataclass(frozen=True)
class PublicIdentity:
    """The public half of an identity: what a peer learns and pins."""

    identity_key: bytes  # Ed25519 public
    identity_dh_key: bytes  # X25519 public
    identity_dh_signature: bytes

    ENCODED_LEN = 128

    def verify(self) -> None:
        """Check that the X25519 identity key is the one the signing key vouches for."""
        p.ed25519_verify(
            self.identity_key, self.identity_dh_signature, identity_dh_message(self.identity_dh_key)
        )

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.identity_key)

    def encode(self) -> bytes:
        """identity_key || identity_dh_key || identity_dh_signature (128 bytes)."""
        return self.identity_key + self.identity_dh_key + self.identity_dh_signature

    @classmethod
    def decode(cls, data: bytes) -> PublicIdentity:
        if len(data) != cls.ENCODED_LEN:
            raise EncodingError("public identity must be 128 bytes")
        return cls(data[:32], data[32:64], data[64:128])

    @classmethod
    def read(cls, reader: Reader) -> PublicIdentity:
        return cls.decode(reader.take(cls.ENCODED_LEN))


@dataclass(frozen=True)
class Identity:
    """An identity key pair: an Ed25519 signing seed and an X25519 scalar."""

    signing_seed: bytes
    dh_private: bytes

    @classmethod
    def generate(cls, rng: Random = system_random) -> Identity:
        return cls(signing_seed=rng(32), dh_private=rng(32))

    @property
    def public(self) -> PublicIdentity:
        dh_public = p.x25519_public(self.dh_private)
        return PublicIdentity(
            identity_key=p.ed25519_public(self.signing_seed),
            identity_dh_key=dh_public,
            identity_dh_signature=p.ed25519_sign(self.signing_seed, identity_dh_message(dh_public)),
        )

    def sign(self, message: bytes) -> bytes:
        return p.ed25519_sign(self.signing_seed, message)

    def encode(self) -> bytes:
        return self.signing_seed + self.dh_private

    @classmethod
    def decode(cls, data: bytes) -> Identity:
        if len(data) != 64:
            raise EncodingError("identity private key must be 64 bytes")
        return cls(data[:32], data[32:])


@dataclass(frozen=True)
class SignedPrekey:
    id: int
    key: bytes
    signature: bytes

    def verify(self, identity_key: bytes) -> None:
        p.ed25519_verify(identity_key, self.signature, signed_prekey_message(self.id, self.key))


@dataclass(frozen=True)
class OneTimePrekey:
    id: int
    key: bytes


@dataclass(frozen=True)
class PQPrekey:
    id: int
    key: bytes
    signature: bytes
    kind: int  # PQ_KIND_LAST_RESORT or PQ_KIND_ONE_TIME

    def verify(self, identity_key: bytes) -> None:
        p.ed25519_verify(
            identity_key, self.signature, pq_prekey_message(self.kind, self.id, self.key)
        )


@dataclass(frozen=True)
class Bundle:
    """A published bundle (``PUT``)."""

    identity: PublicIdentity
    signed_prekey: SignedPrekey
    pq_last_resort_prekey: PQPrekey
    one_time_prekeys: tuple[OneTimePrekey, ...] = ()
    pq_one_time_prekeys: tuple[PQPrekey, ...] = ()

    def claim(self, index: int = 0) -> ClaimedBundle:
        """What a claim would return, handing out the index-th one-time prekeys (for tests)."""
        return ClaimedBundle(
            identity=self.identity,
            signed_prekey=self.signed_prekey,
            pq_last_resort_prekey=self.pq_last_resort_prekey,
            one_time_prekey=(
                self.one_time_prekeys[index] if index < len(self.one_time_prekeys) else None
            ),
            pq_one_time_prekey=(
                self.pq_one_time_prekeys[index] if index < len(self.pq_one_time_prekeys) else None
            ),
        )


@dataclass(frozen=True)
class ClaimedBundle:
    """What a claim (``GET``) returns: at most one one-time prekey of each kind."""

    identity: PublicIdentity
    signed_prekey: SignedPrekey
    pq_last_resort_prekey: PQPrekey
    one_time_prekey: OneTimePrekey | None
    pq_one_time_prekey: PQPrekey | None

    @property
    def pq_prekey(self) -> PQPrekey:
        """The PQ prekey PQXDH uses: the one-time one if any, else the last-resort one."""
        return self.pq_one_time_prekey or self.pq_last_resort_prekey


@dataclass
class PrekeySecrets:
    """The private halves of the prekeys a client has published, by id.

    One-time entries are deleted once used (``consume_*``), which is what makes them one-time.
    """

    signed: dict[int, bytes] = field(default_factory=dict)
    one_time: dict[int, bytes] = field(default_factory=dict)
    pq_last_resort: dict[int, bytes] = field(default_factory=dict)
    pq_one_time: dict[int, bytes] = field(default_factory=dict)


def make_signed_prekey(identity: Identity, prekey_id: int, private: bytes) -> SignedPrekey:
    key = p.x25519_public(private)
    return SignedPrekey(prekey_id, key, identity.sign(signed_prekey_message(prekey_id, key)))


def make_pq_prekey(identity: Identity, prekey_id: int, seed: bytes, kind: int) -> PQPrekey:
    key = p.mlkem_public(seed)
    return PQPrekey(prekey_id, key, identity.sign(pq_prekey_message(kind, prekey_id, key)), kind)


def generate_bundle(
    identity: Identity,
    rng: Random = system_random,
    *,
    signed_prekey_id: int = 1,
    pq_last_resort_id: int = 1,
    one_time_ids: tuple[int, ...] = (),
    pq_one_time_ids: tuple[int, ...] = (),
) -> tuple[Bundle, PrekeySecrets]:
    """Create a bundle and the secrets that go with it.

    Randomness is drawn in a fixed order (signed prekey, last-resort PQ prekey, one-time X25519
    prekeys, one-time PQ prekeys) so that a deterministic ``rng`` gives a reproducible bundle.
    """
    secrets = PrekeySecrets()
    spk_private = rng(32)
    secrets.signed[signed_prekey_id] = spk_private
    spk = make_signed_prekey(identity, signed_prekey_id, spk_private)
    lr_seed = rng(64)
    secrets.pq_last_resort[pq_last_resort_id] = lr_seed
    last_resort = make_pq_prekey(identity, pq_last_resort_id, lr_seed, PQ_KIND_LAST_RESORT)
    opks = []
    for prekey_id in one_time_ids:
        private = rng(32)
        secrets.one_time[prekey_id] = private
        opks.append(OneTimePrekey(prekey_id, p.x25519_public(private)))
    pqopks = []
    for prekey_id in pq_one_time_ids:
        seed = rng(64)
        secrets.pq_one_time[prekey_id] = seed
        pqopks.append(make_pq_prekey(identity, prekey_id, seed, PQ_KIND_ONE_TIME))
    bundle = Bundle(identity.public, spk, last_resort, tuple(opks), tuple(pqopks))
    _check_unique_ids(bundle.one_time_prekeys, (bundle.pq_last_resort_prekey, *pqopks))
    return bundle, secrets


# --- JSON -------------------------------------------------------------------------------------


def _signed_json(prekey: SignedPrekey | PQPrekey) -> dict[str, Any]:
    return {
        "id": prekey.id,
        "key": b64u_encode(prekey.key),
        "signature": b64u_encode(prekey.signature),
    }


def _one_time_json(prekey: OneTimePrekey) -> dict[str, Any]:
    return {"id": prekey.id, "key": b64u_encode(prekey.key)}


def bundle_to_json(bundle: Bundle | ClaimedBundle) -> dict[str, Any]:
    """The JSON object of section 3.1 (published) or 3.2 (claimed)."""
    out: dict[str, Any] = {
        "identity_key": b64u_encode(bundle.identity.identity_key),
        "identity_dh_key": b64u_encode(bundle.identity.identity_dh_key),
        "identity_dh_signature": b64u_encode(bundle.identity.identity_dh_signature),
        "signed_prekey": _signed_json(bundle.signed_prekey),
        "pq_last_resort_prekey": _signed_json(bundle.pq_last_resort_prekey),
    }
    if isinstance(bundle, Bundle):
        out["one_time_prekeys"] = [_one_time_json(k) for k in bundle.one_time_prekeys]
        out["pq_one_time_prekeys"] = [_signed_json(k) for k in bundle.pq_one_time_prekeys]
    else:
        out["one_time_prekey"] = (
            _one_time_json(bundle.one_time_prekey) if bundle.one_time_prekey else None
        )
        out["pq_one_time_prekey"] = (
            _signed_json(bundle.pq_one_time_prekey) if bundle.pq_one_time_prekey else None
        )
    return out


_IDENTITY_FIELDS = {"identity_key", "identity_dh_key", "identity_dh_signature"}
_PUBLISHED_FIELDS = _IDENTITY_FIELDS | {
    "signed_prekey",
    "pq_last_resort_prekey",
    "one_time_prekeys",
    "pq_one_time_prekeys",
}
_CLAIMED_FIELDS = _IDENTITY_FIELDS | {
    "signed_prekey",
    "pq_last_resort_prekey",
    "one_time_prekey",
    "pq_one_time_prekey",
}


def _object(value: Any, fields: set[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != fields:
        raise InvalidBundle(f"{what}: expected exactly the fields {sorted(fields)}")
    return value


def _prekey_id(value: Any) -> int:
    # bool is a subclass of int in Python; JSON true/false are not ids.
    if type(value) is not int or not 0 <= value <= U32_MAX:
        raise InvalidBundle("prekey id must be an integer in 0..2^32-1")
    return value


def _bytes(value: Any, length: int, what: str) -> bytes:
    try:
        return b64u_decode(value, length)
    except EncodingError as exc:
        raise InvalidBundle(f"{what}: {exc}") from exc


def _parse_identity(obj: dict[str, Any]) -> PublicIdentity:
    identity = PublicIdentity(
        _bytes(obj["identity_key"], 32, "identity_key"),
        _bytes(obj["identity_dh_key"], 32, "identity_dh_key"),
        _bytes(obj["identity_dh_signature"], 64, "identity_dh_signature"),
    )
    try:
        identity.verify()
    except InvalidSignature as exc:
        raise InvalidBundle("identity_dh_signature does not verify") from exc
    return identity


def _parse_signed_prekey(value: Any, identity_key: bytes) -> SignedPrekey:
    obj = _object(value, {"id", "key", "signature"}, "signed_prekey")
    prekey = SignedPrekey(
        _prekey_id(obj["id"]),
        _bytes(obj["key"], 32, "signed_prekey.key"),
        _bytes(obj["signature"], 64, "signed_prekey.signature"),
    )
    try:
        prekey.verify(identity_key)
    except InvalidSignature as exc:
        raise InvalidBundle("signed_prekey signature does not verify") from exc
    return prekey


def _parse_pq_prekey(value: Any, identity_key: bytes, kind: int) -> PQPrekey:
    obj = _object(value, {"id", "key", "signature"}, "pq prekey")
    prekey = PQPrekey(
        _prekey_id(obj["id"]),
        _bytes(obj["key"], p.MLKEM_PUBLIC_LEN, "pq prekey key"),
        _bytes(obj["signature"], 64, "pq prekey signature"),
        kind,
    )
    try:
        prekey.verify(identity_key)
    except InvalidSignature as exc:
        raise InvalidBundle("pq prekey signature does not verify") from exc
    try:
        p.mlkem_check_public(prekey.key)
    except InvalidKey as exc:
        raise InvalidBundle("pq prekey is not a valid ML-KEM-768 key") from exc
    return prekey


def _parse_one_time_prekey(value: Any) -> OneTimePrekey:
    obj = _object(value, {"id", "key"}, "one_time_prekey")
    return OneTimePrekey(_prekey_id(obj["id"]), _bytes(obj["key"], 32, "one_time_prekey.key"))


def _check_unique_ids(
    one_time: tuple[OneTimePrekey, ...] | list[OneTimePrekey],
    pq: tuple[PQPrekey, ...] | list[PQPrekey],
) -> None:
    if len({k.id for k in one_time}) != len(one_time):
        raise InvalidBundle("duplicate one-time prekey id")
    if len({k.id for k in pq}) != len(pq):
        raise InvalidBundle("duplicate PQ prekey id")


def verify_bundle(obj: Any) -> Bundle:
    """Parse and fully verify a published bundle (section 3.1); raise InvalidBundle otherwise."""
    obj = _object(obj, _PUBLISHED_FIELDS, "bundle")
    identity = _parse_identity(obj)
    spk = _parse_signed_prekey(obj["signed_prekey"], identity.identity_key)
    lr = _parse_pq_prekey(obj["pq_last_resort_prekey"], identity.identity_key, PQ_KIND_LAST_RESORT)
    if not isinstance(obj["one_time_prekeys"], list) or not isinstance(
        obj["pq_one_time_prekeys"], list
    ):
        raise InvalidBundle("one-time prekeys must be lists")
    opks = [_parse_one_time_prekey(v) for v in obj["one_time_prekeys"]]
    pqopks = [
        _parse_pq_prekey(v, identity.identity_key, PQ_KIND_ONE_TIME)
        for v in obj["pq_one_time_prekeys"]
    ]
    _check_unique_ids(opks, [lr, *pqopks])
    return Bundle(identity, spk, lr, tuple(opks), tuple(pqopks))


def verify_claimed_bundle(obj: Any, expected_fingerprint: bytes | None = None) -> ClaimedBundle:
    """Parse and verify a claimed bundle (section 3.2), optionally pinning the fingerprint."""
    obj = _object(obj, _CLAIMED_FIELDS, "claimed bundle")
    identity = _parse_identity(obj)
    if expected_fingerprint is not None and not p.constant_time_equal(
        identity.fingerprint, expected_fingerprint
    ):
        raise InvalidBundle("identity does not match the contact's fingerprint")
    spk = _parse_signed_prekey(obj["signed_prekey"], identity.identity_key)
    lr = _parse_pq_prekey(obj["pq_last_resort_prekey"], identity.identity_key, PQ_KIND_LAST_RESORT)
    opk = None if obj["one_time_prekey"] is None else _parse_one_time_prekey(obj["one_time_prekey"])
    pqopk = (
        None
        if obj["pq_one_time_prekey"] is None
        else _parse_pq_prekey(obj["pq_one_time_prekey"], identity.identity_key, PQ_KIND_ONE_TIME)
    )
    if pqopk is not None and pqopk.id == lr.id:
        raise InvalidBundle("duplicate PQ prekey id")
    return ClaimedBundle(identity, spk, lr, opk, pqopk)


__all__ = [
    "Bundle",
    "ClaimedBundle",
    "Identity",
    "InvalidKey",
    "OneTimePrekey",
    "PQPrekey",
    "PrekeySecrets",
    "PublicIdentity",
    "SignedPrekey",
    "bundle_to_json",
    "fingerprint",
    "generate_bundle",
    "verify_bundle",
    "verify_claimed_bundle",
]
