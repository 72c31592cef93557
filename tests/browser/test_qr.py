"""static/js/qr.js draws the same symbols as segno (a maintained Python QR encoder) for the
data the client draws: contact links, safety-number payloads, and sizes that span versions."""

from __future__ import annotations

import pytest
import segno

pytestmark = pytest.mark.browser

CASES = [
    "https://courier.example/c#AQtobmRfZXhhbXBsZQ1tYnhfYm9iX2ludHJvsDwUvQNVBiOtHolDs-ZLalw",
    "x",
    "A" * 200,
    "é" * 300,
    "https://127.0.0.1:8000/c#" + "Q" * 170,
]


def _standard_padding_bits(buff, version, length):  # type: ignore[no-untyped-def]
    # ISO/IEC 18004 7.4.10 adds zero bits only when the stream is not on a codeword boundary;
    # segno 1.6 also appends eight zero bits when it is (a harmless extra 0x00 codeword).
    buff.extend([0] * (-length % 8))


def test_the_qr_encoder_matches_segno_module_for_module(courier_server, new_context, monkeypatch):
    monkeypatch.setattr(segno.encoder, "write_padding_bits", _standard_padding_bits)
    page = new_context().new_page()
    page.goto(courier_server + "/")
    for text in CASES:
        for mask in (0, 5):
            ours = page.evaluate(
                "async ([t, m]) => (await import('/static/js/qr.js')).encode(t, {mask: m})",
                [text, mask],
            )
            ref = segno.make(
                text,
                error="m",
                mask=mask,
                mode="byte",
                boost_error=False,
                encoding="utf-8",
                micro=False,
            )
            assert ours["version"] == ref.version, text
            expected = [[bool(v) for v in row] for row in ref.matrix]
            assert ours["modules"] == expected, (text, mask)
    binary = bytes(range(65))
    ours = page.evaluate(
        "async (b) => (await import('/static/js/qr.js')).encode(new Uint8Array(b), {mask: 2})",
        list(binary),
    )
    ref = segno.make(binary, error="m", mask=2, mode="byte", boost_error=False, micro=False)
    assert ours["modules"] == [[bool(v) for v in row] for row in ref.matrix]
