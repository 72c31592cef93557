"""Benchmark of the web client's cryptography in the machine's Chromium.

    .venv/bin/python -m tests.browser.bench_web

Serves static/js from a throwaway server stack and times, inside one page: the passphrase key
derivation (PBKDF2-SHA-256, 600,000 iterations), making an identity with a bundle of 10 + 10
one-time prekeys, PQXDH plus the first sealed intro, ratchet messages (padded envelopes, both
directions, each decrypted by the other side), file encryption and decryption (5 MB in 1 MiB
chunks), and a safety number. Prints a Markdown table.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.support.servers import ServerStack

BENCH = (Path(__file__).with_name("bench_harness.js")).read_text()


def main() -> int:
    with tempfile.TemporaryDirectory() as data:
        with ServerStack(Path(data), database="sqlite") as stack, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(stack.url() + "/")
            runs = [page.evaluate(BENCH) for _ in range(3)]
            browser.close()
    rows = [
        ("passphrase key, PBKDF2-SHA-256 600,000 iterations (ms)", "pbkdf2_ms"),
        ("identity + bundle with 10 + 10 one-time prekeys (ms)", "identity_ms"),
        ("first contact: bundle check, PQXDH, sealed intro (ms)", "first_contact_ms"),
        ("ratchet messages, seal + open a 1 KiB envelope (per second)", "ratchet_per_s"),
        ("encrypt a 5 MB file in 1 MiB chunks (ms)", "file_encrypt_ms"),
        ("decrypt and check a 5 MB file (ms)", "file_decrypt_ms"),
        ("safety number, 2 x 5,200 SHA-512 (ms)", "safety_ms"),
    ]
    sys.stdout.write("| operation | run 1 | run 2 | run 3 |\n|---|---|---|---|\n")
    for label, key in rows:
        sys.stdout.write(f"| {label} | " + " | ".join(f"{r[key]:.0f}" for r in runs) + " |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
