"""The browser reproduces tests/vectors/protocol.json byte for byte and agrees with every
Wycheproof vector the Python core checks, using the web client's own modules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
HARNESS = (Path(__file__).with_name("vectors_harness.js")).read_text()


def _wycheproof(name: str) -> dict:
    return json.loads((VECTORS / "wycheproof" / name).read_text())


def test_the_browser_reproduces_the_protocol_and_wycheproof_vectors(courier_server, new_context):
    page = new_context().new_page()
    page.goto(courier_server + "/")
    result = page.evaluate(
        HARNESS,
        {
            "protocol": json.loads((VECTORS / "protocol.json").read_text()),
            "wycheproof": {
                "x25519": _wycheproof("x25519_test.json"),
                "ed25519": _wycheproof("ed25519_test.json"),
                "aes_gcm": _wycheproof("aes_gcm_test.json"),
                "hkdf": _wycheproof("hkdf_sha256_test.json"),
                "mlkem": _wycheproof("mlkem_768_test.json"),
            },
        },
    )
    assert result["failures"] == []
    assert result["checked"] > 1300
