"""The policy clients show their users: limits, retention and sizes, from settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def current_policy() -> dict[str, Any]:
    return {
        "server_version": settings.SERVER_VERSION,
        "protocol_version": 1,
        "session": {
            "ttl_seconds": settings.SESSION_TTL_SECONDS,
            "pow_difficulty": settings.POW_DIFFICULTY,
        },
        "envelopes": {
            "bucket_sizes": settings.ENVELOPE_BUCKETS,
            "max_ttl_seconds": settings.ENVELOPE_MAX_TTL_SECONDS,
        },
        "mailboxes": {
            "max_ttl_seconds": settings.MAILBOX_MAX_TTL_SECONDS,
            "quota_envelopes": settings.MAILBOX_QUOTA_ENVELOPES,
            "quota_bytes": settings.MAILBOX_QUOTA_BYTES,
        },
        "prekeys": {
            "retention_seconds": settings.PREKEY_RETENTION_SECONDS,
            "signed_prekey_rotation_seconds": settings.SIGNED_PREKEY_ROTATION_SECONDS,
            "max_one_time_prekeys": settings.PREKEY_MAX_ONE_TIME,
            "max_batch": settings.PREKEY_MAX_BATCH,
            "claim_rate_per_handle": settings.RATELIMIT_PREKEY_CLAIM_PER_HANDLE,
            "claim_rate_per_session": settings.RATELIMIT_PREKEY_CLAIM_PER_SESSION,
        },
        "blobs": {
            "chunk_sizes": settings.BLOB_CHUNK_SIZES,
            "max_bytes": settings.BLOB_MAX_BYTES,
            "max_ttl_seconds": settings.BLOB_MAX_TTL_SECONDS,
            "max_downloads": settings.BLOB_MAX_DOWNLOADS,
            "session_quota_bytes": settings.BLOB_SESSION_QUOTA_BYTES,
            "default_ttl_seconds": min(
                settings.BLOB_DEFAULT_TTL_SECONDS, settings.BLOB_MAX_TTL_SECONDS
            ),
            "upload_window_seconds": settings.BLOB_UPLOAD_WINDOW_SECONDS,
            "download_window_seconds": settings.BLOB_DOWNLOAD_WINDOW_SECONDS,
        },
        "at_rest": {"epoch_seconds": settings.EPOCH_SECONDS},
    }
