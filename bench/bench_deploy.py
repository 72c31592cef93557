"""The compose topology on this machine: bring-up time, and push latency within a node and
across nodes (the doorbell over Redis).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/courier_bench \\
    REDIS_URL=redis://127.0.0.1:6379/11 .venv/bin/python bench/bench_deploy.py [--sends 200]

Starts migrate, two web nodes, a worker and beat through docker/entrypoint.sh with the
compose environment (tests/deploy/topology.py), in a throwaway database on that PostgreSQL
server. One owner socket listens; one client sends 1 KiB envelopes over HTTP one at a time
and waits for each push before sending the next. Latency = from the start of the POST to
the push frame on the socket. Rate limits are off (RATELIMIT_ENABLE=false) so the
limits do not shape the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "messenger.settings")

import django  # noqa: E402

django.setup()

from tests.deploy.test_scale_out import new_mailbox, send  # noqa: E402
from tests.deploy.topology import Deployment, own_database, topology_environment  # noqa: E402
from tests.support.relay_protocol import ack_frame, make_envelope, parse_push  # noqa: E402


def latencies(deployment: Deployment, sender: str, receiver: str, sends: int) -> list[float]:
    tx, rx = deployment.node(sender), deployment.node(receiver)
    token = rx.session()
    owner, send_id, receive_id = new_mailbox(rx, token)
    socket = rx.socket(token)
    socket.subscribe(owner, receive_id)
    assert socket.json()["type"] == "subscribed"
    results = []
    try:
        for _ in range(sends):
            started = time.perf_counter()
            send(tx, token, send_id, make_envelope(1024))
            while True:
                frame = socket.recv(timeout=10)
                if isinstance(frame, bytes):
                    break
            results.append((time.perf_counter() - started) * 1000)
            socket.ws.send(ack_frame([parse_push(frame).id]))
    finally:
        socket.close()
    return results


def describe(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sends", type=int, default=200)
    options = parser.parse_args()
    server, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not server.startswith("postgres") or not redis_url:
        raise SystemExit("set DATABASE_URL (PostgreSQL) and REDIS_URL")
    with tempfile.TemporaryDirectory() as tmp, own_database(server) as database_url:
        env = topology_environment(Path(tmp), database_url, redis_url)
        env["RATELIMIT_ENABLE"] = "false"
        (Path(tmp) / "logs").mkdir()
        deployment = Deployment(env, Path(tmp) / "logs", database_url)
        try:
            started = time.perf_counter()
            assert deployment.entrypoint("migrate").returncode == 0
            migrated = time.perf_counter()
            deployment.start("worker", "worker", "--concurrency", "2")
            deployment.start("beat", "beat")
            deployment.start_web("web-a")
            deployment.start_web("web-b")
            ready = time.perf_counter()
            print(f"migrate (empty database): {migrated - started:.1f} s")
            print(f"two web nodes answering /healthz after migrate: {ready - migrated:.1f} s")
            same = latencies(deployment, "web-a", "web-a", options.sends)
            cross = latencies(deployment, "web-a", "web-b", options.sends)
            print(f"push latency, same node ({options.sends} sends): {describe(same)}")
            print(f"push latency, across nodes ({options.sends} sends): {describe(cross)}")
        finally:
            deployment.stop_all()


if __name__ == "__main__":
    main()
