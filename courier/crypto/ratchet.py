"""The Double Ratchet with header encryption (docs/protocol.md section 7).

Follows Signal's specification, section 4 ("Double Ratchet with header encryption"):
https://signal.org/docs/specifications/doubleratchet/ . Our choices for its free parameters:

- KDF_RK_HE(rk, dh_out) = HKDF(salt=rk, ikm=dh_out, info="courier-v1 ratchet root", L=96)
  split into (rk, ck, nhk);
- KDF_CK(ck): mk = HMAC(ck, "courier-v1 ratchet message-key"),
  ck' = HMAC(ck, "courier-v1 ratchet chain-key");
- each mk expands with HKDF(salt="", ikm=mk, info="courier-v1 ratchet message", L=56) into
  body key (32) || body nonce (12) || header nonce (12); headers and bodies use AES-256-GCM.

Decryption is all-or-nothing: it runs on a copy of the state and commits only when the body has
authenticated, so a tampered, truncated or replayed message raises and changes nothing.
"""

from __future__ import annotations

from typing import Any

from . import primitives as p
from .encoding import Random, system_random, u32be
from .errors import DecryptionError, EncodingError, InvalidKey, LimitExceeded
from .state import SessionState

INFO_ROOT = b"courier-v1 ratchet root"
INFO_MESSAGE_KEYS = b"courier-v1 ratchet message"
LABEL_MESSAGE_KEY = b"courier-v1 ratchet message-key"
LABEL_CHAIN_KEY = b"courier-v1 ratchet chain-key"

HEADER_LEN = 40  # ratchet public key (32) || u32be(PN) || u32be(N)
ENCRYPTED_HEADER_LEN = p.GCM_NONCE_LEN + HEADER_LEN + p.GCM_TAG_LEN  # 68
MESSAGE_OVERHEAD = ENCRYPTED_HEADER_LEN + p.GCM_TAG_LEN  # 84 bytes on top of the plaintext

# At most this many skipped message keys are kept per session; the oldest are evicted first
# (libsignal keeps a similar bound). Messages whose keys were evicted can no longer be read.
MAX_SKIPPED_KEYS = 1000
# A single incoming message may make us derive at most this many keys in one chain. It bounds the
# work an attacker who knows a header key could cause, and the gap we tolerate in delivery.
MAX_FORWARD_JUMP = 2000
MAX_COUNTER = 2**32 - 1

Trace = list[dict[str, Any]]


def kdf_rk(rk: bytes, dh_out: bytes) -> tuple[bytes, bytes, bytes]:
    out = p.hkdf(rk, dh_out, INFO_ROOT, 96)
    return out[:32], out[32:64], out[64:]


def kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    """Return (next chain key, message key)."""
    return p.hmac_sha256(ck, LABEL_CHAIN_KEY), p.hmac_sha256(ck, LABEL_MESSAGE_KEY)


def message_keys(mk: bytes) -> tuple[bytes, bytes, bytes]:
    """Return (body key, body nonce, header nonce) for one message key.

    The header key is shared by a whole sending chain, so each header needs a distinct nonce; it is
    derived from the message key, which is distinct for every message (see section 7.3).
    """
    out = p.hkdf(b"", mk, INFO_MESSAGE_KEYS, 56)
    return out[:32], out[32:44], out[44:56]


def encode_header(dh: bytes, pn: int, n: int) -> bytes:
    return dh + u32be(pn) + u32be(n)


def decode_header(header: bytes) -> tuple[bytes, int, int]:
    if len(header) != HEADER_LEN:
        raise EncodingError("bad header length")
    return header[:32], int.from_bytes(header[32:36], "big"), int.from_bytes(header[36:40], "big")


def _dh(private: bytes, public: bytes) -> bytes:
    try:
        return p.x25519(private, public)
    except InvalidKey as exc:
        raise DecryptionError("refused ratchet public key") from exc


def init_initiator(
    sk: bytes,
    their_ratchet_key: bytes,
    shared_hka: bytes,
    shared_nhkb: bytes,
    ad: bytes,
    rng: Random = system_random,
) -> SessionState:
    """RatchetInitAliceHE: the initiator can send at once, under the shared header key HKa."""
    dhs_private = rng(32)
    rk, cks, nhks = kdf_rk(sk, p.x25519(dhs_private, their_ratchet_key))
    return SessionState(
        dhs_private=dhs_private,
        dhr=their_ratchet_key,
        rk=rk,
        cks=cks,
        ckr=None,
        hks=shared_hka,
        hkr=None,
        nhks=nhks,
        nhkr=shared_nhkb,
        ns=0,
        nr=0,
        pn=0,
        ad=ad,
    )


def init_responder(
    sk: bytes, ratchet_private: bytes, shared_hka: bytes, shared_nhkb: bytes, ad: bytes
) -> SessionState:
    """RatchetInitBobHE: the responder has no sending chain until it has received a message.

    That is what makes its first reply ratchet: before it can send, it must perform a DH ratchet
    step with a fresh key pair, so even a replayed initial message never makes it reuse keys.
    """
    return SessionState(
        dhs_private=ratchet_private,
        dhr=None,
        rk=sk,
        cks=None,
        ckr=None,
        hks=None,
        hkr=None,
        nhks=shared_nhkb,
        nhkr=shared_hka,
        ns=0,
        nr=0,
        pn=0,
        ad=ad,
    )


def encrypt(state: SessionState, plaintext: bytes, trace: Trace | None = None) -> bytes:
    """RatchetEncryptHE. Mutates ``state``; persist it before sending the result (section 7.3)."""
    if state.cks is None or state.hks is None:
        raise DecryptionError("no sending chain yet: the responder must receive first")
    if state.ns >= MAX_COUNTER:
        raise LimitExceeded("sending chain exhausted")
    ck, mk = kdf_ck(state.cks)
    body_key, body_nonce, header_nonce = message_keys(mk)
    header = encode_header(p.x25519_public(state.dhs_private), state.pn, state.ns)
    enc_header = header_nonce + p.aead_encrypt(state.hks, header_nonce, header, state.ad)
    body = p.aead_encrypt(body_key, body_nonce, plaintext, state.ad + enc_header)
    if trace is not None:
        trace.append(
            {
                "chain_key": state.cks,
                "next_chain_key": ck,
                "message_key": mk,
                "body_key": body_key,
                "body_nonce": body_nonce,
                "header_nonce": header_nonce,
                "header_key": state.hks,
                "header": header,
                "encrypted_header": enc_header,
                "body": body,
            }
        )
    state.cks = ck
    state.ns += 1
    return enc_header + body


def _try_header(hk: bytes | None, enc_header: bytes, ad: bytes) -> tuple[bytes, int, int] | None:
    if hk is None:
        return None
    try:
        header = p.aead_decrypt(hk, enc_header[:12], enc_header[12:], ad)
    except DecryptionError:
        return None
    return decode_header(header)


def _skip(state: SessionState, until: int) -> None:
    """Store the message keys of the current receiving chain up to (not including) ``until``."""
    if state.ckr is None or state.hkr is None:
        return
    if until - state.nr > MAX_FORWARD_JUMP:
        raise LimitExceeded("message is too far ahead in its chain")
    while state.nr < until:
        state.ckr, mk = kdf_ck(state.ckr)
        state.skipped[(state.hkr, state.nr)] = mk
        state.nr += 1
    while len(state.skipped) > MAX_SKIPPED_KEYS:
        state.skipped.popitem(last=False)


def _dh_ratchet(state: SessionState, their_key: bytes, rng: Random) -> None:
    state.pn = state.ns
    state.ns = 0
    state.nr = 0
    state.hks = state.nhks
    state.hkr = state.nhkr
    state.dhr = their_key
    state.rk, state.ckr, state.nhkr = kdf_rk(state.rk, _dh(state.dhs_private, their_key))
    state.dhs_private = rng(32)
    state.rk, state.cks, state.nhks = kdf_rk(state.rk, _dh(state.dhs_private, their_key))


def _open_body(mk: bytes, enc_header: bytes, body: bytes, ad: bytes) -> bytes:
    body_key, body_nonce, _ = message_keys(mk)
    return p.aead_decrypt(body_key, body_nonce, body, ad + enc_header)


def decrypt(
    state: SessionState, message: bytes, rng: Random = system_random
) -> tuple[SessionState, bytes]:
    """RatchetDecryptHE on a copy of ``state``: return (new state, plaintext) or raise.

    The caller replaces its state with the returned one; on any exception its state is untouched.
    """
    if len(message) < MESSAGE_OVERHEAD:
        raise DecryptionError("message too short")
    enc_header, body = message[:ENCRYPTED_HEADER_LEN], message[ENCRYPTED_HEADER_LEN:]
    work = state.copy()

    # Skipped keys first. Headers of old chains only open under their own header key, so trying
    # each distinct skipped header key once is enough.
    for hk in dict.fromkeys(hk for hk, _ in work.skipped):
        found = _try_header(hk, enc_header, work.ad)
        if found is None:
            continue
        _, _, n = found
        mk = work.skipped.pop((hk, n), None)
        if mk is not None:
            plaintext = _open_body(mk, enc_header, body, work.ad)
            work.pending_prekey_header = None
            return work, plaintext
        if hk != work.hkr:
            raise DecryptionError("replayed or evicted message")
        break

    found = _try_header(work.hkr, enc_header, work.ad)
    if found is not None:
        _, _, n = found
        if n < work.nr:
            raise DecryptionError("replayed or evicted message")
    else:
        found = _try_header(work.nhkr, enc_header, work.ad)
        if found is None:
            raise DecryptionError("header does not decrypt")
        dh, pn, n = found
        _skip(work, pn)
        _dh_ratchet(work, dh, rng)
    _skip(work, n)
    assert work.ckr is not None
    work.ckr, mk = kdf_ck(work.ckr)
    work.nr += 1
    plaintext = _open_body(mk, enc_header, body, work.ad)
    # Hearing from the peer proves it has the session: stop repeating the PQXDH header.
    work.pending_prekey_header = None
    return work, plaintext


class Session:
    """A ratchet session: state plus the random source used for new ratchet keys."""

    def __init__(self, state: SessionState, rng: Random = system_random) -> None:
        self.state = state
        self.rng = rng

    def encrypt(self, plaintext: bytes, trace: Trace | None = None) -> bytes:
        return encrypt(self.state, plaintext, trace)

    def decrypt(self, message: bytes) -> bytes:
        """All-or-nothing: on any exception the session is exactly as before."""
        new_state, plaintext = decrypt(self.state, message, self.rng)
        self.state = new_state
        return plaintext

    def to_bytes(self) -> bytes:
        return self.state.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes, rng: Random = system_random) -> Session:
        return cls(SessionState.from_bytes(data), rng)

    @property
    def can_send(self) -> bool:
        return self.state.cks is not None
