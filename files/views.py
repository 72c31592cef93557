"""The blob API under /api/v1/blobs (docs/api/files.md). Parse, call one service, respond.

Chunk requests carry a capability in `Authorization: Capability <base64url>`, never in
the URL, so it cannot end up in a proxy's access log.
"""

from __future__ import annotations

from datetime import datetime
from typing import BinaryIO, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router, Schema, Status

from files import services
from files.errors import CapabilityRequired
from messenger.api import session_auth
from messenger.codec import b64u_decode
from messenger.ratelimits import limit_by_value
from messenger.views import ErrorOut

router = Router(tags=["blobs"])

CAPABILITY_ERRORS = {401: ErrorOut, 404: ErrorOut, 410: ErrorOut, 429: ErrorOut}


class BlobIn(Schema):
    chunk_size: int
    chunk_count: int
    ttl: int | None = Field(None, description="seconds; default the policy's default")
    max_downloads: int = 1


class BlobOut(Schema):
    blob_id: str
    upload_capability: str
    download_capability: str
    chunk_size: int
    chunk_count: int
    max_downloads: int
    expires_at: datetime
    upload_deadline: datetime


class ChunkStoredOut(Schema):
    index: int
    stored: bool
    complete: bool


class BlobStatusOut(Schema):
    blob_id: str
    chunk_size: int
    chunk_count: int
    complete: bool
    expires_at: datetime
    downloads_remaining: int
    upload_deadline: datetime | None = None
    present: list[int] | None = None


def _capability(request: HttpRequest) -> bytes:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "capability":
        raise CapabilityRequired()
    try:
        return b64u_decode(value.strip(), length=services.CAPABILITY_BYTES)
    except ValueError:
        raise CapabilityRequired() from None


def _content_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META["CONTENT_LENGTH"])
    except (KeyError, ValueError):
        return None


@router.post(
    "",
    response={201: BlobOut, 400: ErrorOut, 401: ErrorOut, 413: ErrorOut, 429: ErrorOut},
    auth=session_auth,
)
def create_blob(request: HttpRequest, body: BlobIn) -> Status:
    """Declare a blob; the answer holds the only copies of its two capabilities.

    Rate: the session's overall rate (messenger.api.SessionAuth) plus the byte quota."""
    created = services.create_blob(
        request.auth,  # type: ignore[attr-defined]
        chunk_size=body.chunk_size,
        chunk_count=body.chunk_count,
        ttl_seconds=body.ttl,
        max_downloads=body.max_downloads,
    )
    blob = created.blob
    return Status(
        201,
        {
            "blob_id": blob.pk,
            "upload_capability": created.upload_capability,
            "download_capability": created.download_capability,
            "chunk_size": blob.chunk_size,
            "chunk_count": blob.chunk_count,
            "max_downloads": blob.max_downloads,
            "expires_at": blob.expires_at,
            "upload_deadline": blob.upload_deadline,
        },
    )


@router.get("/{blob_id}", response={200: BlobStatusOut, **CAPABILITY_ERRORS}, auth=None)
def blob_status(request: HttpRequest, blob_id: str) -> Status:
    """With the upload capability: which chunks are present (to resume). With the
    download capability: size, completeness and downloads remaining."""
    capability = _capability(request)
    limit_by_value(request, "blob-chunks", blob_id, settings.RATELIMIT_BLOB_CHUNKS)
    return Status(200, services.blob_status(blob_id, capability))


@router.put(
    "/{blob_id}/chunks/{index}",
    response={200: ChunkStoredOut, 201: ChunkStoredOut, 400: ErrorOut, **CAPABILITY_ERRORS},
    auth=None,
)
def put_chunk(request: HttpRequest, blob_id: str, index: int) -> Status:
    """Upload one chunk: the raw body, exactly chunk_size bytes. Idempotent."""
    capability = _capability(request)
    limit_by_value(request, "blob-chunks", blob_id, settings.RATELIMIT_BLOB_CHUNKS)
    stored, complete = services.store_chunk(
        blob_id, capability, index, cast(BinaryIO, request), _content_length(request)
    )
    return Status(201 if stored else 200, {"index": index, "stored": True, "complete": complete})


@router.get(
    "/{blob_id}/chunks/{index}",
    response={200: None, 400: ErrorOut, 409: ErrorOut, **CAPABILITY_ERRORS},
    auth=None,
)
def get_chunk(request: HttpRequest, blob_id: str, index: int) -> HttpResponse:
    """Download one chunk as raw bytes; fetching chunk 0 opens one download."""
    capability = _capability(request)
    limit_by_value(request, "blob-chunks", blob_id, settings.RATELIMIT_BLOB_CHUNKS)
    data = services.read_chunk(blob_id, capability, index)
    # One chunk (at most 4 MiB by default) is held while AES-GCM checks it: the tag must
    # verify before any byte may leave. Django's ASGI handler sends it in 64 KiB pieces.
    return HttpResponse(data, content_type="application/octet-stream")


@router.delete("/{blob_id}", response={204: None, **CAPABILITY_ERRORS}, auth=None)
def delete_blob(request: HttpRequest, blob_id: str) -> HttpResponse:
    """Withdraw a blob with its upload capability: rows and stored chunks go at once."""
    capability = _capability(request)
    services.delete_blob(blob_id, capability)
    return HttpResponse(status=204)
