"""Contact links (docs/protocol.md section 13).

``https://<host>/c#<payload>``: the payload sits in the URL fragment, which browsers never send to
the server, so the server cannot tie a handle to an intro mailbox or learn the intro key.
payload = b64u(0x01 || u8 len || handle || u8 len || intro mailbox send capability
                || identity fingerprint (32) || intro key (32))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .encoding import Reader, b64u_decode, b64u_encode, u8
from .errors import EncodingError

LINK_VERSION = 0x01
_TOKEN_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


@dataclass(frozen=True)
class ContactLink:
    host: str
    handle: str  # prekey bundle handle
    intro_mailbox: str  # send capability of the intro mailbox
    fingerprint: bytes  # SHA-256("courier-v1 fingerprint\0" || identity_key)
    intro_key: bytes  # X25519 public key the first message is sealed to

    def payload(self) -> bytes:
        for token in (self.handle, self.intro_mailbox):
            if not _TOKEN_RE.match(token):
                raise EncodingError("handle and capability must be 1-255 printable ASCII chars")
        if len(self.fingerprint) != 32 or len(self.intro_key) != 32:
            raise EncodingError("fingerprint and intro key must be 32 bytes")
        return b"".join(
            [
                u8(LINK_VERSION),
                u8(len(self.handle)),
                self.handle.encode("ascii"),
                u8(len(self.intro_mailbox)),
                self.intro_mailbox.encode("ascii"),
                self.fingerprint,
                self.intro_key,
            ]
        )

    def url(self) -> str:
        if not _HOST_RE.match(self.host):
            raise EncodingError("bad host")
        return f"https://{self.host}/c#{b64u_encode(self.payload())}"


def _token(r: Reader) -> str:
    raw = r.take(r.u8())
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise EncodingError("token is not ASCII") from exc
    if not _TOKEN_RE.match(text):
        raise EncodingError("bad token")
    return text


def parse_contact_link(url: str) -> ContactLink:
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.path != "/c" or parts.query or not parts.fragment:
        raise EncodingError("not a contact link")
    if not _HOST_RE.match(parts.netloc):
        raise EncodingError("bad host")
    r = Reader(b64u_decode(parts.fragment))
    if r.u8() != LINK_VERSION:
        raise EncodingError("unknown contact link version")
    handle, mailbox = _token(r), _token(r)
    fingerprint, intro_key = r.take(32), r.take(32)
    r.end()
    return ContactLink(parts.netloc, handle, mailbox, fingerprint, intro_key)
