"""File-chunk encryption (docs/protocol.md section 12).

Every encrypted chunk is exactly ``chunk_size`` bytes, because the server stores chunks at exactly
the policy's size: plaintext capacity is chunk_size - 16 (the GCM tag), and the last chunk is
padded with zeros. The nonce is u64be(index) || u32be(last), so a chunk opens only at its own
position and only with the right last-chunk flag: chunks cannot be reordered, dropped from the end
(the new last chunk was not sealed as last) or extended (nothing after the real last chunk opens).
The SHA-256 digest of the whole file, carried in the file descriptor, is checked on top.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from . import primitives as p
from .encoding import Random, system_random, u32be, u64be
from .errors import DecryptionError, EncodingError

AD_FILE_CHUNK = b"courier-v1 file-chunk\x00"
DEFAULT_CHUNK_SIZE = 1_048_576
ALLOWED_CHUNK_SIZES = (65_536, 1_048_576, 4_194_304)
FILE_KEY_LEN = 32


def chunk_capacity(chunk_size: int) -> int:
    return chunk_size - p.GCM_TAG_LEN


def chunk_count(size: int, chunk_size: int) -> int:
    """At least one chunk, even for an empty file, so there is always a last chunk."""
    capacity = chunk_capacity(chunk_size)
    return max(1, -(-size // capacity))


def chunk_nonce(index: int, last: bool) -> bytes:
    return u64be(index) + u32be(1 if last else 0)


def encrypt_chunk(key: bytes, index: int, data: bytes, last: bool, chunk_size: int) -> bytes:
    capacity = chunk_capacity(chunk_size)
    if len(data) > capacity or (not last and len(data) != capacity):
        raise EncodingError("only the last chunk may be short")
    padded = data + bytes(capacity - len(data))
    return p.aead_encrypt(key, chunk_nonce(index, last), padded, AD_FILE_CHUNK)


def decrypt_chunk(key: bytes, index: int, ciphertext: bytes, last: bool, chunk_size: int) -> bytes:
    """Return the chunk's full plaintext capacity (the caller trims the last chunk by size)."""
    if len(ciphertext) != chunk_size:
        raise DecryptionError("chunk has the wrong size")
    return p.aead_decrypt(key, chunk_nonce(index, last), ciphertext, AD_FILE_CHUNK)


@dataclass(frozen=True)
class EncryptedFile:
    key: bytes
    digest: bytes
    size: int
    chunk_size: int
    chunks: tuple[bytes, ...]

    @property
    def chunk_count(self) -> int:
        return len(self.chunks)


def encrypt_file(
    data: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE, rng: Random = system_random
) -> EncryptedFile:
    """Encrypt a whole file under a fresh random key."""
    if chunk_size <= p.GCM_TAG_LEN:
        raise EncodingError("chunk size too small")
    key = rng(FILE_KEY_LEN)
    capacity = chunk_capacity(chunk_size)
    count = chunk_count(len(data), chunk_size)
    chunks = tuple(
        encrypt_chunk(key, i, data[i * capacity : (i + 1) * capacity], i == count - 1, chunk_size)
        for i in range(count)
    )
    return EncryptedFile(key, p.sha256(data), len(data), chunk_size, chunks)


def decrypt_file(
    key: bytes,
    chunks: Sequence[bytes] | Iterable[bytes],
    size: int,
    digest: bytes,
    chunk_size: int,
) -> bytes:
    """Decrypt and check a whole file against the descriptor's size and digest."""
    chunks = list(chunks)
    count = chunk_count(size, chunk_size)
    if len(chunks) != count:
        raise DecryptionError("wrong number of chunks")
    capacity = chunk_capacity(chunk_size)
    parts = [
        decrypt_chunk(key, i, chunk, i == count - 1, chunk_size) for i, chunk in enumerate(chunks)
    ]
    tail = size - (count - 1) * capacity
    if any(parts[-1][tail:]):
        raise DecryptionError("non-zero padding in the last chunk")
    parts[-1] = parts[-1][:tail]
    data = b"".join(parts)
    if not p.constant_time_equal(p.sha256(data), digest):
        raise DecryptionError("file digest does not match")
    return data
