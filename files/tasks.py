"""Periodic jobs of the blob store. Each task body is one call to a service; all idempotent."""

from __future__ import annotations

from celery import shared_task

from files import services


@shared_task(name="files.purge_blobs")
def purge_blobs() -> dict[str, int]:
    return services.purge_blobs()
