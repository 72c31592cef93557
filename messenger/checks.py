"""Deployment checks of the project's own, run by `manage.py check --deploy`."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

from messenger.codec import b64u_decode


@register(Tags.security, deploy=True)
def check_master_key(app_configs: Any, **kwargs: Any) -> list[Any]:
    try:
        key = b64u_decode(settings.MASTER_KEY)
    except ValueError:
        key = b""
    if len(key) != 32:
        return [
            Warning(
                "MASTER_KEY is not 32 bytes of base64url; it is hashed to a key.",
                hint="Generate one with: python -c 'import secrets; "
                "print(secrets.token_urlsafe(32))'",
                id="messenger.W001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_production_services(app_configs: Any, **kwargs: Any) -> list[Any]:
    problems: list[Any] = []
    if settings.PRODUCTION and not settings.REDIS_URL:
        problems.append(
            Error(
                "PRODUCTION is on but REDIS_URL is not set: several ASGI nodes would not "
                "share the channel layer, cache or rate limits.",
                id="messenger.E001",
            )
        )
    if settings.PRODUCTION and not settings.DATABASE_URL:
        problems.append(Error("PRODUCTION is on but DATABASE_URL is not set.", id="messenger.E002"))
    return problems


# Values that only ever appear in examples; a deployment running with one has no secret.
PLACEHOLDER_SECRETS = {"", "change-me", "changeme", "replace-me", "secret", "example"}


@register(Tags.security, deploy=True)
def check_master_key_present(app_configs: Any, **kwargs: Any) -> list[Any]:
    if settings.MASTER_KEY.strip().lower() in PLACEHOLDER_SECRETS:
        return [
            Error(
                "MASTER_KEY is empty or a placeholder: stored envelopes and blobs would be "
                "encrypted under a key anyone can guess.",
                hint="Put 32 random bytes (base64url) in the file named by MASTER_KEY_FILE.",
                id="messenger.E003",
            )
        ]
    return []


def unreadable_epoch_keys() -> list[int]:
    """Ids of the stored epoch keys that the current MASTER_KEY does not unwrap."""
    from cryptography.exceptions import InvalidTag

    from messenger import atrest
    from messenger.models import EpochKey

    unreadable = []
    # One row per epoch with live data (a few hundred at most): cheap to try them all.
    for key_id, epoch, wrapped in EpochKey.objects.values_list("pk", "epoch", "wrapped_key"):
        try:
            atrest._unwrap(epoch, bytes(wrapped))
        except (InvalidTag, ValueError):
            unreadable.append(key_id)
    return unreadable


@register(Tags.security, deploy=True)
def check_master_key_matches_stored_keys(app_configs: Any, **kwargs: Any) -> list[Any]:
    """A different master key than the one that wrapped the epoch keys reads nothing."""
    try:
        unreadable = unreadable_epoch_keys()
    except Exception:  # not migrated yet, or no database: nothing is wrapped yet
        return []
    if unreadable:
        return [
            Error(
                f"MASTER_KEY does not unwrap {len(unreadable)} of the epoch keys stored in "
                "the database: what they protect is unreadable, and new data for their "
                "epochs cannot be sealed.",
                hint="Restore the master key this database was used with. If it is lost: "
                "`manage rotate_keys --destroy-unreadable` (docs/operations.md).",
                id="messenger.E004",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_redis_reachable(app_configs: Any, **kwargs: Any) -> list[Any]:
    if not settings.REDIS_URL:
        return []
    import redis

    from messenger.beat import redis_client

    try:
        redis_client().ping()
    except redis.RedisError as exc:
        return [
            Error(
                f"Redis at REDIS_URL does not answer ({type(exc).__name__}): no channel "
                "layer, cache, rate limits or task queue.",
                id="messenger.E005",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_one_beat(app_configs: Any, **kwargs: Any) -> list[Any]:
    """Exactly one beat: more than one live heartbeat means a second beat was started."""
    if not settings.REDIS_URL:
        return []
    import redis

    from messenger.beat import alive_beats

    try:
        beats = alive_beats()
    except redis.RedisError:
        return []  # reported by check_redis_reachable
    if len(beats) > 1:
        return [
            Warning(
                f"{len(beats)} Celery beat processes are alive for this deployment; only "
                "one runs the schedule, the others wait on its lock.",
                hint="Run exactly one beat (the compose file's `beat` service).",
                id="messenger.W002",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_epoch_keys_destroyed_on_time(app_configs: Any, **kwargs: Any) -> list[Any]:
    """Epoch keys outliving their epoch mean beat is not running: no crypto-shredding."""
    from django.utils import timezone

    from messenger.atrest import DESTROY_GRACE_SECONDS
    from messenger.models import EpochKey

    # Beat destroys keys every PURGE_INTERVAL_SECONDS; allow two missed runs.
    late = DESTROY_GRACE_SECONDS + 2 * settings.PURGE_INTERVAL_SECONDS
    cutoff = (int(timezone.now().timestamp()) - late) // settings.EPOCH_SECONDS
    try:
        overdue = EpochKey.objects.filter(epoch__lt=cutoff).count()
    except Exception:  # not migrated yet, or no database: nothing to destroy
        return []
    if overdue:
        return [
            Warning(
                f"{overdue} at-rest epoch keys outlived their epoch: expired envelopes and "
                "blobs are not being crypto-shredded.",
                hint="Is Celery beat running? `manage.py rotate_keys` destroys them now.",
                id="messenger.W003",
            )
        ]
    return []
