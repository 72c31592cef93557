"""The client's local state, encrypted on disk under a passphrase.

One file, ``state.bin``, holds everything (identity, prekey secrets, sessions, contacts,
messages) as JSON sealed with AES-256-GCM under a key derived from the passphrase with scrypt
(memory-hard, from ``cryptography``). Layout:

    magic "COURIER-STATE\\0" (14) || u8 version (1) || u32be log2(n) || u32be r || u32be p
    || salt (16) || check (32) || nonce (12) || AES-256-GCM(key, nonce, json, ad = header)

``check`` is HMAC-SHA-256(key, "courier-v1 state check"): it tells a wrong passphrase apart
from a damaged file, without revealing anything an attacker could not test with the AEAD alone.

Writes are atomic: a temporary file in the same directory is written, fsynced and renamed over
the old one with ``os.replace`` (then the directory is fsynced), so a crash leaves either the old
or the new state, never a mix. Every write uses a fresh nonce.

Several processes of one user (``courier listen`` in one terminal, ``courier send`` in another)
share the file: each change runs under an exclusive ``flock`` on ``state.lock``, reading the
latest state, changing it and writing it back before the lock is released.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import json
import os
import struct
import tempfile
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

MAGIC = b"COURIER-STATE\x00"
VERSION = 1
HEADER = struct.Struct(">14sBIII16s32s12s")
CHECK_LABEL = b"courier-v1 state check"
STATE_FILE = "state.bin"
LOCK_FILE = "state.lock"

# scrypt with n = 2^15, r = 8 (32 MiB of memory): about 0.1 s per unlock on a laptop. Tests may
# lower it through COURIER_SCRYPT_LOG2_N; the parameters used are stored in each file.
DEFAULT_LOG2_N = 15
SCRYPT_R = 8
SCRYPT_P = 1


class StoreError(Exception):
    """Base class: the state cannot be read or written."""


class NoState(StoreError):
    """There is no state in this directory yet (run ``courier init``)."""


class StateExists(StoreError):
    """A state already exists in this directory."""


class WrongPassphrase(StoreError):
    """The passphrase does not open this state."""


class CorruptState(StoreError):
    """The file is damaged or was tampered with."""


def _log2_n() -> int:
    raw = os.environ.get("COURIER_SCRYPT_LOG2_N", "")
    try:
        value = int(raw) if raw else DEFAULT_LOG2_N
    except ValueError:
        value = DEFAULT_LOG2_N
    return min(max(value, 10), 20)


def derive_key(passphrase: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=2**log2_n, r=r, p=p)
    return kdf.derive(passphrase.encode("utf-8"))


def _check_value(key: bytes) -> bytes:
    return hmac.new(key, CHECK_LABEL, sha256).digest()


class Store:
    """The encrypted state file of one home directory.

    The scrypt key is derived once per process (on ``create`` or the first ``load``) and kept in
    memory, so that reading and writing the state again costs only AES-GCM.
    """

    def __init__(self, home: Path | str, passphrase: str) -> None:
        self.home = Path(home)
        self.path = self.home / STATE_FILE
        self._passphrase = passphrase
        self._key: bytes | None = None
        self._params: tuple[int, int, int, bytes] | None = None

    def exists(self) -> bool:
        return self.path.exists()

    # --- locking ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, name: str = LOCK_FILE) -> Iterator[None]:
        """Hold the home directory's exclusive lock (other courier processes wait).

        ``name`` selects another lock file for work that must not run twice at once but must
        not hold the state lock either (sending the outbox over the network).
        """
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.home / name, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[dict[str, Any]]:
        """Lock, load, let the caller change the state, write it back atomically.

        If the block raises, nothing is written: the state stays as it was.
        """
        with self.locked():
            state = self.load()
            yield state
            self.save(state)

    # --- reading and writing ------------------------------------------------------------------

    def create(self, state: dict[str, Any]) -> None:
        with self.locked():
            if self.exists():
                raise StateExists(f"{self.path} already exists")
            salt = os.urandom(16)
            log2_n = _log2_n()
            self._key = derive_key(self._passphrase, salt, log2_n, SCRYPT_R, SCRYPT_P)
            self._params = (log2_n, SCRYPT_R, SCRYPT_P, salt)
            self.save(state)

    def load(self) -> dict[str, Any]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            raise NoState(f"no state in {self.home}") from None
        if len(data) < HEADER.size + 16:
            raise CorruptState("the state file is truncated")
        magic, version, log2_n, r, p, salt, check, nonce = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise CorruptState("this is not a courier state file")
        if version != VERSION:
            raise CorruptState(f"unknown state version {version}")
        if not (10 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
            raise CorruptState("the state file's key parameters are out of range")
        params = (log2_n, r, p, salt)
        if self._key is None or self._params != params:
            key = derive_key(self._passphrase, salt, log2_n, r, p)
            if not hmac.compare_digest(_check_value(key), check):
                raise WrongPassphrase("wrong passphrase")
            self._key, self._params = key, params
        elif not hmac.compare_digest(_check_value(self._key), check):
            raise CorruptState("the state file's key check does not match")
        try:
            plaintext = AESGCM(self._key).decrypt(nonce, data[HEADER.size :], data[: HEADER.size])
        except InvalidTag:
            raise CorruptState("the state file is damaged (authentication failed)") from None
        try:
            state = json.loads(plaintext.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise CorruptState("the state file does not hold valid JSON") from None
        if not isinstance(state, dict):
            raise CorruptState("the state file does not hold a JSON object")
        return state

    def save(self, state: dict[str, Any]) -> None:
        """Encrypt and write atomically: temp file, fsync, rename, fsync the directory."""
        if self._key is None or self._params is None:
            raise StoreError("load or create the state before saving it")
        log2_n, r, p, salt = self._params
        nonce = os.urandom(12)
        header = HEADER.pack(MAGIC, VERSION, log2_n, r, p, salt, _check_value(self._key), nonce)
        plaintext = json.dumps(state, separators=(",", ":"), sort_keys=True).encode("utf-8")
        data = header + AESGCM(self._key).encrypt(nonce, plaintext, header)
        self._write_atomically(data)

    def _write_atomically(self, data: bytes) -> None:
        self.home.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.home)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.home, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
