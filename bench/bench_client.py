"""Python client benchmark: the library end to end against a real server stack on loopback.

Run:  .venv/bin/python bench/bench_client.py            (about a minute)
      options: --messages 50  --file-mib 20

Not a test: it prints figures for docs/benchmarks.md.

- first contact: add a link, the peer accepts the intro and answers reply_here, the adder reads
  it (claim, PQXDH, two mailboxes, two envelopes);
- message latency: send_text until the peer's listen() (relay socket push) reports it;
- HTTP receive: send_text, then one receive() (owner-signed fetch + ack) on the other side;
- file: send_file (encrypt + upload) and the peer's download (fetch + decrypt + digest) in MB/s;
- state: one store transaction (lock, load, AES-GCM, atomic write + fsync) with the history.

The server is daphne + a Celery worker + beat from tests/support/servers.py (embedded SQLite).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("COURIER_SCRYPT_LOG2_N", "15")

from courier.client import Courier, Event  # noqa: E402
from tests.support.servers import ServerStack  # noqa: E402


def ms(values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"median {statistics.median(values) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--file-mib", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-client-") as tmp:
        base = Path(tmp)
        env = {"RATELIMIT_ENABLE": "false"}
        with ServerStack(base / "server", worker=True, beat=True, database="sqlite", env=env) as s:
            started = time.perf_counter()
            alice = Courier.create(base / "alice", "alice passphrase", s.url())
            bob = Courier.create(base / "bob", "bob passphrase", s.url())
            print(
                f"init (identity, 20+20 one-time prekeys, intro mailbox), per client: "
                f"{(time.perf_counter() - started) / 2 * 1000:.0f} ms"
            )

            started = time.perf_counter()
            alice.add_contact(bob.contact_link(), "bob")
            (new,) = [e.contact for e in bob.receive() if e.kind == "contact"]
            bob.rename(new, "alice")
            alice.receive()
            print(
                f"first contact (link to pairwise mailboxes on both sides): "
                f"{(time.perf_counter() - started) * 1000:.0f} ms"
            )

            fetch = []
            for i in range(args.messages):
                t0 = time.perf_counter()
                alice.send_text("bob", f"http {i}")
                assert [e.message["body"] for e in bob.receive()] == [f"http {i}"]
                fetch.append(time.perf_counter() - t0)
            print(f"send_text + receive() over HTTP, {args.messages} messages: {ms(fetch)}")

            got: dict[str, float] = {}
            stop = threading.Event()
            listener = Courier(bob.home, "bob passphrase")
            ready = threading.Event()

            def on_event(event: Event) -> None:
                if event.kind == "message":
                    got[event.message["body"]] = time.perf_counter()

            thread = threading.Thread(
                target=listener.listen,
                args=(on_event,),
                kwargs={
                    "stop": stop.is_set,
                    "on_status": lambda _s: ready.set(),
                    "download": False,
                },
                daemon=True,
            )
            thread.start()
            ready.wait(30)
            push = []
            for i in range(args.messages):
                body = f"push {i}"
                t0 = time.perf_counter()
                alice.send_text("bob", body)
                while body not in got:
                    time.sleep(0.001)
                push.append(got[body] - t0)
            stop.set()
            thread.join(10)
            listener.close()
            print(
                f"send_text until listen() reports it (relay push), {args.messages} messages:"
                f" {ms(push)}"
            )

            size = args.file_mib * 1024 * 1024
            source = base / "file.bin"
            source.write_bytes(os.urandom(size))
            t0 = time.perf_counter()
            alice.send_file("bob", source)
            up = time.perf_counter() - t0
            t0 = time.perf_counter()
            events = bob.receive()
            down = time.perf_counter() - t0
            (saved,) = [Path(e.text) for e in events if e.kind == "download"]
            assert saved.read_bytes() == source.read_bytes()
            print(
                f"file of {args.file_mib} MiB: send_file {size / up / 1e6:.1f} MB/s "
                f"({up:.2f} s), receive + download + digest {size / down / 1e6:.1f} MB/s "
                f"({down:.2f} s)"
            )

            times = []
            for _ in range(20):
                t0 = time.perf_counter()
                with bob.store.transaction():
                    pass
                times.append(time.perf_counter() - t0)
            state_size = (bob.home / "state.bin").stat().st_size
            print(
                f"state transaction ({state_size // 1024} KiB state, "
                f"{len(bob.messages('alice'))} messages): {ms(times)}"
            )
            t0 = time.perf_counter()
            Courier(bob.home, "bob passphrase").contacts()
            print(
                f"unlock with the passphrase (scrypt n=2^15, r=8) + load: "
                f"{(time.perf_counter() - t0) * 1000:.0f} ms"
            )
            alice.close()
            bob.close()


if __name__ == "__main__":
    main()
