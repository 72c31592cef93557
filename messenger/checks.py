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
        problems.append(
            Error("PRODUCTION is on but DATABASE_URL is not set.", id="messenger.E002")
        )
    return problems
