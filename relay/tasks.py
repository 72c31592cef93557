"""Periodic jobs of the relay. Each task body is one call to a service; all idempotent."""

from __future__ import annotations

from celery import shared_task

from relay import services


@shared_task(name="relay.purge_expired")
def purge_expired() -> dict[str, int]:
    return services.purge_expired()
