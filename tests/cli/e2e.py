"""Helpers of the end-to-end tests: the `courier` command line as separate processes, and a
scan of everything a server stack stored and logged."""

from __future__ import annotations

import json
import os
import queue
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.support.servers import ServerStack

ROOT = Path(__file__).resolve().parents[2]


class Person:
    """One user: a home directory, a passphrase, and `courier` run as a new process each time."""

    def __init__(self, name: str, home: Path, server: str) -> None:
        self.name = name
        self.home = home
        self.server = server
        self.passphrase = f"the passphrase of {name}, long enough"
        self.env = {
            **os.environ,
            "COURIER_PASSPHRASE": self.passphrase,
            "COURIER_SCRYPT_LOG2_N": "12",
            "PYTHONUNBUFFERED": "1",
        }

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "courier.cli", "--home", str(self.home), *args]

    def run(self, *args: str, ok: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        done = subprocess.run(
            self.command(*args),
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if ok:
            assert done.returncode == 0, f"courier {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    def events(self, *args: str) -> list[dict[str, Any]]:
        out = self.run(*args, "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def listen(self, *args: str) -> Listener:
        return Listener(self, args)


class Listener:
    """`courier listen --json` in the background; its output lines are read as they come."""

    def __init__(self, person: Person, args: tuple[str, ...]) -> None:
        self.process = subprocess.Popen(
            person.command("listen", "--json", *args),
            cwd=ROOT,
            env=person.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.strip():
                self.lines.put(json.loads(line))

    def wait_for(self, event: str, timeout: float = 60, **match: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(item)
            message = item.get("message", {})
            if item["event"] == event and all(message.get(k) == v for k, v in match.items()):
                return item
        raise AssertionError(f"no {event} {match} within {timeout}s; saw {self.seen}")

    def stop(self) -> str:
        self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


def database_bytes(stack: ServerStack) -> bytes:
    """The whole database: pg_dump of the stack's PostgreSQL database, or nothing for SQLite
    (its file, with WAL and journal, is in the data folder the scan reads anyway)."""
    if stack.database.kind != "postgres":
        return b""
    return subprocess.run(
        ["pg_dump", "--no-owner", "--data-only", stack.database.url],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout


def stored_and_logged(stack: ServerStack) -> dict[str, bytes]:
    """Every file under the stack's data folder (database, blobs, broker, beat schedule, logs),
    plus the PostgreSQL dump when there is one."""
    found = {
        str(path.relative_to(stack.data_dir)): path.read_bytes()
        for path in stack.data_dir.rglob("*")
        if path.is_file()
    }
    found["pg_dump"] = database_bytes(stack)
    return found


def count_rows(stack: ServerStack, table: str) -> int:
    if stack.database.kind == "postgres":
        import psycopg

        with psycopg.connect(stack.database.url) as conn:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    with sqlite3.connect(stack.data_dir / "db.sqlite3") as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


IPV4 = re.compile(rb"(?<![0-9.])(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?![0-9.])")


def find_leaks(haystack: dict[str, bytes], needles: dict[str, bytes]) -> list[str]:
    leaks = []
    for where, data in haystack.items():
        for what, needle in needles.items():
            if needle and needle in data:
                leaks.append(f"{what} in {where}")
        for match in IPV4.finditer(data):
            leaks.append(f"address {match.group().decode()} in {where}")
        if b"[::1]" in data or b"::ffff:" in data:
            leaks.append(f"IPv6 address in {where}")
    return leaks
