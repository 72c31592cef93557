"""The README's run command: the embedded server, its worker and beat, on loopback.

This starts `manage.py serve` exactly as `make run` does, with no external service, and
checks what a person and a load balancer see, that beat and the worker really run the
periodic jobs, and that nothing in the processes' output names an address or a token.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.e2e, pytest.mark.sqlite_only]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    data = tmp_path_factory.mktemp("embedded")
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "PRODUCTION", "SECRET_KEY", "MASTER_KEY")
    }
    env.update(MESSENGER_DATA_DIR=str(data), PURGE_INTERVAL_SECONDS="2")
    log = open(data / "server.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.3)
    else:
        process.kill()
        raise AssertionError((data / "server.log").read_text())
    yield {"base": base, "data": data, "log": data / "server.log", "process": process}
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    log.close()


def test_it_serves_the_landing_page_health_and_policy(embedded: dict) -> None:
    base = embedded["base"]
    landing = httpx.get(base + "/")
    assert landing.status_code == 200 and "text/html" in landing.headers["content-type"]
    assert httpx.get(base + "/healthz").json() == {"status": "ok"}
    policy = httpx.get(base + "/api/v1/policy").json()
    assert policy["envelopes"]["bucket_sizes"]


def test_it_prints_the_url(embedded: dict) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if embedded["base"] + "/" in embedded["log"].read_text():
            return
        time.sleep(0.2)
    raise AssertionError("the run command did not print its URL")


def test_the_worker_and_beat_purge_expired_sessions(embedded: dict) -> None:
    token = httpx.post(embedded["base"] + "/api/v1/sessions").json()["token"]
    assert token
    db = sqlite3.connect(embedded["data"] / "db.sqlite3", timeout=30)
    with db:
        db.execute("UPDATE messenger_anonymoussession SET expires_at = '2000-01-01 00:00:00'")
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        (count,) = db.execute("SELECT count(*) FROM messenger_anonymoussession").fetchone()
        if count == 0:
            break
        time.sleep(0.5)
    db.close()
    assert count == 0, embedded["log"].read_text()[-3000:]
    assert "messenger.purge_expired_sessions" in embedded["log"].read_text()


def test_logs_hold_no_address_token_or_path_after_a_burst(embedded: dict) -> None:
    base = embedded["base"]
    tokens = []
    with httpx.Client(headers={"User-Agent": "burst-agent/1.0"}) as http:
        for _ in range(20):
            tokens.append(http.post(base + "/api/v1/sessions").json()["token"])
            http.get(base + "/api/v1/policy")
            http.get(base + "/no/such/capability-path-xyz")
            http.post(base + "/api/v1/sessions", content="{bad", headers={"Content-Type": "a/b"})
        for token in tokens:
            http.delete(base + "/api/v1/sessions", headers={"Authorization": f"Bearer {token}"})
    time.sleep(1)
    # The URL the run command prints for its operator is the only address allowed.
    log = embedded["log"].read_text().replace(base, "")
    assert "127.0.0.1" not in log
    assert not re.search(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}:\d+", log)
    assert "burst-agent" not in log
    assert "capability-path-xyz" not in log
    for token in tokens:
        assert token not in log
