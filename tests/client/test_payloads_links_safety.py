"""Message payloads (section 11), contact links (section 13), safety numbers (section 14)."""

from __future__ import annotations

import pytest

from courier.crypto import messages as m
from courier.crypto.encoding import b64u_decode, b64u_encode
from courier.crypto.errors import EncodingError
from courier.crypto.identity import Identity
from courier.crypto.link import ContactLink, parse_contact_link
from courier.crypto.safety import qr_payload, safety_number, safety_number_groups

SAMPLES = [
    m.TextMessage(bytes(16), 1, "héllo"),
    m.FileMessage(
        b"\x01" * 16, 2, "blob", "cap", bytes(32), b"\x02" * 32, 10, 64, 1, "a.txt", "text/plain"
    ),
    m.TimerMessage(b"\x03" * 16, 3, 3600),
    m.TimerMessage(b"\x03" * 16, 3, 0),
    m.ReceiptMessage(b"\x04" * 16, 4, (bytes(16), b"\x05" * 16)),
    m.ReplyHereMessage(b"\x06" * 16, 5, "mbx_send_capability"),
]


@pytest.mark.parametrize("message", SAMPLES)
def test_every_payload_type_round_trips_through_canonical_json(message: m.Message) -> None:
    encoded = m.encode_message(message)
    assert m.decode_message(encoded) == message
    assert b" " not in encoded.replace(b"h\xc3\xa9llo", b"")


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[]",
        b'{"v":2,"type":"text","id":"AAAAAAAAAAAAAAAAAAAAAA","sent_at":1,"body":""}',
        b'{"v":1,"type":"nope","id":"AAAAAAAAAAAAAAAAAAAAAA","sent_at":1}',
        b'{"v":1,"type":"text","id":"AAAA","sent_at":1,"body":""}',
        b'{"v":1,"type":"text","id":"AAAAAAAAAAAAAAAAAAAAAA","sent_at":true,"body":""}',
        b'{"v":1,"type":"timer","id":"AAAAAAAAAAAAAAAAAAAAAA","sent_at":1,"seconds":-1}',
    ],
)
def test_a_malformed_payload_is_refused(raw: bytes) -> None:
    with pytest.raises(EncodingError):
        m.decode_message(raw)


def test_base64url_is_unpadded_and_strict() -> None:
    assert b64u_encode(b"\xff\xfe") == "__4"
    assert b64u_decode("__4") == b"\xff\xfe"
    for bad in ("__4=", "__5", "a b", "+/", "A"):
        with pytest.raises(EncodingError):
            b64u_decode(bad)


def test_a_contact_link_round_trips_and_keeps_everything_in_the_fragment() -> None:
    link = ContactLink(
        "chat.example:8443", "handle123", "intro-cap_456", b"\x01" * 32, b"\x02" * 32
    )
    url = link.url()
    assert url.startswith("https://chat.example:8443/c#")
    assert "handle123" not in url.split("#")[0]
    assert parse_contact_link(url) == link
    for bad in (url.replace("https", "http"), url.replace("/c#", "/d#"), url + "A", url[:-3]):
        with pytest.raises(EncodingError):
            parse_contact_link(bad)


def test_the_safety_number_is_60_digits_in_12_groups_and_order_independent() -> None:
    a, b = Identity.generate().public.identity_key, Identity.generate().public.identity_key
    digits = safety_number(a, b)
    assert len(digits) == 60 and digits.isdigit()
    assert digits == safety_number(b, a)
    assert safety_number_groups(a, b) == [digits[i : i + 5] for i in range(0, 60, 5)]
    assert qr_payload(a, b) == qr_payload(b, a) and len(qr_payload(a, b)) == 65
    c = Identity.generate().public.identity_key
    assert safety_number(a, c) != digits
