"""Exceptions raised by the crypto core.

Every failure to authenticate or parse raises one of these; callers never see a partially applied
result (see ``ratchet.Session.decrypt``).
"""

from __future__ import annotations


class CryptoError(Exception):
    """Base class of every error raised by ``courier.crypto``."""


class EncodingError(CryptoError, ValueError):
    """Malformed base64url, wrong length, bad structure."""


class InvalidKey(CryptoError):
    """A public key was refused (wrong length, or an all-zero X25519 output)."""


class InvalidSignature(CryptoError):
    """An Ed25519 signature did not verify."""


class InvalidBundle(CryptoError):
    """A prekey bundle is malformed or one of its signatures does not verify."""


class DecryptionError(CryptoError):
    """A ciphertext was tampered with, truncated, replayed, or is not for us."""


class LimitExceeded(DecryptionError):
    """A message would need more skipped message keys than the limits allow."""
