"""Checked wrappers around the ``cryptography`` primitives that WebCrypto also offers.

Nothing here implements a primitive; the wrappers only fix parameters (sizes, hash, tag length),
turn library exceptions into ours, and add the one check X25519 needs: refusing an all-zero output.
"""

from __future__ import annotations

import hmac as _hmac

from cryptography.exceptions import InvalidSignature as _LibInvalidSignature
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as _crypto_hmac
from cryptography.hazmat.primitives.asymmetric import mlkem
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import DecryptionError, EncodingError, InvalidKey, InvalidSignature

X25519_LEN = 32
ED25519_SEED_LEN = 32
ED25519_SIG_LEN = 64
MLKEM_SEED_LEN = 64
MLKEM_PUBLIC_LEN = 1184
MLKEM_CIPHERTEXT_LEN = 1088
MLKEM_SHARED_LEN = 32
AES_KEY_LEN = 32
GCM_NONCE_LEN = 12
GCM_TAG_LEN = 16

_ZERO32 = bytes(32)


# --- X25519 -----------------------------------------------------------------------------------


def x25519_public(private: bytes) -> bytes:
    """The public key of a 32-byte X25519 scalar."""
    if len(private) != X25519_LEN:
        raise InvalidKey("X25519 private key must be 32 bytes")
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def x25519(private: bytes, public: bytes) -> bytes:
    """X25519(private, public), refusing an all-zero result.

    A zero output means the peer sent a low-order point: a contributory key exchange would silently
    become a constant, so we refuse it (RFC 7748 section 6.1). OpenSSL already raises for it; the
    explicit comparison keeps the rule visible and independent of the backend.
    """
    if len(private) != X25519_LEN or len(public) != X25519_LEN:
        raise InvalidKey("X25519 keys must be 32 bytes")
    try:
        shared = X25519PrivateKey.from_private_bytes(private).exchange(
            X25519PublicKey.from_public_bytes(public)
        )
    except ValueError as exc:
        raise InvalidKey("X25519 exchange refused: low-order public key") from exc
    if _hmac.compare_digest(shared, _ZERO32):
        raise InvalidKey("X25519 exchange refused: all-zero shared secret")
    return shared


# --- Ed25519 ----------------------------------------------------------------------------------


def ed25519_public(seed: bytes) -> bytes:
    if len(seed) != ED25519_SEED_LEN:
        raise InvalidKey("Ed25519 seed must be 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def ed25519_sign(seed: bytes, message: bytes) -> bytes:
    """Pure Ed25519 (RFC 8032); deterministic, so the vectors can record signatures."""
    if len(seed) != ED25519_SEED_LEN:
        raise InvalidKey("Ed25519 seed must be 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed).sign(message)


def ed25519_verify(public: bytes, signature: bytes, message: bytes) -> None:
    """Raise InvalidSignature unless ``signature`` is a valid RFC 8032 signature."""
    if len(public) != 32 or len(signature) != ED25519_SIG_LEN:
        raise InvalidSignature("bad Ed25519 key or signature length")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (_LibInvalidSignature, ValueError) as exc:
        raise InvalidSignature("Ed25519 signature does not verify") from exc


# --- ML-KEM-768 -------------------------------------------------------------------------------


def mlkem_public(seed: bytes) -> bytes:
    """The 1184-byte encapsulation key of a 64-byte ML-KEM-768 seed (d || z)."""
    if len(seed) != MLKEM_SEED_LEN:
        raise InvalidKey("ML-KEM-768 seed must be 64 bytes")
    return mlkem.MLKEM768PrivateKey.from_seed_bytes(seed).public_key().public_bytes_raw()


def mlkem_check_public(public: bytes) -> None:
    """Raise InvalidKey unless ``public`` passes FIPS 203's encapsulation-key checks (length and
    every coefficient reduced modulo q), which ``cryptography`` and WebCrypto apply on import."""
    if len(public) != MLKEM_PUBLIC_LEN:
        raise InvalidKey("ML-KEM-768 public key must be 1184 bytes")
    try:
        mlkem.MLKEM768PublicKey.from_public_bytes(public)
    except ValueError as exc:
        raise InvalidKey("invalid ML-KEM-768 public key") from exc


def mlkem_encapsulate(public: bytes) -> tuple[bytes, bytes]:
    """Return (ciphertext, shared_secret). Uses the library's own randomness (not injectable)."""
    if len(public) != MLKEM_PUBLIC_LEN:
        raise InvalidKey("ML-KEM-768 public key must be 1184 bytes")
    try:
        key = mlkem.MLKEM768PublicKey.from_public_bytes(public)
    except ValueError as exc:
        raise InvalidKey("invalid ML-KEM-768 public key") from exc
    # cryptography returns (shared_secret, ciphertext); we name the order explicitly.
    shared_secret, ciphertext = key.encapsulate()
    return ciphertext, shared_secret


def mlkem_decapsulate(seed: bytes, ciphertext: bytes) -> bytes:
    """Decapsulate; a wrong-length seed or ciphertext is refused, a bad ciphertext of the right
    length yields the implicit-rejection secret (FIPS 203), which then fails authentication."""
    if len(seed) != MLKEM_SEED_LEN:
        raise InvalidKey("ML-KEM-768 seed must be 64 bytes")
    if len(ciphertext) != MLKEM_CIPHERTEXT_LEN:
        raise DecryptionError("ML-KEM-768 ciphertext must be 1088 bytes")
    try:
        return mlkem.MLKEM768PrivateKey.from_seed_bytes(seed).decapsulate(ciphertext)
    except ValueError as exc:
        raise DecryptionError("ML-KEM-768 decapsulation failed") from exc


# --- Symmetric --------------------------------------------------------------------------------


def aead_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """AES-256-GCM, 96-bit nonce, 128-bit tag; returns ciphertext || tag."""
    if len(key) != AES_KEY_LEN or len(nonce) != GCM_NONCE_LEN:
        raise InvalidKey("AES-256-GCM needs a 32-byte key and a 12-byte nonce")
    return AESGCM(key).encrypt(nonce, plaintext, ad)


def aead_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    if len(key) != AES_KEY_LEN or len(nonce) != GCM_NONCE_LEN:
        raise InvalidKey("AES-256-GCM needs a 32-byte key and a 12-byte nonce")
    if len(ciphertext) < GCM_TAG_LEN:
        raise DecryptionError("ciphertext shorter than the tag")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, ad)
    except InvalidTag as exc:
        raise DecryptionError("authentication failed") from exc


def hkdf(salt: bytes, ikm: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA-256 (RFC 5869). An empty salt means 32 zero bytes, as the RFC says."""
    if length > 255 * 32:
        raise EncodingError("HKDF output too long")
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt or None, info=info).derive(ikm)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    mac = _crypto_hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return mac.finalize()


def sha256(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(data)
    return digest.finalize()


def sha512(data: bytes) -> bytes:
    digest = hashes.Hash(hashes.SHA512())
    digest.update(data)
    return digest.finalize()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return _hmac.compare_digest(a, b)
