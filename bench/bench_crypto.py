"""Crypto core benchmark: protocol operations side by side with the bare primitives they use.

Run:  .venv/bin/python bench/bench_crypto.py
Not a test: it prints a table. Targets: PQXDH handshake < 5 ms, ratchet message < 1 ms.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cryptography

from courier.crypto import files, pqxdh, ratchet
from courier.crypto import primitives as p
from courier.crypto.identity import Identity, generate_bundle
from courier.crypto.session import accept_session, start_session


def measure(fn: Callable[[], object], min_time: float = 0.5) -> float:
    """Median seconds per call over batches lasting about ``min_time`` in total."""
    fn()
    n = 1
    while True:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed > 0.05:
            break
        n *= 2
    batches = max(3, int(min_time / elapsed))
    samples = []
    for _ in range(batches):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n)
    samples.sort()
    return samples[len(samples) // 2]


def row(name: str, seconds: float, extra: str = "") -> None:
    print(f"  {name:<46} {seconds * 1e6:>10.1f} us  {extra}")


def main() -> None:
    print(
        f"Python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs"
    )

    alice, bob = Identity.generate(), Identity.generate()
    bundle, secrets = generate_bundle(bob, one_time_ids=(2,), pq_one_time_ids=(3,))
    claimed = bundle.claim()

    print("\nProtocol")

    def initiator() -> None:
        pqxdh.initiate(alice, claimed)

    _, sample_header = pqxdh.initiate(alice, claimed)

    def responder() -> None:
        pqxdh.respond(bob, secrets, sample_header)

    last_resort_only = bundle.claim(1)  # one-time prekeys are consumed; last resort is not

    def full_handshake() -> None:
        session, _ = start_session(alice, last_resort_only)
        first = session.encrypt(b"hello")
        header = pqxdh.PrekeyHeader.decode(session.state.pending_prekey_header or b"")
        bob_session, _, _ = accept_session(bob, secrets, header, first)
        session.decrypt(bob_session.encrypt(b"hi"))

    t_init, t_resp = measure(initiator), measure(responder)
    row("PQXDH initiator", t_init)
    row("PQXDH responder", t_resp)
    row("PQXDH both sides", t_init + t_resp, "(target < 5000 us)")
    row("PQXDH + first message + reply (last resort)", measure(full_handshake))

    sa, _ = start_session(alice, bundle.claim(1))
    header = pqxdh.PrekeyHeader.decode(sa.state.pending_prekey_header or b"")
    sb, _, _ = accept_session(bob, secrets, header, sa.encrypt(b"x"))
    for size in (1024, 65536):
        payload = os.urandom(size)

        def roundtrip(payload: bytes = payload) -> None:
            sb.decrypt(sa.encrypt(payload))

        def turn(payload: bytes = payload) -> None:
            sb.decrypt(sa.encrypt(payload))
            sa.decrypt(sb.encrypt(payload))

        row(
            f"ratchet encrypt+decrypt, same chain, {size // 1024} KiB",
            measure(roundtrip),
            "(target < 1000 us)",
        )
        row(
            f"ratchet ping-pong (DH ratchet each way), {size // 1024} KiB",
            measure(turn) / 2,
            "per message",
        )

    for chunk in (65536, files.DEFAULT_CHUNK_SIZE):
        key = os.urandom(32)
        data = os.urandom(files.chunk_capacity(chunk))
        t = measure(
            lambda key=key, data=data, chunk=chunk: files.encrypt_chunk(key, 0, data, False, chunk)
        )
        row(f"file chunk encrypt, {chunk // 1024} KiB", t, f"{chunk / t / 1e6:.0f} MB/s")

    print("\nPrimitives (baseline)")
    x_priv, x_pub = os.urandom(32), p.x25519_public(os.urandom(32))
    row("X25519 exchange", measure(lambda: p.x25519(x_priv, x_pub)))
    row("X25519 key generation (public from private)", measure(lambda: p.x25519_public(x_priv)))
    kem_seed = os.urandom(64)
    kem_pub = p.mlkem_public(kem_seed)
    ct, _ = p.mlkem_encapsulate(kem_pub)
    row("ML-KEM-768 encapsulate", measure(lambda: p.mlkem_encapsulate(kem_pub)))
    row("ML-KEM-768 decapsulate (from seed)", measure(lambda: p.mlkem_decapsulate(kem_seed, ct)))
    row("ML-KEM-768 key from seed", measure(lambda: p.mlkem_public(kem_seed)))
    ed_seed = os.urandom(32)
    ed_pub = p.ed25519_public(ed_seed)
    sig = p.ed25519_sign(ed_seed, b"m" * 64)
    row("Ed25519 sign", measure(lambda: p.ed25519_sign(ed_seed, b"m" * 64)))
    row("Ed25519 verify", measure(lambda: p.ed25519_verify(ed_pub, sig, b"m" * 64)))
    key, nonce = os.urandom(32), os.urandom(12)
    for size in (1024, 65536, 1_048_576):
        data = os.urandom(size)
        t = measure(lambda data=data: p.aead_encrypt(key, nonce, data, b""))
        row(f"AES-256-GCM encrypt {size // 1024} KiB", t, f"{size / t / 1e6:.0f} MB/s")
    row("HKDF-SHA-256, 96 bytes out", measure(lambda: p.hkdf(key, key, b"info", 96)))
    row("HMAC-SHA-256, 32 bytes", measure(lambda: p.hmac_sha256(key, key)))
    row("ratchet KDF_CK (2 HMACs)", measure(lambda: ratchet.kdf_ck(key)))


if __name__ == "__main__":
    main()
