"""Prekey-claim benchmark over HTTP on PostgreSQL, beside a bare indexed-read view.

Run:  .venv/bin/python bench/bench_keys.py
      options: --concurrency 8  --requests 2000  --handles 10  --admin-url postgres://...

Not a test: it prints figures for docs/benchmarks.md.

It creates a throwaway PostgreSQL database, migrates it, starts daphne with the command
line of messenger/processes.py on a free loopback port (settings bench.bench_keys_settings:
the project's settings plus one bare view), publishes `--handles` bundles of 200 + 200
one-time prekeys through the API, then runs, at a fixed concurrency and one after the
other in the same server:

  floor    GET /bench/no-database/<handle>: a Django view that answers without the database
  bare     GET /bench/indexed-read/<handle>: one primary-key read, no session, no limits
  claim    GET /api/v1/keys/<handle>: session check, rate limits, bundle row lock, two
           one-time prekeys deleted (one X25519, one ML-KEM-768), 1.7 KB JSON answer
  drained  the same claim once every one-time prekey is gone (last-resort keys only)

For each it prints requests per second, p50 and p99 latency, and the server's CPU time per
request (from /proc). The claim rate limits are raised for the run (they would otherwise
answer 429 after a few requests, which is their job) but still checked on every claim.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from courier.crypto.identity import Identity, bundle_to_json, generate_bundle  # noqa: E402
from messenger.codec import b64u_decode, b64u_encode  # noqa: E402
from messenger.processes import web_command  # noqa: E402  (imports nothing from Django)
from messenger.signing import signed_request_bytes  # noqa: E402

STOCK = 200  # one-time prekeys of each kind per handle (PREKEY_MAX_ONE_TIME)
BATCH = 50  # per PUT (PREKEY_MAX_BATCH)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def throwaway_database(admin_url: str):
    name = f"courier_bench_keys_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(database_url: str, data_dir: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)  # one process: the local-memory cache holds the counters
    env.update(
        DJANGO_SETTINGS_MODULE="bench.bench_keys_settings",
        DATABASE_URL=database_url,
        MESSENGER_DATA_DIR=data_dir,
        RATELIMIT_SESSION_MINT="100000/h",
        RATELIMIT_PER_SESSION="1000000/m",
        RATELIMIT_PREKEY_CLAIM_PER_HANDLE="1000000/h",
        RATELIMIT_PREKEY_CLAIM_PER_SESSION="1000000/h",
        RATELIMIT_PREKEY_PUBLISH="100000/h",
        LOG_LEVEL="WARNING",
    )
    return env


@contextmanager
def running_server(env: dict[str, str]):
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    port = free_port()
    process = subprocess.Popen(web_command("127.0.0.1", port), cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("daphne did not start")
            time.sleep(0.2)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def mint_session(client: httpx.Client) -> str:
    response = client.post("/api/v1/sessions")
    response.raise_for_status()
    return response.json()["token"]


def publish(client: httpx.Client, token: str, identity: Identity, handle: str) -> None:
    """200 + 200 one-time prekeys, in PUTs of 50 + 50 (top-up appends)."""
    for first in range(1, STOCK + 1, BATCH):
        ids = tuple(range(first, first + BATCH))
        bundle, _ = generate_bundle(
            identity,
            pq_last_resort_id=0,
            one_time_ids=ids,
            pq_one_time_ids=ids,
        )
        body = json.dumps(bundle_to_json(bundle)).encode()
        path = f"/api/v1/keys/{handle}"
        challenge = b64u_decode(client.post("/api/v1/challenges").json()["challenge"])
        signature = identity.sign(signed_request_bytes(challenge, "PUT", path, body))
        response = client.put(
            path,
            content=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "X-Courier-Challenge": b64u_encode(challenge),
                "X-Courier-Signature": b64u_encode(signature),
            },
        )
        if response.status_code not in (200, 201):
            raise RuntimeError(f"publish failed: {response.status_code} {response.text}")


def run_phase(
    base: str,
    pid: int,
    concurrency: int,
    total: int,
    path_for: Callable[[int], str],
    headers_for: Callable[[int], dict[str, str]],
    check: Callable[[httpx.Response], None],
) -> dict[str, float]:
    """`total` requests from `concurrency` threads, each with its own keep-alive client."""
    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(total))
    errors: list[str] = []

    def worker(slot: int) -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            mine = []
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    break
                started = time.perf_counter()
                response = client.get(path_for(index), headers=headers_for(slot))
                mine.append(time.perf_counter() - started)
                try:
                    check(response)
                except AssertionError as error:
                    errors.append(str(error))
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(concurrency)]
    cpu_before = cpu_seconds(pid)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds(pid) - cpu_before
    if errors:
        raise RuntimeError(f"{len(errors)} bad answers, first: {errors[0]}")
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "rps": len(ordered) / elapsed,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "cpu_us": cpu / len(ordered) * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--handles", type=int, default=10)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "BENCH_ADMIN_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"
        ),
        help="a PostgreSQL URL allowed to CREATE DATABASE",
    )
    args = parser.parse_args()
    if args.requests > args.handles * STOCK:
        parser.error(
            "--requests must not exceed --handles * 200 (the claims must hand out prekeys)"
        )

    data_dir = tempfile.mkdtemp(prefix="bench-keys-")
    try:
        with throwaway_database(args.admin_url) as database_url:
            env = server_env(database_url, data_dir)
            with running_server(env) as (base, pid):
                results = measure(base, pid, args)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    report(results, args)


def measure(base: str, pid: int, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    with httpx.Client(base_url=base, timeout=30) as client:
        tokens = [mint_session(client) for _ in range(args.concurrency)]
        identity = Identity.generate()
        handles = [b64u_encode(secrets.token_bytes(16)) for _ in range(args.handles)]
        for handle in handles:
            publish(client, tokens[0], identity, handle)

    def by_token(slot: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[slot]}"}

    def no_headers(slot: int) -> dict[str, str]:
        return {}

    def ok(response: httpx.Response) -> None:
        assert response.status_code == 200, f"{response.status_code} {response.text[:200]}"

    def one_time_handed_out(response: httpx.Response) -> None:
        ok(response)
        body = response.json()
        assert body["one_time_prekey"] and body["pq_one_time_prekey"], "no one-time prekey"

    def last_resort_only(response: httpx.Response) -> None:
        ok(response)
        assert response.json()["one_time_prekey"] is None, "a one-time prekey was left"

    def handle_path(prefix: str) -> Callable[[int], str]:
        return lambda index: prefix + handles[index % len(handles)]

    warm = min(200, args.requests)
    run_phase(base, pid, args.concurrency, warm, handle_path("/bench/indexed-read/"),
              no_headers, ok)  # fmt: skip
    results = {
        "floor": run_phase(base, pid, args.concurrency, args.requests,
                           handle_path("/bench/no-database/"), no_headers, ok),
        "bare": run_phase(base, pid, args.concurrency, args.requests,
                          handle_path("/bench/indexed-read/"), no_headers, ok),
        "claim": run_phase(base, pid, args.concurrency, args.requests,
                           handle_path("/api/v1/keys/"), by_token, one_time_handed_out),
    }  # fmt: skip
    # Drain what is left (not measured), then measure claims that find no one-time prekey.
    with httpx.Client(base_url=base, timeout=30, headers=by_token(0)) as client:
        for handle in handles:
            while client.get(f"/api/v1/keys/{handle}").json()["one_time_prekey"] is not None:
                pass
    results["drained"] = run_phase(
        base, pid, args.concurrency, args.requests, handle_path("/api/v1/keys/"), by_token,
        last_resort_only,
    )  # fmt: skip
    return results


def report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    print(
        f"concurrency {args.concurrency}, {args.requests} requests per row, "
        f"{args.handles} handles, PostgreSQL, one daphne process\n"
    )
    print("| endpoint | req/s | p50 ms | p99 ms | server CPU per request |")
    print("|---|---|---|---|---|")
    names = {
        "floor": "bare view, no database",
        "bare": "bare view, one indexed read",
        "claim": "claim (hands out 2 one-time prekeys)",
        "drained": "claim, stock exhausted (last resort)",
    }
    for key, name in names.items():
        row = results[key]
        print(
            f"| {name} | {row['rps']:.0f} | {row['p50_ms']:.2f} | {row['p99_ms']:.2f} "
            f"| {row['cpu_us']:.0f} us |"
        )


if __name__ == "__main__":
    main()
