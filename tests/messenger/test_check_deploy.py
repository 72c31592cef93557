"""`manage.py check --deploy` is clean under production settings."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.postgres
@pytest.mark.redis
def test_check_deploy_reports_nothing_with_production_variables(tmp_path: Path) -> None:
    env = dict(os.environ)
    assert env.get("DATABASE_URL", "").startswith("postgres"), "needs the PostgreSQL pass"
    env.update(
        MESSENGER_DATA_DIR=str(tmp_path),
        PRODUCTION="true",
        SECRET_KEY="x" * 30 + "Yz-09_" * 8,
        MASTER_KEY=secrets.token_urlsafe(32),
        ALLOWED_HOSTS="chat.example.org",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
