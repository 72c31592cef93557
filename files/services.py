"""What the blob store can do: create, upload chunks, report progress, download, purge.

Capabilities are 32 random bytes handed out once; only their SHA-256 is stored. A wrong
capability and an unknown blob id get the same answer after the same work (a hash and a
constant-time compare), so the answer never says whether a blob exists.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import struct
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, BinaryIO, Literal

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import InvalidTag
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.db import IntegrityError, models, transaction
from django.db.models import F, Sum
from django.utils import timezone

from files.errors import (
    BlobExpired,
    BlobIncomplete,
    BlobNotFound,
    BlobShredded,
    BlobTooLarge,
    ChunkOutOfRange,
    ChunkUnreadable,
    DownloadLimitReached,
    DownloadNotOpened,
    InvalidChunkCount,
    InvalidChunkSize,
    InvalidMaxDownloads,
    InvalidTtl,
    QuotaExceeded,
    StorageUnavailable,
    UploadClosed,
    WrongChunkSize,
)
from files.models import Blob, BlobChunk
from messenger import atrest
from messenger.codec import b64u_encode
from messenger.models import AnonymousSession
from messenger.sessions import coarse_time

BLOB_ID_BYTES = 16
CAPABILITY_BYTES = 32
MIN_TTL_SECONDS = 60
# How much of a request body is read at a time: the body is never read whole at once.
READ_PIECE = 64 * 1024
_BLOB_ID = re.compile(r"^[A-Za-z0-9_-]{22}$")
# Compared against when the id is unknown, so both paths do the same work.
_NO_SUCH_BLOB = hashlib.sha256(b"courier-v1 no such blob").digest()
_QUOTA_CONTEXT = b"courier-v1 blob-quota\x00"

Capability = Literal["upload", "download"]
# What a storage backend raises when it fails: the filesystem, or S3 through botocore.
STORAGE_ERRORS = (OSError, BotoCoreError, ClientError)


@dataclass(frozen=True)
class CreatedBlob:
    blob: Blob
    upload_capability: str
    download_capability: str


def blob_storage() -> Storage:
    return storages["blobs"]


def _hash(capability: bytes) -> bytes:
    return hashlib.sha256(capability).digest()


def _quota_key(session: AnonymousSession) -> bytes:
    # Keyed, so a copy of the database alone cannot join blobs to the sessions table.
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, _QUOTA_CONTEXT + bytes(session.token_hash), "sha256").digest()


def _chunk_context(blob_id: str, index: int) -> bytes:
    # Binds a sealed chunk to its blob and position: chunks cannot be swapped at rest.
    return b"blob-chunk\x00" + blob_id.encode("ascii") + b"\x00" + struct.pack(">Q", index)


def _bytes_used(session: AnonymousSession) -> int:
    total = (
        Blob.objects.live()
        .filter(quota_key=_quota_key(session))
        .aggregate(
            used=Sum(F("chunk_size") * F("chunk_count"), output_field=models.BigIntegerField())
        )["used"]
    )
    return int(total or 0)


def create_blob(
    session: AnonymousSession,
    *,
    chunk_size: int,
    chunk_count: int,
    ttl_seconds: int | None = None,
    max_downloads: int = 1,
) -> CreatedBlob:
    if chunk_size not in settings.BLOB_CHUNK_SIZES:
        raise InvalidChunkSize()
    if chunk_count < 1:
        raise InvalidChunkCount()
    ttl = ttl_seconds
    if ttl is None:
        ttl = min(settings.BLOB_DEFAULT_TTL_SECONDS, settings.BLOB_MAX_TTL_SECONDS)
    if not MIN_TTL_SECONDS <= ttl <= settings.BLOB_MAX_TTL_SECONDS:
        raise InvalidTtl()
    if not 1 <= max_downloads <= settings.BLOB_MAX_DOWNLOADS:
        raise InvalidMaxDownloads()
    total = chunk_size * chunk_count
    if total > settings.BLOB_MAX_BYTES:
        raise BlobTooLarge()

    now = timezone.now()
    expires_at = coarse_time(now + timedelta(seconds=ttl))
    window = coarse_time(now + timedelta(seconds=settings.BLOB_UPLOAD_WINDOW_SECONDS))
    upload_capability = secrets.token_bytes(CAPABILITY_BYTES)
    download_capability = secrets.token_bytes(CAPABILITY_BYTES)
    with transaction.atomic():
        # Lock the session row: two concurrent creations must not both fit in the quota
        # that only one of them fits in.
        AnonymousSession.objects.select_for_update().filter(token_hash=session.token_hash).first()
        if _bytes_used(session) + total > settings.BLOB_SESSION_QUOTA_BYTES:
            raise QuotaExceeded()
        blob = Blob.objects.create(
            id=b64u_encode(secrets.token_bytes(BLOB_ID_BYTES)),
            upload_capability_hash=_hash(upload_capability),
            download_capability_hash=_hash(download_capability),
            quota_key=_quota_key(session),
            chunk_size=chunk_size,
            chunk_count=chunk_count,
            max_downloads=max_downloads,
            expires_at=expires_at,
            upload_deadline=min(expires_at, window),
        )
    return CreatedBlob(blob, b64u_encode(upload_capability), b64u_encode(download_capability))


def _find(blob_id: str) -> Blob | None:
    if not _BLOB_ID.match(blob_id):
        return None
    return Blob.objects.filter(pk=blob_id).first()


def _authorize(blob_id: str, capability: bytes, kinds: tuple[Capability, ...]) -> tuple[Blob, str]:
    """The blob if `capability` is one of its `kinds`, else BlobNotFound, whichever the cause.

    Every path hashes the capability and runs one constant-time compare per kind, so an
    unknown id and a wrong capability cost the same and answer the same.
    """
    presented = _hash(capability)
    blob = _find(blob_id)
    matched: str | None = None
    for kind in kinds:
        stored = bytes(getattr(blob, f"{kind}_capability_hash")) if blob else _NO_SUCH_BLOB
        if hmac.compare_digest(presented, stored) and blob is not None:
            matched = kind
    if blob is None or matched is None:
        raise BlobNotFound()
    if blob.expires_at <= timezone.now():
        raise BlobExpired()
    return blob, matched


def _check_index(blob: Blob, index: int) -> None:
    if not 0 <= index < blob.chunk_count:
        raise ChunkOutOfRange()


def _read_exactly(body: BinaryIO, size: int) -> bytes:
    """Read one chunk in pieces; WrongChunkSize if the body is shorter or longer."""
    buffer = bytearray()
    while len(buffer) <= size:
        piece = body.read(min(READ_PIECE, size + 1 - len(buffer)))
        if not piece:
            break
        buffer += piece
    if len(buffer) != size:
        raise WrongChunkSize()
    return bytes(buffer)


def _mark_complete_if_done(blob: Blob) -> bool:
    # Counted after this chunk's row is committed: of two last chunks racing, the later
    # count sees both rows, so the blob is never left incomplete with every chunk present.
    if BlobChunk.objects.filter(blob_id=blob.pk).count() >= blob.chunk_count:
        Blob.objects.filter(pk=blob.pk, complete=False).update(complete=True)
        return True
    return False


def store_chunk(
    blob_id: str, capability: bytes, index: int, body: BinaryIO, content_length: int | None
) -> tuple[bool, bool]:
    """Store chunk `index` from `body`; returns (newly stored, blob complete).

    Idempotent: a chunk that is already present is kept and the new body is ignored.
    """
    blob, _ = _authorize(blob_id, capability, ("upload",))
    _check_index(blob, index)
    if content_length is not None and content_length != blob.chunk_size:
        raise WrongChunkSize()
    if BlobChunk.objects.filter(blob_id=blob.pk, index=index).exists():
        return False, _mark_complete_if_done(blob)
    if blob.upload_deadline <= timezone.now():
        raise UploadClosed()
    data = _read_exactly(body, blob.chunk_size)
    sealed = atrest.seal(data, expires_at=blob.expires_at, context=_chunk_context(blob.pk, index))
    del data
    storage = blob_storage()
    # A fresh name per attempt: a half-written file from a failed attempt is never the
    # name a chunk row points to, and the purge removes it with the blob's folder.
    try:
        name = storage.save(f"{blob.pk}/{index:06d}.{secrets.token_hex(8)}", ContentFile(sealed))
    except STORAGE_ERRORS:
        # Disk full, S3 unreachable: no row was written, so nothing half-written is served.
        raise StorageUnavailable() from None
    try:
        with transaction.atomic():
            BlobChunk.objects.create(blob_id=blob.pk, index=index, storage_name=name)
    except IntegrityError:
        storage.delete(name)
        # Either a concurrent upload of the same chunk won (fine: idempotent), or the
        # blob was purged meanwhile.
        if not Blob.objects.filter(pk=blob.pk).exists():
            raise BlobNotFound() from None
        return False, _mark_complete_if_done(blob)
    except BaseException:
        storage.delete(name)
        raise
    return True, _mark_complete_if_done(blob)


def blob_status(blob_id: str, capability: bytes) -> dict[str, Any]:
    """Progress for the uploader (which chunks are present), limits for the downloader."""
    blob, kind = _authorize(blob_id, capability, ("upload", "download"))
    status: dict[str, Any] = {
        "blob_id": blob.pk,
        "chunk_size": blob.chunk_size,
        "chunk_count": blob.chunk_count,
        "complete": blob.complete,
        "expires_at": blob.expires_at,
        "downloads_remaining": max(0, blob.max_downloads - blob.downloads),
    }
    if kind == "upload":
        status["upload_deadline"] = blob.upload_deadline
        status["present"] = list(
            BlobChunk.objects.filter(blob_id=blob.pk)
            .order_by("index")
            .values_list("index", flat=True)
        )
    return status


def _open_download(blob: Blob) -> None:
    # One conditional UPDATE: the database re-checks `downloads < max_downloads` on the
    # locked row, so concurrent openers can never push the count past the limit.
    opened = Blob.objects.filter(pk=blob.pk, downloads__lt=F("max_downloads")).update(
        downloads=F("downloads") + 1
    )
    if not opened:
        raise DownloadLimitReached()
    deadline = coarse_time(
        timezone.now() + timedelta(seconds=settings.BLOB_DOWNLOAD_WINDOW_SECONDS)
    )
    Blob.objects.filter(
        pk=blob.pk, downloads__gte=F("max_downloads"), download_deadline__isnull=True
    ).update(download_deadline=min(deadline, blob.expires_at))


def _check_download_open(blob: Blob) -> None:
    if blob.downloads == 0:
        raise DownloadNotOpened()
    if blob.downloads >= blob.max_downloads and (
        blob.download_deadline is None or blob.download_deadline <= timezone.now()
    ):
        raise DownloadLimitReached()


def read_chunk(blob_id: str, capability: bytes, index: int) -> bytes:
    """The plaintext (client-encrypted) bytes of one chunk; chunk 0 opens a download."""
    blob, _ = _authorize(blob_id, capability, ("download",))
    _check_index(blob, index)
    if not blob.complete:
        raise BlobIncomplete()
    if index == 0:
        _open_download(blob)
    else:
        _check_download_open(blob)
    row = BlobChunk.objects.filter(blob_id=blob.pk, index=index).first()
    if row is None:
        raise ChunkUnreadable()
    try:
        with blob_storage().open(row.storage_name, "rb") as stored:
            record = stored.read()
        return atrest.open_sealed(record, context=_chunk_context(blob.pk, index))
    except atrest.KeyDestroyed:
        raise BlobShredded() from None
    except (*STORAGE_ERRORS, InvalidTag, ValueError, struct.error):
        raise ChunkUnreadable() from None


def delete_blob(blob_id: str, capability: bytes) -> None:
    """The uploader withdraws a blob early: rows and stored chunks go at once."""
    blob, _ = _authorize(blob_id, capability, ("upload",))
    _delete_stored(blob_storage(), blob.pk)
    Blob.objects.filter(pk=blob.pk).delete()


def _delete_stored(storage: Storage, blob_id: str) -> int:
    """Delete every stored file of a blob, committed or not. Idempotent."""
    try:
        _, names = storage.listdir(blob_id)
    except FileNotFoundError:
        return 0
    for name in names:
        storage.delete(f"{blob_id}/{name}")
    # On a filesystem the folder goes too; on S3 there is no folder object to remove.
    storage.delete(blob_id)
    return len(names)


def purge_blobs() -> dict[str, int]:
    """Beat job: delete expired, exhausted and abandoned blobs, rows and stored chunks.

    Stored files go before the row, so a purge interrupted half-way is finished by the
    next run instead of leaving files no row points to. Idempotent.
    """
    storage = blob_storage()
    blobs = files = 0
    for blob_id in list(Blob.objects.purgeable().values_list("pk", flat=True)):
        files += _delete_stored(storage, blob_id)
        deleted, _ = Blob.objects.filter(pk=blob_id).delete()
        blobs += 1 if deleted else 0
    files += _sweep_orphans(storage)
    return {"blobs": blobs, "files": files}


def _sweep_orphans(storage: Storage) -> int:
    """Folders of blobs whose row is gone (a crash between the two deletes above, or an
    upload that finished after its blob was purged)."""
    try:
        folders, _ = storage.listdir("")
    except FileNotFoundError:
        return 0
    candidates = [name for name in folders if _BLOB_ID.match(name)]
    deleted = 0
    for start in range(0, len(candidates), 500):
        batch = candidates[start : start + 500]
        known = set(Blob.objects.filter(pk__in=batch).values_list("pk", flat=True))
        deleted += sum(_delete_stored(storage, name) for name in batch if name not in known)
    return deleted
