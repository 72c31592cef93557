"""Aggregate numbers about the server for its operator: `manage.py stats` and /metrics.

Only totals over all users: counts, byte sums and stock levels. No number here is per
mailbox, per session, per handle or per blob, and none is a distribution (a histogram of
mailbox sizes would already tell who talks a lot), so nothing in it points at a person.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from messenger.atrest import DESTROY_GRACE_SECONDS
from messenger.models import AnonymousSession, EpochKey

# name -> (help text). The order is the order of the output.
DESCRIPTIONS: dict[str, str] = {
    "sessions_live": "Anonymous sessions that have not expired.",
    "sessions_expired": "Expired sessions not yet purged.",
    "epoch_keys": "At-rest epoch keys that exist (each one can still decrypt data).",
    "epoch_keys_retired": "Epoch keys retired by a rotation (still decrypt, no new data).",
    "epoch_keys_overdue": "Epoch keys whose epoch has ended but that were not destroyed yet.",
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
