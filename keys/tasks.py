"""Periodic jobs of the prekey directory. Each task body is one service call; idempotent."""

from __future__ import annotations

from celery import shared_task

from keys import services


@shared_task(name="keys.purge_stale_bundles")
def purge_stale_bundles() -> int:
    return services.purge_stale_bundles()
