"""Deterministic protocol test vectors for the browser client (tests/vectors/protocol.json).

Regenerate with:  python -m courier.crypto.vectors > tests/vectors/protocol.json

Every random value comes from ``DeterministicRandom`` seeded with SHA-256(MASTER || label), one
stream per label, so the file is byte-for-byte reproducible. The one exception is ML-KEM
encapsulation, whose randomness no library lets us inject: ``vector_kem.py`` records one
(ciphertext, shared secret) pair made once against the responder's one-time PQ prekey
(regenerate it with ``--bootstrap-kem`` if that key ever changes). All binary values are hex.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from . import envelope, files, messages, pqxdh, ratchet, safety, sealed
from . import primitives as p
from .drbg import DeterministicRandom
from .encoding import b64u_encode
from .identity import Identity, bundle_to_json, generate_bundle, verify_claimed_bundle
from .link import ContactLink
from .session import accept_session, start_session
from .state import SessionState

MASTER = b"courier-v1 test vectors"
SENT_AT = 1767225600  # 2026-01-01T00:00:00Z
FILE_CHUNK_SIZE = 64  # tiny, so the vector shows several chunks


def label_rng(label: str) -> DeterministicRandom:
    return DeterministicRandom(p.sha256(MASTER + label.encode()))


def h(data: bytes | None) -> str | None:
    return None if data is None else data.hex()


def _state(state: SessionState) -> dict[str, Any]:
    return {
        "dhs_private": h(state.dhs_private),
        "dhs_public": h(p.x25519_public(state.dhs_private)),
        "dhr": h(state.dhr),
        "rk": h(state.rk),
        "cks": h(state.cks),
        "ckr": h(state.ckr),
        "hks": h(state.hks),
        "hkr": h(state.hkr),
        "nhks": h(state.nhks),
        "nhkr": h(state.nhkr),
        "ns": state.ns,
        "nr": state.nr,
        "pn": state.pn,
        "skipped": [{"hk": h(hk), "n": n, "mk": h(mk)} for (hk, n), mk in state.skipped.items()],
        "serialized": h(state.to_bytes()),
    }


def _trace(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: h(v) for k, v in entry.items()}


def _identity(identity: Identity) -> dict[str, Any]:
    pub = identity.public
    return {
        "signing_seed": h(identity.signing_seed),
        "dh_private": h(identity.dh_private),
        "identity_key": h(pub.identity_key),
        "identity_dh_key": h(pub.identity_dh_key),
        "identity_dh_signature": h(pub.identity_dh_signature),
        "fingerprint": h(pub.fingerprint),
    }


def _text(rng: DeterministicRandom, body: str) -> bytes:
    return messages.encode_message(
        messages.TextMessage(messages.new_message_id(rng), SENT_AT, body)
    )


def bob_setup() -> tuple[Identity, Any, Any]:
    bob = Identity.generate(label_rng("bob identity"))
    bundle, secrets = generate_bundle(
        bob,
        label_rng("bob prekeys"),
        signed_prekey_id=1,
        pq_last_resort_id=1,
        one_time_ids=(2,),
        pq_one_time_ids=(3,),
    )
    return bob, bundle, secrets


def generate() -> dict[str, Any]:
    from .vector_kem import KEM_CIPHERTEXT, KEM_SHARED_SECRET

    out: dict[str, Any] = {
        "description": "Courier protocol v1 test vectors; see docs/protocol.md. Binary is hex.",
        "command": "python -m courier.crypto.vectors > tests/vectors/protocol.json",
        "drbg": "stream(label) = SHA-256(SHA-256(master || label) || u64be(i)) for i = 0, 1, ...",
        "master": h(MASTER),
    }
    alice = Identity.generate(label_rng("alice identity"))
    bob, bundle, secrets = bob_setup()
    out["identities"] = {"alice": _identity(alice), "bob": _identity(bob)}
    claimed = bundle.claim(0)
    out["bundle"] = {
        "secrets": {
            "signed_prekey": {str(k): h(v) for k, v in secrets.signed.items()},
            "pq_last_resort_prekey": {str(k): h(v) for k, v in secrets.pq_last_resort.items()},
            "one_time_prekeys": {str(k): h(v) for k, v in secrets.one_time.items()},
            "pq_one_time_prekeys": {str(k): h(v) for k, v in secrets.pq_one_time.items()},
        },
        "published": bundle_to_json(bundle),
        "claimed": bundle_to_json(claimed),
    }
    claimed = verify_claimed_bundle(bundle_to_json(claimed), bob.public.fingerprint)
    if p.mlkem_decapsulate(secrets.pq_one_time[3], KEM_CIPHERTEXT) != KEM_SHARED_SECRET:
        raise SystemExit("vector_kem.py does not match the PQ prekey: run --bootstrap-kem")

    # --- PQXDH and the first ratchet step --------------------------------------------------
    arng = label_rng("alice session")
    brng = label_rng("bob session")
    sa, keys = start_session(
        alice, claimed, arng, encapsulate=lambda _pk: (KEM_CIPHERTEXT, KEM_SHARED_SECRET)
    )
    ek_private = arng.draws[0]
    spk = claimed.signed_prekey.key
    opk = claimed.one_time_prekey
    if opk is None:
        raise AssertionError("the claimed bundle must carry a one-time prekey")
    out["pqxdh"] = {
        "initiator_ephemeral_private": h(ek_private),
        "initiator_ephemeral_key": h(p.x25519_public(ek_private)),
        "dh1": h(p.x25519(alice.dh_private, spk)),
        "dh2": h(p.x25519(ek_private, bob.public.identity_dh_key)),
        "dh3": h(p.x25519(ek_private, spk)),
        "dh4": h(p.x25519(ek_private, opk.key)),
        "kem_ciphertext": h(KEM_CIPHERTEXT),
        "kem_shared_secret": h(KEM_SHARED_SECRET),
        "ikm": h(keys.ikm),
        "salt": h(pqxdh.SALT),
        "info": h(pqxdh.INFO_PQXDH),
        "sk": h(keys.sk),
        "hka": h(keys.hka),
        "nhkb": h(keys.nhkb),
        "ad": h(keys.ad),
        "prekey_header": h(sa.state.pending_prekey_header),
        "initiator_first_ratchet_private": h(arng.draws[1]),
        "initiator_state": _state(sa.state),
    }

    # --- A short conversation: a0 (in the sealed intro), a1 and a2 with a2 delivered first,
    # bob's reply b0 (a padded envelope: the ratchet turns), then a1 late, then a3 (new chain).
    conv: list[dict[str, Any]] = []
    sent: dict[str, bytes] = {}
    mrng = label_rng("message ids")

    def send(name: str, sender: ratchet.Session, plaintext: bytes) -> bytes:
        trace: ratchet.Trace = []
        msg = sender.encrypt(plaintext, trace)
        sent[name] = plaintext
        conv.append(
            {
                "step": f"{name} sent",
                "plaintext": h(plaintext),
                "message": h(msg),
                "keys": _trace(trace[0]),
                "sender_state": _state(sender.state),
            }
        )
        return msg

    def receive(name: str, receiver: ratchet.Session, msg: bytes) -> None:
        before = len(receiver.rng.draws)  # type: ignore[attr-defined]
        if receiver.decrypt(msg) != sent[name]:
            raise AssertionError(f"{name} did not decrypt to what was sent")
        new_draws = receiver.rng.draws[before:]  # type: ignore[attr-defined]
        conv.append(
            {
                "step": f"{name} received",
                "new_ratchet_private": h(new_draws[0]) if new_draws else None,
                "receiver_state": _state(receiver.state),
            }
        )

    reply_here = messages.encode_message(
        messages.ReplyHereMessage(messages.new_message_id(mrng), SENT_AT, "mbx_alice_pairwise")
    )
    a0 = send("a0", sa, reply_here)
    a1 = send("a1", sa, _text(mrng, "first"))
    a2 = send("a2", sa, _text(mrng, "second, delivered before the first"))

    irng = label_rng("intro key")
    intro_private = irng(32)
    intro_key = p.x25519_public(intro_private)
    srng = label_rng("seal")
    intro = sealed.encode_intro(sa.state.pending_prekey_header or b"", a0)
    sealed_env, st = sealed.seal(intro_key, intro, envelope.DEFAULT_BUCKETS, srng)
    out["sealed"] = {
        "intro_private": h(intro_private),
        "intro_key": h(intro_key),
        "nonce": h(st.nonce),
        "ephemeral_private": h(st.ephemeral_private),
        "ephemeral_key": h(st.ephemeral_key),
        "mask": h(st.mask),
        "shared_secret": h(st.shared_secret),
        "key": h(st.key),
        "aead_nonce": h(st.aead_nonce),
        "intro": h(st.intro),
        "padded": h(st.padded),
        "envelope": h(sealed_env),
    }

    header, first = sealed.decode_intro(sealed.unseal(intro_private, sealed_env))
    sb, pt, _ = accept_session(bob, secrets, header, first, brng)
    if pt != reply_here:
        raise AssertionError("a0 did not decrypt")
    conv.append(
        {
            "step": "a0 received (responder accepts the intro)",
            "new_ratchet_private": h(brng.draws[0]),
            "receiver_state": _state(sb.state),
        }
    )
    receive("a2", sb, a2)
    b0_payload = _text(mrng, "reply from bob")
    trace: ratchet.Trace = []
    capacity = envelope.message_capacity(1024) + envelope.PAD_LENGTH_PREFIX
    padded = envelope.pad(b0_payload, capacity)
    b0 = b"\x01" + sb.encrypt(padded, trace)
    conv.append(
        {
            "step": "b0 sent (as a 1024-byte envelope)",
            "payload": h(b0_payload),
            "plaintext": h(padded),
            "message": h(b0),
            "keys": _trace(trace[0]),
            "sender_state": _state(sb.state),
        }
    )
    if envelope.open_message(sa, b0) != b0_payload:
        raise AssertionError("b0 did not decrypt")
    conv.append(
        {
            "step": "b0 received",
            "new_ratchet_private": h(arng.draws[-1]),
            "receiver_state": _state(sa.state),
        }
    )
    receive("a1", sb, a1)
    a3 = send("a3", sa, _text(mrng, "after the ratchet turn"))
    receive("a3", sb, a3)
    out["ratchet"] = {
        "info_root": h(ratchet.INFO_ROOT),
        "label_message_key": h(ratchet.LABEL_MESSAGE_KEY),
        "label_chain_key": h(ratchet.LABEL_CHAIN_KEY),
        "info_message_keys": h(ratchet.INFO_MESSAGE_KEYS),
        "steps": conv,
    }
    out["envelope"] = {
        "buckets": list(envelope.DEFAULT_BUCKETS),
        "payload": h(b0_payload),
        "padded": h(padded),
        "envelope": h(b0),
    }

    # --- Files --------------------------------------------------------------------------------
    frng = label_rng("file")
    data = bytes(range(150))
    enc = files.encrypt_file(data, FILE_CHUNK_SIZE, frng)
    descriptor = messages.FileMessage(
        messages.new_message_id(mrng),
        SENT_AT,
        "blob_example",
        "cap_example",
        enc.key,
        enc.digest,
        enc.size,
        enc.chunk_size,
        enc.chunk_count,
        "example.bin",
        "application/octet-stream",
    )
    out["files"] = {
        "chunk_size": FILE_CHUNK_SIZE,
        "plaintext": h(data),
        "key": h(enc.key),
        "digest": h(enc.digest),
        "chunks": [
            {
                "index": i,
                "last": i == enc.chunk_count - 1,
                "nonce": h(files.chunk_nonce(i, i == enc.chunk_count - 1)),
                "ciphertext": h(c),
            }
            for i, c in enumerate(enc.chunks)
        ],
        "ad": h(files.AD_FILE_CHUNK),
        "descriptor": h(messages.encode_message(descriptor)),
    }

    # --- Payloads, safety number, contact link -------------------------------------------------
    out["messages"] = {
        "text": h(_text(mrng, "hello")),
        "timer": h(
            messages.encode_message(
                messages.TimerMessage(messages.new_message_id(mrng), SENT_AT, 86400)
            )
        ),
        "receipt": h(
            messages.encode_message(
                messages.ReceiptMessage(
                    messages.new_message_id(mrng), SENT_AT, (bytes.fromhex("00" * 16),)
                )
            )
        ),
        "reply_here": h(reply_here),
        "file": h(messages.encode_message(descriptor)),
    }
    ka, kb = alice.public.identity_key, bob.public.identity_key
    out["safety"] = {
        "identity_key_a": h(ka),
        "identity_key_b": h(kb),
        "hash_a": h(safety.party_hash(ka)),
        "hash_b": h(safety.party_hash(kb)),
        "digits": safety.safety_number(ka, kb),
        "groups": safety.safety_number_groups(ka, kb),
        "qr_payload": h(safety.qr_payload(ka, kb)),
    }
    link = ContactLink(
        "courier.example", "hnd_example", "mbx_bob_intro", bob.public.fingerprint, intro_key
    )
    out["link"] = {
        "host": link.host,
        "handle": link.handle,
        "intro_mailbox": link.intro_mailbox,
        "fingerprint": h(link.fingerprint),
        "intro_key": h(link.intro_key),
        "payload": h(link.payload()),
        "url": link.url(),
        "payload_b64u": b64u_encode(link.payload()),
    }
    return out


def render() -> str:
    return json.dumps(generate(), indent=1, ensure_ascii=True) + "\n"


def bootstrap_kem() -> str:
    _, _, secrets = bob_setup()
    ct, ss = p.mlkem_encapsulate(p.mlkem_public(secrets.pq_one_time[3]))
    lines = [ct.hex()[i : i + 96] for i in range(0, len(ct.hex()), 96)]
    body = "\n".join(f'    "{line}"' for line in lines)
    return (
        '"""One recorded ML-KEM-768 encapsulation to the vectors\' one-time PQ prekey (see\n'
        'vectors.py): encapsulation randomness cannot be injected, so it is fixed here."""\n\n'
        "from __future__ import annotations\n\n"
        f"KEM_CIPHERTEXT = bytes.fromhex(\n{body}\n)\n"
        f'KEM_SHARED_SECRET = bytes.fromhex("{ss.hex()}")\n'
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--bootstrap-kem"]:
        sys.stdout.write(bootstrap_kem())
    else:
        sys.stdout.write(render())
