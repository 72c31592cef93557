"""Exactly one Celery beat per deployment: a Redis lock, and heartbeats the checks read.

Beat is the only process that schedules the purge and key-destruction jobs. Two beats
would send every job twice (harmless, the jobs are idempotent, but it hides a broken
topology); no beat means expired data and epoch keys are never destroyed, which silently
breaks crypto-shredding. So, when REDIS_URL is set (production):

- every beat process writes a heartbeat key `courier:beat:<deployment>:alive:<id>` that
  expires after HEARTBEAT_TTL seconds; `manage.py check --deploy` counts the live ones;
- only the holder of the lock `courier:beat:<deployment>:leader` runs the schedule. A
  second beat started by mistake waits as a standby and takes over when the first one
  stops (its lock then expires within HEARTBEAT_TTL seconds).

`<deployment>` is a hash of the database's location, so deployments (and test runs) that
share one Redis keep apart. Without REDIS_URL (the embedded default) beat runs inside the
single worker process and none of this is needed.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Mapping
from typing import Any

import redis
from celery.beat import PersistentScheduler
from django.conf import settings

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 5.0
HEARTBEAT_TTL = 20

# Extend or delete the lock only while we still hold it (another beat may have taken it
# after ours expired).
_REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end"  # noqa: E501
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"  # noqa: E501


def deployment_id(db: Mapping[str, Any] | None = None) -> str:
    """What identifies one deployment: its database (host, port, name)."""
    config: Mapping[str, Any] = db or settings.DATABASES["default"]
    where = "|".join(str(config.get(part, "")) for part in ("ENGINE", "HOST", "PORT", "NAME"))
    return hashlib.sha256(where.encode()).hexdigest()[:16]


def _prefix(deployment: str | None = None) -> str:
    return f"courier:beat:{deployment or deployment_id()}"


def leader_key(deployment: str | None = None) -> str:
    return f"{_prefix(deployment)}:leader"


def alive_key(beat_id: str, deployment: str | None = None) -> str:
    return f"{_prefix(deployment)}:alive:{beat_id}"


def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def alive_beats(client: redis.Redis | None = None, deployment: str | None = None) -> list[str]:
    """The ids of the beat processes of this deployment whose heartbeat is fresh."""
    client = client or redis_client()
    start = len(alive_key("", deployment))
    pattern = alive_key("*", deployment)
    return sorted(key.decode()[start:] for key in client.scan_iter(match=pattern, count=100))


def current_leader(client: redis.Redis | None = None, deployment: str | None = None) -> str | None:
    client = client or redis_client()
    value = client.get(leader_key(deployment))
    return value.decode() if isinstance(value, bytes) else value


def new_beat_id() -> str:
    # The host name lets the container's healthcheck find its own heartbeat.
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class HeartbeatScheduler(PersistentScheduler):
    """celery beat's default scheduler, run only by the lock holder, with heartbeats."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.beat_id = new_beat_id()
        self._leading = False
        self._next_heartbeat = 0.0
        self._client: redis.Redis | None = redis_client() if settings.REDIS_URL else None
        super().__init__(*args, **kwargs)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if self._client is None:
            return super().tick(*args, **kwargs)
        now = time.monotonic()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + HEARTBEAT_INTERVAL
            self._beat()
        if not self._leading:
            return HEARTBEAT_INTERVAL
        return min(super().tick(*args, **kwargs), HEARTBEAT_INTERVAL)

    def _beat(self) -> None:
        assert self._client is not None
        try:
            self._client.set(alive_key(self.beat_id), "1", ex=HEARTBEAT_TTL)
            if self._leading:
                held = self._client.eval(_REFRESH, 1, leader_key(), self.beat_id, HEARTBEAT_TTL)
                if not held:
                    self._leading = False
                    logger.error("beat lost its lock to another beat; now on standby")
            elif self._client.set(leader_key(), self.beat_id, nx=True, ex=HEARTBEAT_TTL):
                self._leading = True
                logger.info("beat holds the lock and runs the schedule")
            else:
                logger.warning(
                    "another beat runs this deployment's schedule; this one waits "
                    "(run exactly one beat)"
                )
        except redis.RedisError as exc:
            # Without Redis we cannot know whether another beat runs: stop scheduling
            # until we can, rather than risk two schedules.
            self._leading = False
            logger.error("beat cannot reach Redis (%s); schedule paused", type(exc).__name__)

    def close(self) -> None:
        if self._client is not None:
            try:
                self._client.eval(_RELEASE, 1, leader_key(), self.beat_id)
                self._client.delete(alive_key(self.beat_id))
            except redis.RedisError:
                pass  # the keys expire by themselves
        super().close()
