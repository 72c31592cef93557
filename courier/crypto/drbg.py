"""A deterministic random source for test vectors only: never use it for real keys.

Output = SHA-256(seed || u64be(0)) || SHA-256(seed || u64be(1)) || ... consumed in order, so any
client can reproduce the same stream from the seed recorded in tests/vectors/protocol.json.
"""

from __future__ import annotations

from . import primitives as p
from .encoding import u64be


class DeterministicRandom:
    def __init__(self, seed: bytes) -> None:
        self.seed = seed
        self.counter = 0
        self.buffer = b""
        self.draws: list[bytes] = []

    def __call__(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self.buffer += p.sha256(self.seed + u64be(self.counter))
            self.counter += 1
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        self.draws.append(out)
        return out
