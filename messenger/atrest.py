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
import time
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


# Unwrapped keys are cached per process for a short time, so the relay's hot path (one
# seal per send, one open per push) does not query the key table every time. The cache
# is bounded in time so that a key destroyed by beat in another process stops being usable
# here within KEY_CACHE_SECONDS; its data has expired before that anyway, and every read
# filters expired rows.
KEY_CACHE_SECONDS = 30.0
_key_cache: dict[int, tuple[int, bytes, float]] = {}  # key id -> (epoch, key, loaded at)
_current: dict[int, tuple[int, float]] = {}  # epoch -> (key id for new data, chosen at)


def _fresh(loaded_at: float) -> bool:
    return time.monotonic() - loaded_at < KEY_CACHE_SECONDS


def _current_key(epoch: int) -> tuple[int, bytes]:
    chosen = _current.get(epoch)
    if chosen is not None and _fresh(chosen[1]):
        cached = _key_cache.get(chosen[0])
        if cached is not None and _fresh(cached[2]):
            return chosen[0], cached[1]
    row = EpochKey.objects.filter(epoch=epoch, retired=False).order_by("-id").first()
    if row is None:
        # Two processes may both create a key for a new epoch; both keys are valid and
        # both are destroyed with the epoch, so no lock is needed.
        key = AESGCM.generate_key(bit_length=256)
        row = EpochKey.objects.create(epoch=epoch, wrapped_key=_wrap(epoch, key))
    _current[epoch] = (row.pk, time.monotonic())
    return row.pk, _load_key(row.pk, epoch, bytes(row.wrapped_key))


def _load_key(key_id: int, epoch: int, wrapped: bytes) -> bytes:
    key = _unwrap(epoch, wrapped)
    _key_cache[key_id] = (epoch, key, time.monotonic())
    return key


def _forget(key_id: int) -> None:
    _key_cache.pop(key_id, None)
    for epoch, (current_id, _) in list(_current.items()):
        if current_id == key_id:
            _current.pop(epoch, None)


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
    cached = _key_cache.get(key_id)
    if cached is not None and _fresh(cached[2]):
        key = cached[1]
    else:
        row = EpochKey.objects.filter(pk=key_id).first()
        if row is None:
            _forget(key_id)
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
        _forget(key_id)
    return {"destroyed": destroyed}


def retire_current_keys() -> int:
    """Operator's "rotate now": new data goes under fresh keys; old ones still decrypt.

    Other processes move to the fresh keys within KEY_CACHE_SECONDS.
    """
    _current.clear()
    return EpochKey.objects.filter(retired=False).update(retired=True)


def clear_key_caches() -> None:
    """Forget every unwrapped key of this process (tests, and after a master-key change)."""
    _key_cache.clear()
    _current.clear()
