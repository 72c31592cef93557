"""Real server processes on loopback, for end-to-end tests and benchmarks.

    from tests.support.servers import RedisServer, ServerStack

    with ServerStack(tmp_path, web_nodes=2, redis_url=redis.url) as stack:
        httpx.get(stack.url(0) + "/healthz")
        stack.kill("web0")        # SIGKILL, no goodbye
        stack.restart("web0")     # same port, waits for /healthz

What a stack gives each test:
- its own MESSENGER_DATA_DIR (secrets, blobs, Celery's filesystem broker, logs/);
- its own database, migrated with `manage.py migrate`: a SQLite file in the data folder,
  or, when the test run has a PostgreSQL `DATABASE_URL` (the second pass of `make test`),
  a throwaway database on that server, created with psycopg and dropped by `stop()`;
- the processes of messenger/processes.py (the production command lines): `web0`..`webN`
  (daphne on free loopback ports), optionally `worker` (Celery) and `beat`;
- `REDIS_URL` only when given (then the channel layer, cache and broker use it; pass a
  `RedisServer` of the test's own when the test restarts Redis);
- logs in `<data dir>/logs/<name>.log`, appended across restarts, and a tail of them in
  the error when a process dies or never becomes healthy.

Every process is stopped (SIGTERM, then SIGKILL) when the stack stops, even if the test
failed. Nothing here touches the machine's own Redis or databases other than the one it
created.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import httpx

from messenger.processes import beat_command, web_command, worker_command

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
# Variables of the test run that must not leak into a stack's processes: the stack sets
# its own database, Redis and data folder.
_ISOLATED = ("DATABASE_URL", "REDIS_URL", "MESSENGER_DATA_DIR", "SECRET_KEY", "MASTER_KEY")


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ManagedProcess:
    """One server process with a log file; it can be killed and started again."""

    def __init__(self, name: str, command: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.command = command
        self.env = dict(env)
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self.name} is already running")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            out.write(f"\n===== start {self.name} at {time.time():.3f}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to flush, commit or say goodbye."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self, timeout: float = 10) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.terminate()
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self) -> str:
        return _tail(self.log)


class RedisServer:
    """A throwaway redis-server on a free loopback port, with no persistence.

    For tests that kill or restart Redis; the machine's own Redis is never touched.
    `restart()` keeps the port, so clients reconnect to the same URL.
    """

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.data_dir),
        ]
        self.process = ManagedProcess(
            "redis", command, os.environ, self.data_dir / "logs" / "redis.log"
        )

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive:
                raise RuntimeError(f"redis-server exited:\n{self.process.tail()}")
            with suppress(OSError), socket.create_connection((HOST, self.port), 0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer:\n{self.process.tail()}")

    def kill(self) -> None:
        self.process.kill()

    def restart(self) -> None:
        self.process.kill()
        self.start()

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Database:
    """The stack's database: a SQLite file in the data folder, or a throwaway PostgreSQL one."""

    def __init__(self, kind: str) -> None:
        base = os.environ.get("DATABASE_URL", "")
        if kind == "auto":
            kind = "postgres" if base.startswith("postgres") else "sqlite"
        if kind == "postgres" and not base.startswith("postgres"):
            raise RuntimeError("a PostgreSQL stack needs the test run's DATABASE_URL")
        self.kind = kind
        self._base = base
        self.name = f"courier_e2e_{secrets.token_hex(6)}"
        self.url = ""

    def _admin(self):
        import psycopg

        parts = urlsplit(self._base)
        admin = urlunsplit(parts._replace(path="/postgres"))
        return psycopg.connect(admin, autocommit=True)

    def create(self) -> dict[str, str]:
        if self.kind == "sqlite":
            return {}
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = urlunsplit(urlsplit(self._base)._replace(path=f"/{self.name}"))
        return {"DATABASE_URL": self.url}

    def drop(self) -> None:
        if self.kind != "postgres" or not self.url:
            return
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.url = ""


class ServerStack:
    """daphne node(s), optionally a Celery worker and beat, on a data folder of their own.

    Process names: `web0`, `web1`, ... (one per `web_nodes`), `worker`, `beat`.
    `env` adds or overrides variables for every process (e.g. `RATELIMIT_ENABLE=false`,
    `PURGE_INTERVAL_SECONDS=1`). `database` is "auto" (PostgreSQL when the test run has a
    PostgreSQL DATABASE_URL, else SQLite), "sqlite" or "postgres".
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        web_nodes: int = 1,
        worker: bool = False,
        beat: bool = False,
        redis_url: str | None = None,
        database: str = "auto",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.logs = self.data_dir / "logs"
        self.database = _Database(database)
        self.redis_url = redis_url
        self.ports = [free_port() for _ in range(web_nodes)]
        self._extra_env = dict(env or {})
        self._want_worker, self._want_beat = worker, beat
        self.processes: dict[str, ManagedProcess] = {}
        self.env: dict[str, str] = {}

    # --- addresses ---------------------------------------------------------------------------

    def url(self, node: int = 0) -> str:
        return f"http://{HOST}:{self.ports[node]}"

    def ws_url(self, node: int = 0) -> str:
        return f"ws://{HOST}:{self.ports[node]}/ws/v1/relay"

    def origin(self, node: int = 0) -> str:
        """The Origin header a same-site page would send (the WebSocket handshake checks it)."""
        return self.url(node)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ServerStack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in _ISOLATED}
        env.update(
            {
                "MESSENGER_DATA_DIR": str(self.data_dir),
                "DJANGO_SETTINGS_MODULE": "messenger.settings",
                "PYTHONUNBUFFERED": "1",
                # Every process of the stack shares these, as production nodes do.
                "SECRET_KEY": secrets.token_urlsafe(48),
                "MASTER_KEY": secrets.token_urlsafe(32),
            }
        )
        if self.redis_url:
            env["REDIS_URL"] = self.redis_url
        try:
            env.update(self.database.create())
            env.update(self._extra_env)
            self.env = env
            self._migrate()
            for node, port in enumerate(self.ports):
                self._add(f"web{node}", web_command(HOST, port))
            if self._want_worker:
                self._add("worker", worker_command(concurrency=1))
            if self._want_beat:
                self._add("beat", beat_command())
            for process in self.processes.values():
                process.start()
            for node in range(len(self.ports)):
                self.wait_healthy(node)
        except BaseException:
            self.stop()
            raise
        return self

    def _migrate(self) -> None:
        log = self.logs / "migrate.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            result = subprocess.run(
                [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{_tail(log)}")

    def _add(self, name: str, command: list[str]) -> None:
        self.processes[name] = ManagedProcess(name, command, self.env, self.logs / f"{name}.log")

    def wait_healthy(self, node: int = 0, timeout: float = 30) -> None:
        """Wait until web node `node` answers /healthz with 200."""
        process = self.processes[f"web{node}"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not process.alive:
                raise RuntimeError(f"{process.name} exited:\n{process.tail()}")
            with suppress(httpx.HTTPError):
                if httpx.get(self.url(node) + "/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{process.name} never became healthy:\n{process.tail()}")

    def kill(self, name: str) -> None:
        """SIGKILL one process (`web0`, `worker`, ...)."""
        self.processes[name].kill()

    def restart(self, name: str) -> None:
        """Kill (if alive) and start a process again; web nodes keep their port."""
        process = self.processes[name]
        process.kill()
        process.start()
        if name.startswith("web"):
            self.wait_healthy(int(name[3:]))

    def stop(self) -> None:
        for process in self.processes.values():
            with suppress(Exception):
                process.stop()
        self.database.drop()

    def log_text(self, name: str) -> str:
        return self.processes[name].log.read_text(errors="replace")

    def __enter__(self) -> ServerStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def running_stack(data_dir: Path, **options: object) -> Iterator[ServerStack]:
    """`with running_stack(tmp_path, worker=True) as stack:` — the same as ServerStack(...)."""
    stack = ServerStack(data_dir, **options)  # type: ignore[arg-type]
    with stack:
        yield stack
