"""Encrypted blobs: fixed-size chunks, capabilities kept as hashes, an expiry on every row.

The server never sees a file: clients encrypt it themselves (docs/protocol.md, file
chunks) and upload opaque chunks of one of the policy's sizes. Stored chunks are sealed
again under the at-rest epoch key of the blob's expiry (messenger/atrest.py).
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from messenger.models import ExpiringQuerySet


class BlobQuerySet(ExpiringQuerySet):
    def abandoned(self) -> BlobQuerySet:
        """Never completed within the upload window."""
        return self.filter(complete=False, upload_deadline__lte=timezone.now())

    def exhausted(self) -> BlobQuerySet:
        """Every allowed download opened, and the window to finish them is over."""
        return self.filter(downloads__gte=F("max_downloads"), download_deadline__lte=timezone.now())

    def purgeable(self) -> BlobQuerySet:
        now = timezone.now()
        return self.filter(
            Q(expires_at__lte=now)
            | Q(complete=False, upload_deadline__lte=now)
            | Q(downloads__gte=F("max_downloads"), download_deadline__lte=now)
        )


class Blob(models.Model):
    # 16 random bytes, base64url: the only name the blob has, in URLs and storage paths.
    id = models.CharField(primary_key=True, max_length=22)
    upload_capability_hash = models.BinaryField(max_length=32)
    download_capability_hash = models.BinaryField(max_length=32)
    # A keyed hash of the creating session's token hash, only to count the session's
    # quota (docs/api/files.md, "What the server learns").
    quota_key = models.BinaryField(max_length=32, db_index=True)
    chunk_size = models.PositiveIntegerField()
    chunk_count = models.PositiveIntegerField()
    max_downloads = models.PositiveIntegerField()
    downloads = models.PositiveIntegerField(default=0)
    complete = models.BooleanField(default=False)
    # All times coarsened to the minute (messenger.sessions.coarse_time).
    expires_at = models.DateTimeField(db_index=True)
    upload_deadline = models.DateTimeField()
    # Set when the last allowed download is opened; chunks > 0 are served until then.
    download_deadline = models.DateTimeField(null=True)

    objects = BlobQuerySet.as_manager()

    def __str__(self) -> str:
        return f"blob of {self.chunk_count} x {self.chunk_size} bytes"

    @property
    def total_bytes(self) -> int:
        return self.chunk_size * self.chunk_count


class BlobChunk(models.Model):
    """A chunk is present once this row exists: the row is the commit of the upload.

    The sealed bytes are written to storage under a fresh name first; only then is the
    row inserted, so a failed or interrupted upload never leaves a chunk that is served.
    """

    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    storage_name = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["blob", "index"], name="one_row_per_blob_chunk")
        ]

    def __str__(self) -> str:
        return f"chunk {self.index}"
