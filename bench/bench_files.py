"""Blob store benchmark and memory check, against real daphne processes on loopback.

Run:  .venv/bin/python bench/bench_files.py            (both parts, about a minute)
      .venv/bin/python bench/bench_files.py --part speed | --part memory
      options: --speed-mib 100  --memory-mib 200  --chunk 4194304

Not a test: it prints figures for docs/benchmarks.md.

speed:  upload and download MB/s of a 100 MiB blob through the blob API (session, create,
        PUT every chunk, GET every chunk), beside a bare ASGI handler under the same daphne
        command line that writes each request body to a file and serves it back: the cost
        of the API, the database rows and the at-rest AES-GCM on top of moving the bytes.
memory: peak RSS of the server process (VmHWM, and VmRSS sampled every 20 ms) while a
        200 MiB blob goes up and comes down. Memory must stay flat: at most a few chunks
        are held at any time, never the blob.

Each run gets its own data folder (SQLite, blob storage, secrets) and free ports, and
removes them afterwards. The server processes come from messenger/processes.py.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from messenger.processes import web_command  # noqa: E402  (imports nothing from Django)

MIB = 1024 * 1024


# --- The bare handler: what moving the bytes costs under daphne, and nothing else ---------
BARE_DIR = os.environ.get("BENCH_BARE_DIR", tempfile.gettempdir())


async def bare_application(scope, receive, send):  # type: ignore[no-untyped-def]
    """PUT /<name>: write the body to a file. GET /<name>: send the file back."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            pass
        return
    path = Path(BARE_DIR) / (scope["path"].strip("/").replace("/", "_") or "body")
    if scope["method"] == "PUT":
        # Plain blocking writes, as the sync Django view does in its thread: one client only.
        with open(path, "wb") as out:  # noqa: ASYNC230
            while True:
                message = await receive()
                out.write(message.get("body", b""))
                if not message.get("more_body"):
                    break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    size = path.stat().st_size
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % size)]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    with open(path, "rb") as source:  # noqa: ASYNC230
        while piece := source.read(64 * 1024):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


# --- Processes ------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # The embedded default: no PostgreSQL, Redis or S3 from the caller's shell.
        if key not in {"DATABASE_URL", "REDIS_URL", "S3_BUCKET", "DJANGO_SETTINGS_MODULE"}
    }
    env.update(
        MESSENGER_DATA_DIR=str(data_dir),
        BENCH_BARE_DIR=str(data_dir / "bare"),
        POW_DIFFICULTY="0",
        RATELIMIT_PER_SESSION="100000/m",
        RATELIMIT_BLOB_CHUNKS="100000/m",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def server(app: str, data_dir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    command = [*web_command("127.0.0.1", port)[:-1], app]
    process = subprocess.Popen(command, cwd=ROOT, env=server_env(data_dir))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{app} did not start") from None
                time.sleep(0.1)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextmanager
def data_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="courier-bench-files-"))
    (folder / "bare").mkdir()
    try:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
            cwd=ROOT,
            env=server_env(folder),
            check=True,
        )
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- The blob API as a client uses it ----------------------------------------------------------
class BlobClient:
    def __init__(self, base: str) -> None:
        import httpx

        self.http = httpx.Client(base_url=base, timeout=120)
        token = self.http.post("/api/v1/sessions").raise_for_status().json()["token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def create(self, chunk_size: int, chunk_count: int) -> dict:
        body = {"chunk_size": chunk_size, "chunk_count": chunk_count, "max_downloads": 5}
        return self.http.post("/api/v1/blobs", json=body).raise_for_status().json()

    def put(self, blob: dict, index: int, data: bytes) -> None:
        headers = {"Authorization": f"Capability {blob['upload_capability']}"}
        url = f"/api/v1/blobs/{blob['blob_id']}/chunks/{index}"
        self.http.put(url, content=data, headers=headers).raise_for_status()

    def get(self, blob: dict, index: int) -> int:
        headers = {"Authorization": f"Capability {blob['download_capability']}"}
        url = f"/api/v1/blobs/{blob['blob_id']}/chunks/{index}"
        received = 0
        with self.http.stream("GET", url, headers=headers) as response:
            response.raise_for_status()
            for piece in response.iter_bytes():
                received += len(piece)
        return received


def chunk_data(chunk_size: int, index: int) -> bytes:
    # Random-looking like real client ciphertext, cheap to make: a fresh prefix per chunk.
    return os.urandom(64) + (index.to_bytes(8, "big") * (chunk_size // 8))[: chunk_size - 64]


# --- speed ---------------------------------------------------------------------------------
def mbps(size: int, seconds: float) -> float:
    return size / seconds / 1e6


def run_speed(total_mib: int, chunk_size: int, rounds: int) -> dict[str, float]:
    """Median of `rounds` rounds per figure; each round is a fresh blob of `total_mib`."""
    import httpx

    count = total_mib * MIB // chunk_size
    size = count * chunk_size
    chunks = [chunk_data(chunk_size, index) for index in range(count)]
    samples: dict[str, list[float]] = {
        name: [] for name in ("api_up", "api_down", "bare_up", "bare_down")
    }
    with data_folder() as folder:
        with server("messenger.asgi:application", folder) as (base, _):
            client = BlobClient(base)
            warm = client.create(chunk_size, 1)
            client.put(warm, 0, chunks[0])
            client.get(warm, 0)
            for _ in range(rounds):
                blob = client.create(chunk_size, count)
                start = time.perf_counter()
                for index, data in enumerate(chunks):
                    client.put(blob, index, data)
                samples["api_up"].append(mbps(size, time.perf_counter() - start))
                start = time.perf_counter()
                got = sum(client.get(blob, index) for index in range(count))
                samples["api_down"].append(mbps(size, time.perf_counter() - start))
                assert got == size
        with server("bench.bench_files:bare_application", folder) as (base, _):
            http = httpx.Client(base_url=base, timeout=120)
            http.put("/warm", content=chunks[0]).raise_for_status()
            for _ in range(rounds):
                start = time.perf_counter()
                for index, data in enumerate(chunks):
                    http.put(f"/c{index}", content=data).raise_for_status()
                samples["bare_up"].append(mbps(size, time.perf_counter() - start))
                start = time.perf_counter()
                got = 0
                for index in range(count):
                    with http.stream("GET", f"/c{index}") as response:
                        for piece in response.iter_bytes():
                            got += len(piece)
                samples["bare_down"].append(mbps(size, time.perf_counter() - start))
                assert got == size
    return {name: statistics.median(values) for name, values in samples.items()}


# --- memory --------------------------------------------------------------------------------
def proc_status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class RssSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, proc_status_kib(self.pid, "VmRSS"))
            except (OSError, KeyError):
                return
            time.sleep(0.02)

    def take_peak(self) -> int:
        peak, self.peak = self.peak, 0
        return peak


def run_memory(total_mib: int, chunk_size: int) -> list[tuple[str, int]]:
    count = total_mib * MIB // chunk_size
    rows: list[tuple[str, int]] = []
    with data_folder() as folder, server("messenger.asgi:application", folder) as (base, proc):
        client = BlobClient(base)
        warm = client.create(chunk_size, 2)
        for index in range(2):
            client.put(warm, index, chunk_data(chunk_size, index))
        client.get(warm, 0)
        client.get(warm, 1)
        rows.append(
            ("after start and a 2-chunk warm-up (VmRSS)", proc_status_kib(proc.pid, "VmRSS"))
        )
        sampler = RssSampler(proc.pid)
        sampler.start()
        blob = client.create(chunk_size, count)
        quarter = max(1, count // 4)
        for index in range(count):
            client.put(blob, index, chunk_data(chunk_size, index))
            if (index + 1) % quarter == 0:
                done = (index + 1) * chunk_size // MIB
                rows.append((f"peak VmRSS while uploading, up to {done} MiB", sampler.take_peak()))
        files = (folder / "blobs" / blob["blob_id"]).iterdir()
        stored = sum(path.stat().st_size for path in files)
        for index in range(count):
            assert client.get(blob, index) == chunk_size
            if (index + 1) % quarter == 0:
                done = (index + 1) * chunk_size // MIB
                rows.append(
                    (f"peak VmRSS while downloading, up to {done} MiB", sampler.take_peak())
                )
        sampler.stop.set()
        rows.append(("VmHWM (peak RSS of the whole run)", proc_status_kib(proc.pid, "VmHWM")))
        rows.append(("the blob's sealed chunks on disk", stored // 1024))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["speed", "memory", "both"], default="both")
    parser.add_argument("--speed-mib", type=int, default=100)
    parser.add_argument("--memory-mib", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=4 * MIB)
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds (median)")
    args = parser.parse_args()
    print(f"# Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, chunk {args.chunk} bytes")
    if args.part in ("speed", "both"):
        speed = run_speed(args.speed_mib, args.chunk, args.rounds)
        print(
            f"\n## {args.speed_mib} MiB over loopback, median of {args.rounds} (MB/s = 10^6 B/s)\n"
        )
        print("| path | upload MB/s | download MB/s |")
        print("|---|---:|---:|")
        print(
            f"| blob API (daphne + Django + at-rest AES-GCM + SQLite) "
            f"| {speed['api_up']:.0f} | {speed['api_down']:.0f} |"
        )
        print(
            f"| bare ASGI handler, body to disk (same daphne) "
            f"| {speed['bare_up']:.0f} | {speed['bare_down']:.0f} |"
        )
    if args.part in ("memory", "both"):
        rows = run_memory(args.memory_mib, args.chunk)
        print(f"\n## Server RSS while a {args.memory_mib} MiB blob goes up and comes down\n")
        print("| moment | KiB |")
        print("|---|---:|")
        for label, kib in rows:
            print(f"| {label} | {kib} |")


if __name__ == "__main__":
    main()
