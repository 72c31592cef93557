"""What the deployment tests share: the compose file as data, .env.example, and the
environment a compose service would see, rebuilt on this machine."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ENTRYPOINT = DOCKER / "entrypoint.sh"

# Variables compose or Caddy read, not the Django settings.
DEPLOYMENT_ONLY_VARIABLES = {"COURIER_DOMAIN", "COURIER_TLS", "ACME_EMAIL"}
_ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def load_compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def app_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run the Courier image (and so its entrypoint)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if "build" in service or str(service.get("image", "")).startswith("courier:")
    }


def env_example() -> tuple[dict[str, str], set[str]]:
    """(assigned variables -> value, every variable named, assigned or commented)."""
    assigned: dict[str, str] = {}
    named: set[str] = set()
    for line in (DOCKER / ".env.example").read_text().splitlines():
        match = _ASSIGNMENT.match(line.strip())
        if not match:
            continue
        commented, name, value = match.groups()
        named.add(name)
        if not commented:
            assigned[name] = value
    return assigned, named


_READ_VARIABLES = """
import json, os
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messenger.settings")
django.setup()
from messenger.env import READ_VARIABLES
print(json.dumps(sorted(READ_VARIABLES)))
"""


def settings_variables(tmp_path: Path) -> set[str]:
    """Every variable the settings read, over the embedded default and a full production
    configuration (some are read only when another one switches a part on)."""
    secret = tmp_path / "secret"
    secret.write_text(secrets.token_urlsafe(48))
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    configurations = [
        {"MESSENGER_DATA_DIR": str(tmp_path / "embedded")},
        {
            "MESSENGER_DATA_DIR": str(tmp_path / "production"),
            "PRODUCTION": "true",
            "SECRET_KEY_FILE": str(secret),
            "MASTER_KEY_FILE": str(secret),
            "DATABASE_URL": "postgres://courier@db:5432/courier",
            "REDIS_URL": "redis://redis:6379/0",
            "S3_BUCKET": "bucket",
        },
    ]
    names: set[str] = set()
    for extra in configurations:
        output = subprocess.run(
            [sys.executable, "-c", _READ_VARIABLES],
            cwd=ROOT,
            env={**clean, **extra},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        names |= set(json.loads(output.strip().splitlines()[-1]))
    return names


def process_env(**extra: str) -> dict[str, str]:
    """The host's environment for a server process started through the entrypoint."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PYTEST_") and k not in ("DJANGO_SETTINGS_MODULE",)
    }
    env["PYTHON"] = sys.executable
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def compose_environment(
    tmp_path: Path, *, service: str, database_url: str, redis_url: str
) -> dict[str, str]:
    """What a compose service's processes see: .env.example's assignments, the service's
    `environment:`, its secrets as files, with this machine's PostgreSQL and Redis."""
    compose = load_compose()
    assigned, _ = env_example()
    service_env = dict(app_services(compose)[service].get("environment") or {})
    secrets_dir = tmp_path / "run-secrets"
    secrets_dir.mkdir(exist_ok=True)
    for name in compose["secrets"]:
        path = secrets_dir / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48 if name == "secret_key" else 32))
    environment = {**assigned, **{k: str(v) for k, v in service_env.items()}}
    for name, value in list(environment.items()):
        if value.startswith("/run/secrets/"):
            environment[name] = str(secrets_dir / Path(value).name)
    # The machine's services stand in for the db and redis containers. The password file
    # is not ours to use here: the local PostgreSQL trusts loopback.
    environment.pop("POSTGRES_PASSWORD_FILE", None)
    environment.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        MESSENGER_DATA_DIR=str(tmp_path / "state"),
        BLOB_STORAGE_DIR=str(tmp_path / "blobs"),
    )
    return process_env(**environment)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
