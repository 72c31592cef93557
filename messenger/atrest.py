"""At-rest encryption of stored envelopes and blob chunks under epoch keys.

Layout of a sealed record (docs/operations.md, "Crypto-shredding"):

    0x01 || key_id (u64 big-endian) || nonce (12 bytes) || AES-256-GCM(ciphertext || tag)

with associated data `b"courier-v1 at-rest\\x00" || key_id || context`, where the caller's
context binds the record to its row (e.g. the envelope id), so records cannot be swapped.

Epoch keys are chosen by the *expiry* of the data: the key of epoch
`floor(expires_at / EPOCH_SECONDS)` protects everything that expires in that epoch.
Once the epoch has ended, nothing under its keys may be alive, and beat destroys them.
"""

from __future__ import annotations

import hashlib
import os
import struct
from datetime import datetime

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.utils import timezone

from messenger.codec import b64u_decode
from messenger.models import EpochKey

FORMAT_VERSION = 1
HEADER = struct.Struct(">BQ12s")  # version, key id, nonce
OVERHEAD = HEADER.size + 16
AD_CONTEXT = b"courier-v1 at-rest\x00"
WRAP_CONTEXT = b"courier-v1 epoch-key\x00"
# Keys of an epoch survive its end by this margin, so a record sealed just before its
# expiry instant is never unreadable while a reader still considers it live.
DESTROY_GRACE_SECONDS = 120


class KeyDestroyed(Exception):
    """The epoch key of this record is gone: the record is crypto-shredded."""


def _master_key() -> bytes:
    raw = settings.MASTER_KEY
    try:
        key = b64u_decode(raw)
    except ValueError:
        key = b""
    if len(key) != 32:
        # Accept any operator-chosen string by hashing it to 32 bytes.
        key = hashlib.sha256(raw.encode()).digest()
    return key


def epoch_of(moment: datetime) -> int:
    return int(moment.timestamp()) // settings.EPOCH_SECONDS


def _wrap(epoch: int, key: bytes) -> bytes:
    nonce = os.urandom(12)
    ad = WRAP_CONTEXT + struct.pack(">q", epoch)
    return nonce + AESGCM(_master_key()).encrypt(nonce, key, ad)


def _unwrap(epoch: int, wrapped: bytes) -> bytes:
    ad = WRAP_CONTEXT + struct.pack(">q", epoch)
    return AESGCM(_master_key()).decrypt(bytes(wrapped[:12]), bytes(wrapped[12:]), ad)


# Unwrapped keys are cached per process; a destroyed key is dropped from the cache when
# the destroying process notices, and other processes stop using it when its row is gone.
_key_cache: dict[int, tuple[int, bytes]] = {}


def _current_key(epoch: int) -> tuple[int, bytes]:
    row = EpochKey.objects.filter(epoch=epoch, retired=False).order_by("-id").first()
    if row is None:
        # Two processes may both create a key for a new epoch; both keys are valid and
        # both are destroyed with the epoch, so no lock is needed.
        key = AESGCM.generate_key(bit_length=256)
        row = EpochKey.objects.create(epoch=epoch, wrapped_key=_wrap(epoch, key))
    return row.pk, _load_key(row.pk, epoch, bytes(row.wrapped_key))


def _load_key(key_id: int, epoch: int, wrapped: bytes) -> bytes:
    cached = _key_cache.get(key_id)
    if cached is not None:
        return cached[1]
    key = _unwrap(epoch, wrapped)
    _key_cache[key_id] = (epoch, key)
    return key


def seal(plaintext: bytes, *, expires_at: datetime, context: bytes) -> bytes:
    key_id, key = _current_key(epoch_of(expires_at))
    nonce = os.urandom(12)
    header = HEADER.pack(FORMAT_VERSION, key_id, nonce)
    ad = AD_CONTEXT + struct.pack(">Q", key_id) + context
    return header + AESGCM(key).encrypt(nonce, plaintext, ad)


def open_sealed(record: bytes, *, context: bytes) -> bytes:
    """Decrypt a sealed record; KeyDestroyed if its epoch key no longer exists."""
    version, key_id, nonce = HEADER.unpack_from(record)
    if version != FORMAT_VERSION:
        raise ValueError("unknown at-rest record version")
    row = EpochKey.objects.filter(pk=key_id).first()
    if row is None:
        _key_cache.pop(key_id, None)
        raise KeyDestroyed(key_id)
    key = _load_key(key_id, row.epoch, bytes(row.wrapped_key))
    ad = AD_CONTEXT + struct.pack(">Q", key_id) + context
    return AESGCM(key).decrypt(nonce, bytes(record[HEADER.size :]), ad)


def key_id_of(record: bytes) -> int:
    return HEADER.unpack_from(record)[1]


def rotate_epoch_keys(now: datetime | None = None) -> dict[str, int]:
    """Beat job: destroy every key whose epoch has ended. Idempotent."""
    now = now or timezone.now()
    cutoff = (int(now.timestamp()) - DESTROY_GRACE_SECONDS) // settings.EPOCH_SECONDS
    doomed = EpochKey.objects.filter(epoch__lt=cutoff)
    ids = list(doomed.values_list("pk", flat=True))
    # Overwrite before deleting, so the live page no longer holds the wrapped key.
    doomed.update(wrapped_key=b"\x00" * 40)
    destroyed, _ = EpochKey.objects.filter(pk__in=ids).delete()
    for key_id in ids:
        _key_cache.pop(key_id, None)
    return {"destroyed": destroyed}


def retire_current_keys() -> int:
    """Operator's "rotate now": new data goes under fresh keys; old ones still decrypt."""
    return EpochKey.objects.filter(retired=False).update(retired=True)
