"""Relay benchmark: the Courier relay on daphne beside a minimal `websockets` relay.

Run:  .venv/bin/python bench/bench_relay.py
      options: --pairs 20 --step-seconds 5 --rates 100,200,400,...  --connections 1000,5000
               --admin-url postgres://postgres@127.0.0.1:5432/postgres

Not a test: it prints figures for docs/benchmarks.md. Loopback only; every loop is bounded.

Both relays run in the production configuration on this machine: PostgreSQL (a throwaway
database each) and one throwaway redis-server. The Courier relay is one daphne process
started by tests/support/servers.py with the command line of messenger/processes.py;
the baseline is bench/minimal_relay.py (plain `websockets`, INSERT + commit per envelope,
Redis PUBLISH doorbell, fetch by id, delete on ack; no auth, no encryption, no limits).

1. Latency ladder, open loop: `--pairs` senders each send 1 KiB envelopes over a socket at
   a fixed share of the offered rate to their own mailbox; one receiver socket per mailbox
   acknowledges every 20 ms. Latency is from just before the sender's frame is written to
   the moment the receiver has the push (same process, same clock). Each step sends for
   `--step-seconds`, then waits up to 5 s for stragglers. A step passes with zero loss and
   p99 < 50 ms; a server's ladder stops after its first failing step.
2. Memory per idle connection: RSS of the server process (VmRSS) before and after opening
   N sockets (Courier: authenticated, no subscription; minimal: connected).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from tests.support.relay_client import create_mailbox, mint_session  # noqa: E402
from tests.support.relay_protocol import (  # noqa: E402
    PUSH_HEADER,
    auth_frame,
    b64u,
    send_frame,
    subscribe_frame,
    unb64u,
)
from tests.support.servers import RedisServer, ServerStack, free_port  # noqa: E402

FILLER = b"\x00" * 1024
STAMP = struct.Struct(">dQ")  # send time (perf_counter), unique message number


def envelope(number: int) -> bytes:
    head = b"\x01" + STAMP.pack(time.perf_counter(), number)
    return head + FILLER[: 1024 - len(head)]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the two relays, behind one interface -------------------------------------------------


class Target:
    name = ""
    pid = 0

    async def open(self) -> ClientConnection:
        raise NotImplementedError

    async def receiver(self) -> tuple[ClientConnection, bytes]:
        """A socket subscribed to a fresh mailbox, and that mailbox's send id."""
        raise NotImplementedError


class Courier(Target):
    name = "courier (daphne + Channels)"

    def __init__(self, stack: ServerStack) -> None:
        self.stack = stack
        self.pid = stack.processes["web0"].popen.pid  # type: ignore[union-attr]
        self.token = mint_session(stack.url())

    async def open(self) -> ClientConnection:
        socket = await connect(
            self.stack.ws_url(), origin=self.stack.origin(), max_size=2**17, open_timeout=30
        )
        await socket.send(auth_frame(self.token))
        ready = json.loads(await socket.recv())
        socket.challenge = unb64u(ready["challenge"])  # type: ignore[attr-defined]
        return socket

    async def receiver(self) -> tuple[ClientConnection, bytes]:
        mailbox = await asyncio.to_thread(create_mailbox, self.stack.url(), self.token)
        socket = await self.open()
        frame = subscribe_frame(mailbox.owner, socket.challenge, mailbox.receive_id)  # type: ignore[attr-defined]
        await socket.send(frame)
        assert json.loads(await socket.recv())["type"] == "subscribed"
        return socket, mailbox.send_id


class Minimal(Target):
    name = "minimal (websockets)"

    def __init__(self, port: int, pid: int) -> None:
        self.url = f"ws://127.0.0.1:{port}"
        self.pid = pid

    async def open(self) -> ClientConnection:
        return await connect(self.url, max_size=2**17, open_timeout=30)

    async def receiver(self) -> tuple[ClientConnection, bytes]:
        mailbox = secrets.token_bytes(16)
        socket = await self.open()
        await socket.send(json.dumps({"type": "subscribe", "receive_id": b64u(mailbox)}))
        assert json.loads(await socket.recv())["type"] == "subscribed"
        return socket, mailbox


# --- latency ladder ----------------------------------------------------------------------


@dataclass
class Step:
    rate: int
    sent: int = 0
    accepted: int = 0
    latencies: list[float] = field(default_factory=list)
    received: set[int] = field(default_factory=set)
    cpu: float = 0.0

    @property
    def lost(self) -> int:
        return self.sent - len(self.received)

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    @property
    def passed(self) -> bool:
        return self.sent > 0 and self.lost == 0 and self.percentile(0.99) < 50


class Ladder:
    def __init__(self, target: Target, pairs: int) -> None:
        self.target = target
        self.pairs = pairs
        self.counter = 0

    async def setup(self) -> None:
        self.receivers = [await self.target.receiver() for _ in range(self.pairs)]
        self.senders = [await self.target.open() for _ in range(self.pairs)]

    async def close(self) -> None:
        for socket in [s for s, _ in self.receivers] + self.senders:
            with contextlib.suppress(Exception):
                await socket.close()

    async def run(self, rate: int, seconds: float) -> Step:
        step = Step(rate)
        stop = asyncio.Event()
        cpu_before = cpu_seconds(self.target.pid)

        async def send(socket: ClientConnection, send_id: bytes, offset: float) -> None:
            interval = self.pairs / rate
            start = time.perf_counter() + offset
            end = start + seconds
            due = start
            while due < end:
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                self.counter += 1
                await socket.send(send_frame(self.counter, send_id, envelope(self.counter), 600))
                step.sent += 1
                due += interval

        async def read_replies(socket: ClientConnection) -> None:
            with contextlib.suppress(asyncio.CancelledError):
                while True:
                    reply = json.loads(await socket.recv())
                    if reply.get("type") == "accepted":
                        step.accepted += 1

        async def receive(socket: ClientConnection) -> None:
            pending: list[str] = []

            async def flush() -> None:
                while not stop.is_set() or pending:
                    await asyncio.sleep(0.02)
                    if pending:
                        ids = pending[:100]
                        del pending[:100]
                        await socket.send(json.dumps({"type": "ack", "ids": ids}))

            flusher = asyncio.create_task(flush())
            with contextlib.suppress(asyncio.CancelledError):
                while True:
                    frame = await socket.recv()
                    if not isinstance(frame, bytes):
                        continue
                    now = time.perf_counter()
                    envelope_id = frame[1:17]
                    sent_at, number = STAMP.unpack_from(frame, PUSH_HEADER.size + 1)
                    if number not in step.received:
                        step.received.add(number)
                        step.latencies.append(now - sent_at)
                    pending.append(b64u(envelope_id))
            flusher.cancel()

        readers = [asyncio.create_task(receive(s)) for s, _ in self.receivers]
        repliers = [asyncio.create_task(read_replies(s)) for s in self.senders]
        await asyncio.gather(
            *(
                send(sender, send_id, i / rate)
                for i, (sender, (_, send_id)) in enumerate(
                    zip(self.senders, self.receivers, strict=True)
                )
            )
        )
        deadline = time.perf_counter() + 5
        while len(step.received) < step.sent and time.perf_counter() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.sleep(0.1)
        for task in readers + repliers:
            task.cancel()
        await asyncio.gather(*readers, *repliers, return_exceptions=True)
        step.cpu = cpu_seconds(self.target.pid) - cpu_before
        return step


async def ladder(target: Target, rates: list[int], pairs: int, seconds: float) -> list[Step]:
    runner = Ladder(target, pairs)
    await runner.setup()
    steps = []
    try:
        await runner.run(min(rates), 1.0)  # warm-up
        for rate in rates:
            step = await runner.run(rate, seconds)
            steps.append(step)
            print(
                f"  {target.name}: {rate}/s sent {step.sent} received {len(step.received)}"
                f" p50 {step.percentile(0.5):.2f} ms p99 {step.percentile(0.99):.2f} ms"
                f" cpu/msg {step.cpu / max(1, step.sent) * 1e6:.0f} us",
                flush=True,
            )
            if not step.passed:
                break
            await asyncio.sleep(1)
    finally:
        await runner.close()
    return steps


# --- idle connections --------------------------------------------------------------------


async def idle_memory(target: Target, counts: list[int]) -> list[tuple[int, int, float, float]]:
    """(connections, RSS KiB, KiB per connection over the baseline, seconds to open)."""
    sockets: list[ClientConnection] = []
    await asyncio.sleep(1)
    baseline = rss_kib(target.pid)
    results = []
    try:
        for count in counts:
            started = time.perf_counter()
            while len(sockets) < count:
                batch = min(100, count - len(sockets))
                sockets += await asyncio.gather(*(target.open() for _ in range(batch)))
            opened = time.perf_counter() - started
            await asyncio.sleep(2)
            rss = rss_kib(target.pid)
            results.append((count, rss, (rss - baseline) / count, opened))
            print(f"  {target.name}: {count} idle sockets, RSS {rss} KiB", flush=True)
    finally:
        for batch_start in range(0, len(sockets), 200):
            await asyncio.gather(
                *(s.close() for s in sockets[batch_start : batch_start + 200]),
                return_exceptions=True,
            )
    return results


# --- orchestration -----------------------------------------------------------------------


def throwaway_database(admin_url: str) -> tuple[str, str]:
    name = f"bench_relay_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name, urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))


def drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(results: dict[str, tuple[list[Step], list[tuple[int, int, float, float]]]]) -> str:
    lines = ["| relay | offered msg/s | sent | lost | p50 ms | p99 ms | server CPU/msg |"]
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for name, (steps, _) in results.items():
        for s in steps:
            cpu = s.cpu / max(1, s.sent) * 1e6
            lines.append(
                f"| {name} | {s.rate} | {s.sent} | {s.lost} | {s.percentile(0.5):.2f} |"
                f" {s.percentile(0.99):.2f} | {cpu:.0f} us |"
            )
    lines += ["", "| relay | highest rate with 0 loss and p99 < 50 ms | p99 there |"]
    lines.append("|---|---:|---:|")
    for name, (steps, _) in results.items():
        good = [s for s in steps if s.passed]
        best = max(good, key=lambda s: s.rate) if good else None
        lines.append(
            f"| {name} | {best.rate if best else 0} | "
            f"{best.percentile(0.99) if best else float('nan'):.2f} ms |"
        )
    lines += ["", "| relay | idle sockets | server RSS KiB | KiB per socket | seconds to open |"]
    lines.append("|---|---:|---:|---:|---:|")
    for name, (_, memory) in results.items():
        for count, rss, per, opened in memory:
            lines.append(f"| {name} | {count} | {rss} | {per:.1f} | {opened:.1f} |")
    return "\n".join(lines)


async def bench(args: argparse.Namespace) -> None:
    rates = [int(r) for r in args.rates.split(",")]
    counts = [int(c) for c in args.connections.split(",")]
    os.environ["DATABASE_URL"] = args.admin_url
    work = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    results = {}
    with RedisServer(work / "redis") as redis:
        env = {
            "RATELIMIT_ENABLE": "false",
            # One socket per sender carries its whole share of the offered rate.
            "RELAY_WS_RATE_PER_SECOND": "100000",
            "RELAY_WS_RATE_BURST": "100000",
        }
        print("starting the Courier relay (daphne, PostgreSQL, Redis)", flush=True)
        with ServerStack(work / "courier", database="postgres", redis_url=redis.url, env=env) as st:
            courier = Courier(st)
            steps = await ladder(courier, rates, args.pairs, args.step_seconds)
            memory = await idle_memory(courier, counts)
            results[courier.name] = (steps, memory)
        print("starting the minimal relay (websockets, PostgreSQL, Redis)", flush=True)
        name, url = throwaway_database(args.admin_url)
        port = free_port()
        log = (work / "minimal.log").open("wb")
        process = subprocess.Popen(  # noqa: ASYNC220 - once, before any measurement
            [
                sys.executable,
                str(ROOT / "bench" / "minimal_relay.py"),
                "--port",
                str(port),
                "--database-url",
                url,
                "--redis-url",
                redis.url,
            ],
            stdout=subprocess.PIPE,
            stderr=log,
        )
        try:
            assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
            minimal = Minimal(port, process.pid)
            steps = await ladder(minimal, rates, args.pairs, args.step_seconds)
            memory = await idle_memory(minimal, counts)
            results[minimal.name] = (steps, memory)
        finally:
            process.terminate()
            process.wait(10)
            drop_database(args.admin_url, name)
    print()
    print(report(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--step-seconds", type=float, default=5)
    parser.add_argument("--rates", default="100,200,300,400,600,800,1000,1300,1600,2000,2500,3000")
    parser.add_argument("--connections", default="1000,5000")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
