"""Print the effective policy and configuration, with every secret hidden."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.core.management.base import BaseCommand

from messenger.atrest import _master_key
from messenger.env import READ_VARIABLES
from messenger.policy import current_policy

# Variables whose value is a secret: shown only as "set" / "not set".
SECRET_VARIABLES = {"SECRET_KEY", "MASTER_KEY", "S3_SECRET_ACCESS_KEY", "S3_ACCESS_KEY_ID"}
HIDDEN = "[hidden]"


def hide_url_password(url: str) -> str:
    """postgres://user:pw@host/db -> postgres://user:[hidden]@host/db"""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{HIDDEN}@{netloc[1]}"))


def shown_value(name: str, value: str) -> str:
    if name in SECRET_VARIABLES:
        return HIDDEN if value else ""
    if name.endswith("_URL"):
        return hide_url_password(value)
    return value


def master_key_id() -> str:
    """A short fingerprint of the master key, to compare nodes; not the key."""
    return hashlib.sha256(b"courier master key id\x00" + _master_key()).hexdigest()[:12]


def effective_configuration() -> dict[str, Any]:
    database = settings.DATABASES["default"]
    storage = cast(dict[str, Any], settings.STORAGES["blobs"])
    variables = {
        name: shown_value(name, os.environ[name])
        for name in sorted(READ_VARIABLES)
        if name in os.environ
    }
    return {
        "policy": current_policy(),
        "configuration": {
            "production": settings.PRODUCTION,
            "allowed_hosts": settings.ALLOWED_HOSTS,
            "database": {
                "engine": database["ENGINE"],
                "host": str(database.get("HOST") or ""),
                "port": str(database.get("PORT") or ""),
                "name": str(database["NAME"]),
            },
            "redis": hide_url_password(settings.REDIS_URL) or None,
            "blob_storage": {
                "backend": storage["BACKEND"],
                "location": storage["OPTIONS"].get("location")
                or storage["OPTIONS"].get("bucket_name"),
            },
            "secret_key": "set" if settings.SECRET_KEY else "missing",
            "master_key": {"set": bool(settings.MASTER_KEY), "id": master_key_id()},
            "https_redirect": settings.SECURE_SSL_REDIRECT,
            "hsts_seconds": settings.SECURE_HSTS_SECONDS,
            "purge_interval_seconds": settings.PURGE_INTERVAL_SECONDS,
            "metrics_enabled": settings.METRICS_ENABLED,
            "rate_limits_enabled": settings.RATELIMIT_ENABLE,
            "log_level": settings.LOG_LEVEL,
            "beat_schedule": {
                name: {
                    "task": entry["task"],
                    "every_seconds": entry["schedule"].total_seconds(),  # type: ignore[attr-defined]
                }
                for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
            },
        },
        "environment": variables,
    }


class Command(BaseCommand):
    help = "Print the effective policy and configuration as JSON; secrets are hidden."

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write(json.dumps(effective_configuration(), indent=2, default=str))
