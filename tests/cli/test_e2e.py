"""End to end: two people, each a separate `courier` process per command, on a real server
(daphne, a Celery worker and beat) on loopback. Then a scan of everything the server stored
and logged: no plaintext, no private key, no address."""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from courier.api import b64u, unb64u
from courier.store import Store
from tests.cli.e2e import Person, count_rows, find_leaks, stored_and_logged
from tests.support.servers import ServerStack

pytestmark = pytest.mark.e2e

FILE_SIZE = 20 * 1024 * 1024
FILE_MARKER = b"COURIER-E2E-FILE-PLAINTEXT-MARKER"
TIMER = 8


def meet(alice: Person, bob: Person) -> None:
    """Alice adds Bob's link; Bob's client accepts and names her; her client learns his
    pairwise mailbox."""
    link = bob.run("link", "--no-qr").stdout.strip()
    assert link.startswith("https://127.0.0.1:")
    alice.run("add", link, "bob")
    (new,) = [e for e in bob.events("receive") if e["event"] == "contact"]
    bob.run("rename", new["contact"], "alice")
    alice.run("receive")


def texts(events: list[dict]) -> list[str]:
    return [e["message"]["body"] for e in events if e["event"] == "message"]


def identity_secrets(person: Person) -> dict[str, bytes]:
    state = Store(person.home, person.passphrase).load()
    identity = unb64u(state["identity"])
    seed, dh = identity[:32], identity[32:]
    out = {}
    for label, key in (("signing seed", seed), ("identity DH key", dh)):
        out[f"{person.name}'s {label}"] = key
        out[f"{person.name}'s {label} (hex)"] = key.hex().encode()
        out[f"{person.name}'s {label} (base64url)"] = b64u(key).encode()
    out[f"{person.name}'s identity (as stored in the state)"] = state["identity"].encode()
    return out


def make_file(path: Path) -> bytes:
    """20 MiB: random bytes with a marker every MiB, so a plaintext copy would be found."""
    block = 1024 * 1024
    parts = [FILE_MARKER + os.urandom(block - len(FILE_MARKER)) for _ in range(FILE_SIZE // block)]
    data = b"".join(parts)
    path.write_bytes(data)
    return data


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ServerStack]:
    env = {"PURGE_INTERVAL_SECONDS": "1", "TIME_GRANULARITY_SECONDS": "1"}
    with ServerStack(tmp_path / "server", worker=True, beat=True, env=env) as running:
        yield running


def test_two_people_chat_through_a_restart_send_20_mb_and_the_server_learns_nothing(
    stack: ServerStack, tmp_path: Path
) -> None:
    alice = Person("alice", tmp_path / "alice", stack.url())
    bob = Person("bob", tmp_path / "bob", stack.url())
    alice.run("init", "--server", stack.url())
    bob.run("init", "--server", stack.url())
    meet(alice, bob)

    said = {
        "a1": "Hello Bob, it is Alice: the rendezvous is at the old mill",
        "b1": "Hi Alice! Bob here, the old mill at noon suits me",
        "a2": "After the restart: bring the blue notebook",
        "b2": "Got the notebook file, digest checks out",
    }
    alice.run("send", "bob", said["a1"])
    assert texts(bob.events("receive")) == [said["a1"]]
    bob.run("send", "alice", said["b1"])
    assert texts(alice.events("receive")) == [said["b1"]]

    listener = bob.listen("--progress")
    try:
        listener.wait_for("status", timeout=30)
        for name in ("web0", "worker", "beat"):
            stack.restart(name)
        alice.run("send", "bob", said["a2"])
        listener.wait_for("message", body=said["a2"])

        source = tmp_path / "notebook.bin"
        data = make_file(source)
        sent = alice.run("send-file", "bob", str(source), "--progress", timeout=120)
        assert "100%" in sent.stderr
        done = listener.wait_for("download", timeout=120, name="notebook.bin")
    finally:
        err = listener.stop()
    assert "Traceback" not in err
    assert "Downloading [" in err and "100%" in err  # the receiving progress bar
    received = Path(done["text"])
    assert hashlib.sha256(received.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert received.is_relative_to(bob.home / "downloads")

    bob.run("send", "alice", said["b2"])
    assert texts(alice.events("receive")) == [said["b2"]]
    history = alice.events("messages", "bob")[0]
    assert [m["body"] for m in history if m["type"] == "text"] == [
        said["a1"],
        said["b1"],
        said["a2"],
        said["b2"],
    ]
    assert [m["name"] for m in history if m["type"] == "file"] == ["notebook.bin"]

    # Everything the server stored and logged, after a clean stop.
    stack.stop()
    stored = stored_and_logged(stack)
    blob_bytes = sum(len(v) for k, v in stored.items() if k.startswith("blobs/"))
    assert blob_bytes >= FILE_SIZE  # the encrypted file really is in what was scanned
    assert any(k.startswith("logs/") for k in stored)
    needles: dict[str, bytes] = {f"message {k}": v.encode() for k, v in said.items()}
    needles |= {f"message {k} (part)": v.encode()[:20] for k, v in said.items()}
    needles["file marker"] = FILE_MARKER
    for offset in (100, 5_000_000, FILE_SIZE - 64):
        needles[f"file bytes at {offset}"] = data[offset : offset + 32]
    needles |= identity_secrets(alice) | identity_secrets(bob)
    needles["loopback name"] = b"localhost:"
    assert find_leaks(stored, needles) == []
    # The scan itself finds what it looks for.
    planted = {"planted": b"x 127.0.0.1 x" + said["a1"].encode() + FILE_MARKER}
    assert len(find_leaks(planted, needles)) == 4


def test_disappearing_messages_are_gone_from_both_clients_and_the_server(
    stack: ServerStack, tmp_path: Path
) -> None:
    alice = Person("alice", tmp_path / "alice", stack.url())
    bob = Person("bob", tmp_path / "bob", stack.url())
    alice.run("init", "--server", stack.url())
    bob.run("init", "--server", stack.url())
    meet(alice, bob)
    # Long enough that a loaded machine still checks everything inside the window.
    alice.run("timer", "bob", str(TIMER))
    alice.run("send", "bob", "this message will self-destruct")
    events = bob.events("receive")
    assert [e["event"] for e in events] == ["timer", "message"]
    bob.run("send", "alice", "so will this reply")
    assert texts(alice.events("receive")) == ["so will this reply"]
    # One more that Bob does not fetch: only the server's expiry and purge can remove it.
    alice.run("send", "bob", "never fetched")
    sent_at = time.monotonic()
    assert count_rows(stack, "relay_envelope") >= 1  # and Alice's receipt for Bob's reply
    shown = [m.get("body") for m in alice.events("messages", "bob")[0]]
    assert "so will this reply" in shown and "never fetched" in shown

    def gone(check: Callable[[], bool]) -> bool:
        deadline = sent_at + TIMER + 20
        while not check():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True

    assert gone(lambda: alice.events("messages", "bob")[0] == [])
    assert gone(lambda: bob.events("messages", "alice")[0] == [])
    assert time.monotonic() - sent_at >= TIMER - 2  # not long before their time
    assert gone(lambda: count_rows(stack, "relay_envelope") == 0)
    # It was the purge job (beat -> worker) that deleted the envelope nobody fetched.
    assert re.search(r"relay\.purge_expired\[.*'envelopes': [1-9]", stack.log_text("worker"))
    assert bob.events("receive") == []
    # The timer itself stays agreed on both sides.
    assert f"timer {TIMER} s" in bob.run("contacts").stdout
    assert f"timer {TIMER} s" in alice.run("contacts").stdout
