"""Stable error codes of the blob API (docs/api/files.md, "Errors")."""

from __future__ import annotations

from messenger.errors import ApiError


class CapabilityRequired(ApiError):
    status = 401
    code = "capability_required"
    message = "Send the blob's capability as `Authorization: Capability <base64url>`."


class BlobNotFound(ApiError):
    # The one answer for an unknown blob and for a wrong capability: it never says which.
    status = 404
    code = "blob_not_found"
    message = "No blob with this id and capability."


class InvalidChunkSize(ApiError):
    status = 400
    code = "invalid_chunk_size"
    message = "chunk_size must be one of the policy's blob chunk sizes."


class InvalidChunkCount(ApiError):
    status = 400
    code = "invalid_chunk_count"
    message = "chunk_count must be at least 1."


class InvalidTtl(ApiError):
    status = 400
    code = "invalid_ttl"
    message = "ttl must be between 60 seconds and the policy's maximum."


class InvalidMaxDownloads(ApiError):
    status = 400
    code = "invalid_max_downloads"
    message = "max_downloads must be between 1 and the policy's maximum."


class BlobTooLarge(ApiError):
    status = 413
    code = "blob_too_large"
    message = "chunk_size x chunk_count exceeds the policy's maximum blob size."


class QuotaExceeded(ApiError):
    status = 413
    code = "quota_exceeded"
    message = "This session's live blobs would exceed the per-session quota."


class ChunkOutOfRange(ApiError):
    status = 400
    code = "chunk_out_of_range"
    message = "The chunk index is not below the blob's chunk_count."


class WrongChunkSize(ApiError):
    status = 400
    code = "wrong_chunk_size"
    message = "A chunk body must be exactly the blob's chunk_size bytes."


class UploadClosed(ApiError):
    status = 410
    code = "upload_closed"
    message = "The upload window of this blob is over; it was abandoned."


class BlobExpired(ApiError):
    status = 410
    code = "blob_expired"
    message = "This blob has expired."


class BlobIncomplete(ApiError):
    status = 409
    code = "blob_incomplete"
    message = "Not every chunk of this blob has been uploaded yet."


class DownloadLimitReached(ApiError):
    status = 410
    code = "download_limit_reached"
    message = "Every allowed download of this blob has been used."


class BlobShredded(ApiError):
    status = 410
    code = "blob_shredded"
    message = "The at-rest key of this blob was destroyed; its chunks cannot be read."


class ChunkUnreadable(ApiError):
    status = 410
    code = "chunk_unreadable"
    message = "This stored chunk is missing or damaged."


class DownloadNotOpened(ApiError):
    status = 409
    code = "download_not_opened"
    message = "Fetch chunk 0 first: it opens a download."


class StorageUnavailable(ApiError):
    status = 503
    code = "storage_unavailable"
    message = "The blob store could not take the chunk; nothing was stored. Try again."
