"""tests/vectors/protocol.json: reproducible, and replayable through the Python code."""

from __future__ import annotations

import json

from courier.crypto import envelope, files, messages, pqxdh, ratchet, safety, sealed
from courier.crypto import primitives as p
from courier.crypto.identity import Identity, PrekeySecrets, verify_bundle, verify_claimed_bundle
from courier.crypto.link import parse_contact_link
from courier.crypto.ratchet import Session
from courier.crypto.session import accept_session
from courier.crypto.vectors import render

from .support import VECTORS

PATH = VECTORS / "protocol.json"


def _load() -> dict:
    return json.loads(PATH.read_text())


def b(x: str) -> bytes:
    return bytes.fromhex(x)


def test_regenerating_the_vectors_gives_the_identical_file() -> None:
    assert render() == PATH.read_text(), (
        "run: python -m courier.crypto.vectors > tests/vectors/protocol.json"
    )


def test_the_recorded_kem_pair_decapsulates_under_the_recorded_prekey() -> None:
    v = _load()
    seed = b(v["bundle"]["secrets"]["pq_one_time_prekeys"]["3"])
    assert p.mlkem_decapsulate(seed, b(v["pqxdh"]["kem_ciphertext"])) == b(
        v["pqxdh"]["kem_shared_secret"]
    )


def test_the_vectors_replay_through_the_responder_side() -> None:
    v = _load()
    ids = v["identities"]
    bob = Identity(b(ids["bob"]["signing_seed"]), b(ids["bob"]["dh_private"]))
    assert bob.public.identity_key.hex() == ids["bob"]["identity_key"]
    verify_bundle(v["bundle"]["published"])
    verify_claimed_bundle(v["bundle"]["claimed"], b(ids["bob"]["fingerprint"]))
    sec = v["bundle"]["secrets"]
    secrets = PrekeySecrets(
        signed={int(k): b(x) for k, x in sec["signed_prekey"].items()},
        one_time={int(k): b(x) for k, x in sec["one_time_prekeys"].items()},
        pq_last_resort={int(k): b(x) for k, x in sec["pq_last_resort_prekey"].items()},
        pq_one_time={int(k): b(x) for k, x in sec["pq_one_time_prekeys"].items()},
    )
    intro = sealed.unseal(b(v["sealed"]["intro_private"]), b(v["sealed"]["envelope"]))
    assert intro == b(v["sealed"]["intro"])
    header, first = sealed.decode_intro(intro)
    assert header.encode().hex() == v["pqxdh"]["prekey_header"]
    keys = pqxdh.respond(bob, secrets, header)
    assert keys.ikm.hex() == v["pqxdh"]["ikm"]
    assert keys.sk.hex() == v["pqxdh"]["sk"] and keys.ad.hex() == v["pqxdh"]["ad"]

    steps = {s["step"]: s for s in v["ratchet"]["steps"]}
    draws = iter([b(steps["a0 received (responder accepts the intro)"]["new_ratchet_private"])])
    bob_session, plaintext, _ = accept_session(bob, secrets, header, first, lambda n: next(draws))
    assert plaintext == b(steps["a0 sent"]["plaintext"])
    assert (
        bob_session.state.to_bytes().hex()
        == (steps["a0 received (responder accepts the intro)"]["receiver_state"]["serialized"])
    )
    assert bob_session.decrypt(b(steps["a2 sent"]["message"])) == b(steps["a2 sent"]["plaintext"])
    assert bob_session.decrypt(b(steps["a1 sent"]["message"])) == b(steps["a1 sent"]["plaintext"])


def test_every_recorded_ratchet_state_and_message_replays_exactly() -> None:
    v = _load()
    for s in v["ratchet"]["steps"]:
        state_key = "sender_state" if "sender_state" in s else "receiver_state"
        state = Session.from_bytes(b(s[state_key]["serialized"])).state
        assert p.x25519_public(state.dhs_private).hex() == s[state_key]["dhs_public"]
        if "keys" in s:
            k = s["keys"]
            next_ck, mk = ratchet.kdf_ck(b(k["chain_key"]))
            assert (next_ck.hex(), mk.hex()) == (k["next_chain_key"], k["message_key"])
            body_key, body_nonce, header_nonce = ratchet.message_keys(mk)
            assert body_key.hex() == k["body_key"] and header_nonce.hex() == k["header_nonce"]
            assert body_nonce.hex() == k["body_nonce"]
            message = b(s["message"])
            if message[0] == 1 and len(message) == 1024:  # b0 is a full envelope
                message = message[1:]
            assert message == b(k["encrypted_header"]) + b(k["body"])


def test_the_envelope_file_safety_and_link_vectors_replay() -> None:
    v = _load()
    e = v["envelope"]
    assert envelope.unpad(b(e["padded"])) == b(e["payload"])
    assert len(b(e["envelope"])) == 1024
    f = v["files"]
    chunks = [b(c["ciphertext"]) for c in f["chunks"]]
    assert files.decrypt_file(b(f["key"]), chunks, 150, b(f["digest"]), f["chunk_size"]) == b(
        f["plaintext"]
    )
    descriptor = messages.decode_message(b(f["descriptor"]))
    assert isinstance(descriptor, messages.FileMessage) and descriptor.key == b(f["key"])
    s = v["safety"]
    ka, kb = b(s["identity_key_a"]), b(s["identity_key_b"])
    assert safety.safety_number(kb, ka) == s["digits"]
    assert safety.qr_payload(kb, ka).hex() == s["qr_payload"]
    link = parse_contact_link(v["link"]["url"])
    assert link.payload().hex() == v["link"]["payload"]
    assert link.intro_key.hex() == v["sealed"]["intro_key"]
