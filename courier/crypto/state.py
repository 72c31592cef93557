"""Double Ratchet session state and its versioned byte serialization (docs/protocol.md section 8).

The client layer stores these bytes encrypted at rest (a later issue); this module only defines the
layout. Skipped message keys keep their insertion order, because eviction removes the oldest.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from .encoding import Reader, u8, u16be, u32be
from .errors import EncodingError

STATE_VERSION = 0x01

SkippedKeys = OrderedDict[tuple[bytes, int], bytes]


@dataclass
class SessionState:
    """The variables of the Double Ratchet with header encryption (Signal's spec, section 4)."""

    dhs_private: bytes
    dhr: bytes | None
    rk: bytes
    cks: bytes | None
    ckr: bytes | None
    hks: bytes | None
    hkr: bytes | None
    nhks: bytes
    nhkr: bytes
    ns: int
    nr: int
    pn: int
    ad: bytes
    # The PQXDH header the initiator repeats on every message until it hears back (section 10).
    pending_prekey_header: bytes | None = None
    skipped: SkippedKeys = field(default_factory=OrderedDict)

    def copy(self) -> SessionState:
        """A copy that shares no mutable part (bytes are immutable; the dict is not)."""
        return SessionState(
            self.dhs_private,
            self.dhr,
            self.rk,
            self.cks,
            self.ckr,
            self.hks,
            self.hkr,
            self.nhks,
            self.nhkr,
            self.ns,
            self.nr,
            self.pn,
            self.ad,
            self.pending_prekey_header,
            OrderedDict(self.skipped),
        )

    def to_bytes(self) -> bytes:
        out = [u8(STATE_VERSION), self.dhs_private]
        out += [_opt32(self.dhr), self.rk, _opt32(self.cks), _opt32(self.ckr)]
        out += [_opt32(self.hks), _opt32(self.hkr), self.nhks, self.nhkr]
        out += [u32be(self.ns), u32be(self.nr), u32be(self.pn)]
        out += [u16be(len(self.ad)), self.ad]
        pending = self.pending_prekey_header
        out += [u8(0)] if pending is None else [u8(1), u16be(len(pending)), pending]
        out.append(u32be(len(self.skipped)))
        for (hk, n), mk in self.skipped.items():
            out += [hk, u32be(n), mk]
        return b"".join(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> SessionState:
        r = Reader(data)
        if r.u8() != STATE_VERSION:
            raise EncodingError("unknown session state version")
        dhs_private = r.take(32)
        dhr, rk, cks, ckr = _read_opt32(r), r.take(32), _read_opt32(r), _read_opt32(r)
        hks, hkr, nhks, nhkr = _read_opt32(r), _read_opt32(r), r.take(32), r.take(32)
        ns, nr, pn = r.u32(), r.u32(), r.u32()
        ad = r.take(r.u16())
        flag = r.u8()
        if flag not in (0, 1):
            raise EncodingError("bad presence flag")
        pending = r.take(r.u16()) if flag else None
        skipped: SkippedKeys = OrderedDict()
        for _ in range(r.u32()):
            hk, n, mk = r.take(32), r.u32(), r.take(32)
            skipped[(hk, n)] = mk
        r.end()
        return cls(
            dhs_private, dhr, rk, cks, ckr, hks, hkr, nhks, nhkr, ns, nr, pn, ad, pending, skipped
        )


def _opt32(value: bytes | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + value


def _read_opt32(r: Reader) -> bytes | None:
    flag = r.u8()
    if flag == 0:
        return None
    if flag != 1:
        raise EncodingError("bad presence flag")
    return r.take(32)
