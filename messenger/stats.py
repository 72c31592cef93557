"""Aggregate numbers about the server for its operator: `manage.py stats` and /metrics.

Only totals over all users: counts, byte sums and stock levels. No number here is per
mailbox, per session, per handle or per blob, and none is a distribution (a histogram of
mailbox sizes would already tell who talks a lot), so nothing in it points at a person.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from files.models import Blob, BlobChunk
from keys.models import OneTimePrekey, PrekeyBundle, PrekeyKind
from messenger.atrest import DESTROY_GRACE_SECONDS
from messenger.models import AnonymousSession, EpochKey
from relay.models import Envelope, Mailbox

# name -> (help text). The order is the order of the output.
DESCRIPTIONS: dict[str, str] = {
    "sessions_live": "Anonymous sessions that have not expired.",
    "sessions_expired": "Expired sessions not yet purged.",
    "epoch_keys": "At-rest epoch keys that exist (each one can still decrypt data).",
    "epoch_keys_retired": "Epoch keys retired by a rotation (still decrypt, no new data).",
    "epoch_keys_overdue": "Epoch keys whose epoch has ended but that were not destroyed yet.",
    "mailboxes": "Live mailboxes.",
    "mailboxes_expired": "Expired mailboxes not yet purged.",
    "envelopes_queued": "Live envelopes waiting to be acknowledged, over all mailboxes.",
    "envelope_bytes": "Bytes of queued envelopes (bucket sizes, before at-rest overhead).",
    "envelopes_expired": "Expired envelopes not yet purged.",
    "prekey_bundles": "Live prekey bundles (published handles).",
    "prekey_bundles_expired": "Expired prekey bundles not yet purged.",
    "one_time_prekeys_x25519": "X25519 one-time prekeys in stock, over all live bundles.",
    "one_time_prekeys_mlkem768": "ML-KEM-768 one-time prekeys in stock, over all live bundles.",
    "prekey_bundles_out_of_stock": "Live bundles with no X25519 one-time prekey left.",
    "blobs": "Live blobs (uploading or downloadable).",
    "blobs_complete": "Live blobs whose every chunk is uploaded.",
    "blobs_purgeable": "Blobs expired, abandoned or exhausted, not yet purged.",
    "blob_chunks": "Stored blob chunks.",
    "blob_bytes": "Bytes of stored blob chunks (before at-rest overhead).",
}


def _sum(queryset: object, field: str) -> int:
    return int(queryset.aggregate(total=Sum(field))["total"] or 0)  # type: ignore[attr-defined]


def collect() -> dict[str, int]:
    """Every number, as of now. Cheap enough for a scrape every 15 s."""
    now = timezone.now()
    cutoff = (int(now.timestamp()) - DESTROY_GRACE_SECONDS) // settings.EPOCH_SECONDS
    numbers = {
        "sessions_live": AnonymousSession.objects.live().count(),
        "sessions_expired": AnonymousSession.objects.expired().count(),
        "epoch_keys": EpochKey.objects.count(),
        "epoch_keys_retired": EpochKey.objects.filter(retired=True).count(),
        "epoch_keys_overdue": EpochKey.objects.filter(epoch__lt=cutoff).count(),
    }
    queued = Envelope.objects.live()
    numbers |= {
        "mailboxes": Mailbox.objects.live().count(),
        "mailboxes_expired": Mailbox.objects.expired().count(),
        "envelopes_queued": queued.count(),
        "envelope_bytes": _sum(queued, "size"),
        "envelopes_expired": Envelope.objects.expired().count(),
    }
    live_bundles = PrekeyBundle.objects.live()
    stock = OneTimePrekey.objects.filter(bundle__in=live_bundles)
    numbers |= {
        "prekey_bundles": live_bundles.count(),
        "prekey_bundles_expired": PrekeyBundle.objects.expired().count(),
        "one_time_prekeys_x25519": stock.filter(kind=PrekeyKind.X25519).count(),
        "one_time_prekeys_mlkem768": stock.filter(kind=PrekeyKind.ML_KEM_768).count(),
        "prekey_bundles_out_of_stock": live_bundles.exclude(
            one_time_prekeys__kind=PrekeyKind.X25519
        ).count(),
    }
    live_blobs = Blob.objects.live()
    numbers |= {
        "blobs": live_blobs.count(),
        "blobs_complete": live_blobs.filter(complete=True).count(),
        "blobs_purgeable": Blob.objects.purgeable().count(),
        "blob_chunks": BlobChunk.objects.count(),
        "blob_bytes": _sum(BlobChunk.objects, "blob__chunk_size"),
    }
    return {name: numbers[name] for name in DESCRIPTIONS}


def prometheus_text(numbers: dict[str, int]) -> str:
    """The numbers as Prometheus gauges (text exposition format 0.0.4)."""
    lines: list[str] = []
    for name, value in numbers.items():
        metric = f"courier_{name}"
        lines.append(f"# HELP {metric} {DESCRIPTIONS[name]}")
        lines.append(f"# TYPE {metric} gauge")
        lines.append(f"{metric} {value}")
    return "\n".join(lines) + "\n"
