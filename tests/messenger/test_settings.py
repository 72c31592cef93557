"""The settings switch from the embedded default to PostgreSQL and Redis by variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "db": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "pow": settings.POW_DIFFICULTY,
    "hsts": settings.SECURE_HSTS_SECONDS,
    "ssl_redirect": settings.SECURE_SSL_REDIRECT,
}))
"""
PRODUCTION_ONLY = ("DATABASE_URL", "REDIS_URL", "PRODUCTION", "SECRET_KEY", "MASTER_KEY")


def probe(tmp_path: Path, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ONLY}
    clean.update(MESSENGER_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="messenger.settings")
    clean.update(env)
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_embedded_default_needs_no_external_service(tmp_path: Path) -> None:
    config = probe(tmp_path)
    assert config["db"] == "django.db.backends.sqlite3"
    assert config["db_name"].startswith(str(tmp_path))
    assert config["layer"] == "channels.layers.InMemoryChannelLayer"
    assert config["cache"].endswith("LocMemCache")
    assert config["broker"] == "filesystem://"
    assert config["pow"] == 0


def test_the_embedded_default_keeps_generated_secrets_private(tmp_path: Path) -> None:
    probe(tmp_path)
    for name in ("secret_key", "master_key"):
        path = tmp_path / "secrets" / name
        assert path.stat().st_mode & 0o777 == 0o600
        assert len(path.read_text()) >= 40
    # The same secrets are read back on the next start.
    first = (tmp_path / "secrets" / "master_key").read_text()
    probe(tmp_path)
    assert (tmp_path / "secrets" / "master_key").read_text() == first


def test_database_and_redis_urls_switch_to_postgresql_and_redis(tmp_path: Path) -> None:
    config = probe(
        tmp_path,
        DATABASE_URL="postgres://courier@db.example:5432/courier",
        REDIS_URL="redis://cache.example:6379/0",
    )
    assert config["db"] == "django.db.backends.postgresql"
    assert config["layer"].startswith("channels_redis.")
    assert config["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert config["broker"] == "redis://cache.example:6379/0"


def test_production_requires_secrets_and_turns_on_https_and_proof_of_work(
    tmp_path: Path,
) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ONLY}
    clean.update(MESSENGER_DATA_DIR=str(tmp_path), PRODUCTION="true")
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr
    secret = tmp_path / "secret"
    secret.write_text("s" * 50)
    config = probe(tmp_path, PRODUCTION="true", SECRET_KEY_FILE=str(secret), MASTER_KEY="m" * 43)
    assert config["pow"] >= 16
    assert config["hsts"] >= 15552000
    assert config["ssl_redirect"] is True


def test_a_malformed_variable_is_refused_with_its_name(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ONLY}
    clean.update(MESSENGER_DATA_DIR=str(tmp_path), ENVELOPE_MAX_TTL_SECONDS="a week")
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=clean, capture_output=True, text=True
    )
    assert result.returncode != 0 and "ENVELOPE_MAX_TTL_SECONDS" in result.stderr


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db
def test_the_production_pass_really_runs_on_postgresql_and_redis() -> None:
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection

    assert connection.vendor == "postgresql"
    assert settings.CACHES["default"]["BACKEND"].endswith("RedisCache")
    cache.set("probe", "1")
    assert cache.get("probe") == "1"
