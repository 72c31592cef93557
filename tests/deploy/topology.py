"""The compose topology run on this machine: every process started by docker/entrypoint.sh.

No Docker engine runs here, so the containers' processes run directly: `migrate`, N
`web` nodes on loopback ports, one `worker` and one `beat`, all with the environment a
compose service gets (tests/deploy/support.py), against a database of their own on this
machine's PostgreSQL and this machine's Redis. The test client plays Caddy's part: it
sends `X-Forwarded-Proto: https`, which the nodes read through --proxy-headers.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import httpx
import psycopg
from websockets.sync.client import ClientConnection, connect

from messenger.codec import b64u_decode, b64u_encode
from messenger.sessions import solve_proof_of_work
from messenger.signing import signed_request_bytes
from tests.deploy.support import ENTRYPOINT, ROOT, compose_environment, wait_for
from tests.support.relay_protocol import Owner, auth_frame, subscribe_frame
from tests.support.servers import HOST, ManagedProcess, free_port

PROXY_HEADERS = {"X-Forwarded-Proto": "https"}
# Every session token the clients were given, so a test can look for them in the logs.
MINTED_TOKENS: list[str] = []


@contextmanager
def own_database(server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database on the server of `server_url`; dropped after."""
    name = f"courier_topology_{secrets.token_hex(4)}"
    admin = urlunsplit(urlsplit(server_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Deployment:
    """The compose services as processes: each one `sh docker/entrypoint.sh <role> ...`,
    managed by tests/support/servers.py's ManagedProcess (logs, SIGTERM/SIGKILL)."""

    env: dict[str, str]
    logs: Path
    database_url: str
    processes: dict[str, ManagedProcess] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    # --- processes -------------------------------------------------------------------
    def entrypoint(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a one-shot role or `manage <command>` to completion."""
        return subprocess.run(
            ["sh", str(ENTRYPOINT), *args],
            cwd="/",  # the script finds the repository itself
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, name: str, *args: str) -> ManagedProcess:
        # The entrypoint execs into the server, so the process's pid is the server's own
        # and signals reach daphne or celery directly, as `docker stop` would.
        process = ManagedProcess(
            name, ["sh", str(ENTRYPOINT), *args], self.env, self.logs / f"{name}.log"
        )
        self.processes[name] = process
        process.start()
        return process

    def start_web(self, name: str) -> int:
        port = free_port()
        self.ports[name] = port
        self.start(name, "web", "--host", HOST, "--port", str(port), "--proxy-headers")
        wait_for(lambda: self._healthy(name, port), 60, f"{name} to answer /healthz")
        return port

    def _healthy(self, name: str, port: int) -> bool:
        assert self.processes[name].alive, f"{name} exited:\n{self.processes[name].tail()}"
        try:
            return httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, name: str) -> None:
        self.processes[name].stop(timeout=20)

    def kill(self, name: str) -> None:
        self.processes[name].kill()

    def stop_all(self) -> None:
        # SIGTERM to all first, so they shut down side by side.
        for process in self.processes.values():
            if process.alive:
                process.popen.terminate()
        for process in self.processes.values():
            process.stop(timeout=20)

    def log(self, name: str) -> str:
        return self.processes[name].log.read_text(errors="replace")

    # --- clients ---------------------------------------------------------------------
    def node(self, name: str) -> Node:
        return Node(self.ports[name])


class Node:
    """A client of one ASGI node, as a browser behind Caddy would be."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers=PROXY_HEADERS, timeout=20
        )

    def session(self) -> str:
        challenge = self.http.post("/api/v1/challenges").json()
        raw = b64u_decode(challenge["challenge"])
        nonce = solve_proof_of_work(raw, challenge["pow_difficulty"])
        answer = self.http.post(
            "/api/v1/sessions",
            json={"challenge": challenge["challenge"], "nonce": b64u_encode(nonce)},
        )
        assert answer.status_code == 201, answer.text
        MINTED_TOKENS.append(answer.json()["token"])
        return answer.json()["token"]

    def signed_headers(self, sign: Any, method: str, path: str, body: bytes = b"") -> dict:
        """X-Courier-* headers over a fresh challenge, signed by `sign(message)`."""
        challenge = b64u_decode(self.http.post("/api/v1/challenges").json()["challenge"])
        return {
            "X-Courier-Challenge": b64u_encode(challenge),
            "X-Courier-Signature": b64u_encode(
                sign(signed_request_bytes(challenge, method, path, body))
            ),
        }

    def socket(self, token: str) -> Socket:
        return Socket(self.port, token)


class Socket:
    """/ws/v1/relay on one node: auth, subscribe, receive pushes, ack."""

    def __init__(self, port: int, token: str) -> None:
        self._connection = connect(
            f"ws://127.0.0.1:{port}/ws/v1/relay", origin="http://127.0.0.1", proxy=None
        )
        self.ws: ClientConnection = self._connection.__enter__()
        self.ws.send(auth_frame(token))
        ready = self.json()
        assert ready["type"] == "ready", ready
        self.challenge = b64u_decode(ready["challenge"])
        self.lock = threading.Lock()

    def json(self, timeout: float = 10) -> dict[str, Any]:
        message = self.ws.recv(timeout=timeout)
        assert isinstance(message, str), "expected a JSON frame"
        return json.loads(message)

    def subscribe(self, owner: Owner, receive_id: bytes) -> None:
        self.ws.send(subscribe_frame(owner, self.challenge, receive_id))

    def recv(self, timeout: float = 10) -> str | bytes:
        return self.ws.recv(timeout=timeout)

    def close(self) -> None:
        self._connection.__exit__(None, None, None)


def topology_environment(tmp: Path, database_url: str, redis_url: str) -> dict[str, str]:
    env = compose_environment(tmp, service="web", database_url=database_url, redis_url=redis_url)
    # What the test changes, and why: clients reach the nodes as 127.0.0.1 rather than
    # through Caddy under the domain; proof of work stays on but cheap; beat runs the jobs
    # every 2 seconds; stored times are exact, so something expires when the test says.
    env.update(
        ALLOWED_HOSTS=f"{env['ALLOWED_HOSTS']},127.0.0.1",
        POW_DIFFICULTY="4",
        PURGE_INTERVAL_SECONDS="2",
        TIME_GRANULARITY_SECONDS="1",
        LOG_LEVEL="INFO",
    )
    return env


def deployment_id_for(database_url: str) -> str:
    from messenger.beat import deployment_id

    return deployment_id(dj_database_url.parse(database_url, conn_max_age=0))


__all__ = ["ROOT", "Deployment", "Node", "Socket", "own_database", "topology_environment"]
