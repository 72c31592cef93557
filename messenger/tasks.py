"""Periodic jobs of the core. Each task body is one call to a service; all idempotent."""

from __future__ import annotations

from celery import shared_task

from messenger import atrest, sessions


@shared_task(name="messenger.purge_expired_sessions")
def purge_expired_sessions() -> int:
    return sessions.purge_expired_sessions()


@shared_task(name="messenger.rotate_epoch_keys")
def rotate_epoch_keys() -> dict[str, int]:
    return atrest.rotate_epoch_keys()
