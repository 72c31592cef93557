"""Small typed readers for the environment variables that configure the server.

Every variable the settings read goes through these helpers, so the README table,
`.env.example` and the deployment checks can be compared against one list
(`READ_VARIABLES`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

READ_VARIABLES: set[str] = set()


def env_str(name: str, default: str = "") -> str:
    READ_VARIABLES.add(name)
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = env_str(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be a boolean (true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = env_str(name, "").strip()
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def env_int_list(name: str, default: list[int]) -> list[int]:
    raw = env_str(name, "").strip()
    if raw == "":
        return list(default)
    try:
        return sorted(int(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"{name} must be a comma-separated list of integers") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env_str(name, "").strip()
    if raw == "":
        return list(default)
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_secret(name: str, *, data_dir: Path | None, generate_bytes: int) -> str:
    """Read a secret from NAME, or from the file named by NAME_FILE.

    When neither is set and `data_dir` is given (the embedded default), the secret is
    generated once and kept in `data_dir/secrets/<name>` with 0600 permissions, so a
    laptop install needs no configuration and keeps its keys across restarts. In
    production `data_dir` is None and a missing secret is an error.
    """
    value = env_str(name, "")
    if value:
        return value.strip()
    file_name = env_str(f"{name}_FILE", "")
    if file_name:
        return Path(file_name).read_text().strip()
    if data_dir is None:
        raise RuntimeError(f"{name} or {name}_FILE must be set in production")
    folder = data_dir / "secrets"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / name.lower()
    if not path.exists():
        # O_EXCL: two processes starting at once must not both write a different secret.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(generate_bytes))
    os.chmod(path, 0o600)
    return path.read_text().strip()


def env_optional_secret(name: str) -> str:
    """A secret that may be absent: NAME, or the contents of the file named by NAME_FILE."""
    value = env_str(name, "")
    if value:
        return value.strip()
    file_name = env_str(f"{name}_FILE", "")
    return Path(file_name).read_text().strip() if file_name else ""
