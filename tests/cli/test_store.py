"""The encrypted state file: what a wrong passphrase, a damaged file or a crash do to it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from courier import store
from courier.store import CorruptState, NoState, StateExists, Store, WrongPassphrase


@pytest.fixture(autouse=True)
def _cheap_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    # The parameters are stored in the file, so a lower cost in tests changes nothing else.
    monkeypatch.setenv("COURIER_SCRYPT_LOG2_N", "12")


def test_it_round_trips_the_state_under_the_passphrase(tmp_path: Path) -> None:
    Store(tmp_path, "correct horse").create({"hello": "world", "n": 1})
    assert Store(tmp_path, "correct horse").load() == {"hello": "world", "n": 1}


def test_it_keeps_nothing_readable_on_disk(tmp_path: Path) -> None:
    secret = "a very particular plaintext"
    Store(tmp_path, "pw").create({"body": secret})
    raw = (tmp_path / store.STATE_FILE).read_bytes()
    assert secret.encode() not in raw and b"body" not in raw


def test_it_refuses_a_wrong_passphrase(tmp_path: Path) -> None:
    Store(tmp_path, "right").create({"a": 1})
    with pytest.raises(WrongPassphrase):
        Store(tmp_path, "wrong").load()


def test_it_detects_a_flipped_bit_in_the_ciphertext(tmp_path: Path) -> None:
    Store(tmp_path, "pw").create({"a": 1})
    path = tmp_path / store.STATE_FILE
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptState):
        Store(tmp_path, "pw").load()


def test_it_detects_a_tampered_header(tmp_path: Path) -> None:
    Store(tmp_path, "pw").create({"a": 1})
    path = tmp_path / store.STATE_FILE
    data = bytearray(path.read_bytes())
    nonce_at = store.HEADER.size - 1  # last byte of the nonce, which is authenticated data
    data[nonce_at] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptState):
        Store(tmp_path, "pw").load()


@pytest.mark.parametrize("keep", [0, 10, store.HEADER.size, store.HEADER.size + 20])
def test_it_detects_a_truncated_file(tmp_path: Path, keep: int) -> None:
    Store(tmp_path, "pw").create({"a": "x" * 100})
    path = tmp_path / store.STATE_FILE
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(CorruptState):
        Store(tmp_path, "pw").load()


def test_it_says_when_there_is_no_state(tmp_path: Path) -> None:
    with pytest.raises(NoState):
        Store(tmp_path, "pw").load()


def test_it_will_not_create_over_an_existing_state(tmp_path: Path) -> None:
    Store(tmp_path, "pw").create({"a": 1})
    with pytest.raises(StateExists):
        Store(tmp_path, "other").create({"b": 2})
    assert Store(tmp_path, "pw").load() == {"a": 1}


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    s = Store(tmp_path, "pw")
    s.create({"count": 1})
    before = (tmp_path / store.STATE_FILE).read_bytes()
    with pytest.raises(RuntimeError), s.transaction() as state:
        state["count"] = 2
        raise RuntimeError("boom")
    assert (tmp_path / store.STATE_FILE).read_bytes() == before
    assert s.load() == {"count": 1}


def test_every_write_uses_a_fresh_nonce(tmp_path: Path) -> None:
    s = Store(tmp_path, "pw")
    s.create({"a": 1})
    first = (tmp_path / store.STATE_FILE).read_bytes()
    s.save({"a": 1})
    second = (tmp_path / store.STATE_FILE).read_bytes()
    assert first != second
    assert first[: store.HEADER.size - 12] == second[: store.HEADER.size - 12]


def test_it_writes_through_a_temporary_file_and_a_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Store(tmp_path, "pw")
    s.create({"v": "old"})
    calls: list[tuple[str, str]] = []
    real_replace, real_fsync = os.replace, os.fsync

    def spy_replace(src: str, dst: object) -> None:
        calls.append(("replace", str(dst)))
        # The temporary file is complete before it takes the real file's name.
        assert Store(tmp_path, "pw").load() == {"v": "old"}
        real_replace(src, dst)

    def spy_fsync(fd: int) -> None:
        calls.append(("fsync", ""))
        real_fsync(fd)

    monkeypatch.setattr(store.os, "replace", spy_replace)
    monkeypatch.setattr(store.os, "fsync", spy_fsync)
    s.save({"v": "new"})
    assert calls == [("fsync", ""), ("replace", str(tmp_path / store.STATE_FILE)), ("fsync", "")]
    assert s.load() == {"v": "new"}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_crash_before_the_rename_leaves_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Store(tmp_path, "pw")
    s.create({"v": "old"})

    def crash(src: str, dst: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(store.os, "replace", crash)
    with pytest.raises(OSError, match="power cut"):
        s.save({"v": "new"})
    monkeypatch.undo()
    assert Store(tmp_path, "pw").load() == {"v": "old"}
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


CRASHER = """
import os, sys
from courier.store import Store
s = Store(sys.argv[1], "pw")
with s.locked():
    state = s.load()
# Die in the middle of writing the temporary file: the real file must be untouched.
real_fsync = os.fsync
def die(fd):
    os._exit(9)
os.fsync = die
state["v"] = "new"
s.save(state)
"""


def test_a_process_killed_mid_write_leaves_a_readable_state(tmp_path: Path) -> None:
    Store(tmp_path, "pw").create({"v": "old"})
    done = subprocess.run(
        [sys.executable, "-c", CRASHER, str(tmp_path)],
        env={**os.environ, "COURIER_SCRYPT_LOG2_N": "12"},
        check=False,
    )
    assert done.returncode == 9
    assert Store(tmp_path, "pw").load() == {"v": "old"}


CONCURRENT = """
import sys
from courier.store import Store
s = Store(sys.argv[1], "pw")
for _ in range(int(sys.argv[2])):
    with s.transaction() as state:
        state["n"] += 1
"""


def test_transactions_of_two_processes_do_not_lose_updates(tmp_path: Path) -> None:
    Store(tmp_path, "pw").create({"n": 0})
    env = {**os.environ, "COURIER_SCRYPT_LOG2_N": "12"}
    workers = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT, str(tmp_path), "40"], env=env)
        for _ in range(2)
    ]
    assert [w.wait(timeout=60) for w in workers] == [0, 0]
    assert Store(tmp_path, "pw").load() == {"n": 80}


def test_the_key_parameters_are_stored_with_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Store(tmp_path, "pw").create({"a": 1})
    monkeypatch.setenv("COURIER_SCRYPT_LOG2_N", "14")
    assert Store(tmp_path, "pw").load() == {"a": 1}
