"""Prekey bundles (docs/protocol.md section 3) and PQXDH (section 6)."""

from __future__ import annotations

import copy

import pytest

from courier.crypto import pqxdh
from courier.crypto import primitives as p
from courier.crypto.encoding import b64u_encode
from courier.crypto.errors import DecryptionError, InvalidBundle, InvalidKey
from courier.crypto.identity import (
    Identity,
    bundle_to_json,
    generate_bundle,
    verify_bundle,
    verify_claimed_bundle,
)
from courier.crypto.pqxdh import PrekeyHeader
from courier.crypto.session import accept_session, start_session


@pytest.fixture(scope="module")
def bundle_json() -> dict:
    bob = Identity.generate()
    bundle, _ = generate_bundle(bob, one_time_ids=(2, 3), pq_one_time_ids=(4, 5))
    return bundle_to_json(bundle)


def test_a_generated_bundle_verifies_and_round_trips(bundle_json: dict) -> None:
    assert bundle_to_json(verify_bundle(bundle_json)) == bundle_json


@pytest.mark.parametrize(
    "path",
    [
        ("identity_dh_signature",),
        ("signed_prekey", "signature"),
        ("signed_prekey", "key"),
        ("pq_last_resort_prekey", "signature"),
        ("pq_last_resort_prekey", "key"),
        ("pq_one_time_prekeys", 0, "signature"),
        ("pq_one_time_prekeys", 1, "key"),
    ],
)
def test_a_bundle_with_any_modified_signed_value_is_refused(bundle_json: dict, path: tuple) -> None:
    bad = copy.deepcopy(bundle_json)
    target = bad
    for key in path[:-1]:
        target = target[key]
    raw = bytearray(__import__("base64").urlsafe_b64decode(target[path[-1]] + "=="))
    raw[5] ^= 1
    target[path[-1]] = b64u_encode(bytes(raw))
    with pytest.raises(InvalidBundle):
        verify_bundle(bad)


def test_a_signed_prekey_signature_cannot_be_moved_to_another_id(bundle_json: dict) -> None:
    bad = copy.deepcopy(bundle_json)
    bad["signed_prekey"]["id"] += 1
    with pytest.raises(InvalidBundle):
        verify_bundle(bad)


def test_a_one_time_pq_signature_is_refused_as_a_last_resort_one(bundle_json: dict) -> None:
    bad = copy.deepcopy(bundle_json)
    bad["pq_last_resort_prekey"] = bad["pq_one_time_prekeys"][0]
    bad["pq_one_time_prekeys"] = bad["pq_one_time_prekeys"][1:]
    with pytest.raises(InvalidBundle):
        verify_bundle(bad)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.pop("signed_prekey"),
        lambda b: b.update(extra=1),
        lambda b: b["signed_prekey"].update(id=True),
        lambda b: b["signed_prekey"].update(id=-1),
        lambda b: b["signed_prekey"].update(id=2**32),
        lambda b: b["signed_prekey"].update(key=b["signed_prekey"]["key"] + "="),
        lambda b: b["signed_prekey"].update(key=b["signed_prekey"]["key"][:-2]),
        lambda b: b["one_time_prekeys"].append(dict(b["one_time_prekeys"][0])),
        lambda b: b["pq_one_time_prekeys"][0].update(id=b["pq_last_resort_prekey"]["id"]),
        lambda b: b.update(one_time_prekeys={}),
    ],
)
def test_a_malformed_bundle_is_refused(bundle_json: dict, mutate) -> None:  # type: ignore[no-untyped-def]
    bad = copy.deepcopy(bundle_json)
    mutate(bad)
    with pytest.raises(InvalidBundle):
        verify_bundle(bad)


def test_a_claimed_bundle_verifies_in_both_shapes_and_pins_the_fingerprint() -> None:
    bob = Identity.generate()
    bundle, _ = generate_bundle(bob, one_time_ids=(2,), pq_one_time_ids=(4,))
    full, empty = bundle_to_json(bundle.claim(0)), bundle_to_json(bundle.claim(1))
    assert empty["one_time_prekey"] is None and empty["pq_one_time_prekey"] is None
    assert verify_claimed_bundle(full, bob.public.fingerprint).one_time_prekey is not None
    claimed = verify_claimed_bundle(empty, bob.public.fingerprint)
    assert claimed.pq_prekey == bundle.pq_last_resort_prekey
    with pytest.raises(InvalidBundle):
        verify_claimed_bundle(full, Identity.generate().public.fingerprint)


@pytest.mark.parametrize("index", [0, 1])
def test_both_sides_of_pqxdh_agree_with_and_without_one_time_prekeys(index: int) -> None:
    alice, bob = Identity.generate(), Identity.generate()
    bundle, secrets = generate_bundle(bob, one_time_ids=(2,), pq_one_time_ids=(4,))
    keys_a, header = pqxdh.initiate(alice, bundle.claim(index))
    keys_b = pqxdh.respond(bob, secrets, PrekeyHeader.decode(header.encode()))
    assert (keys_a.sk, keys_a.hka, keys_a.nhkb, keys_a.ad) == (
        keys_b.sk,
        keys_b.hka,
        keys_b.nhkb,
        keys_b.ad,
    )
    assert len(header.encode()) == pqxdh.PREKEY_HEADER_LEN
    assert len(keys_a.ikm) == 32 * (5 if index == 0 else 4) + 32


def test_the_initiator_can_be_driven_from_a_recorded_kem_pair() -> None:
    alice, bob = Identity.generate(), Identity.generate()
    bundle, secrets = generate_bundle(bob)
    ct, ss = p.mlkem_encapsulate(bundle.pq_last_resort_prekey.key)
    keys, header = pqxdh.initiate(alice, bundle.claim(), encapsulate=lambda _pk: (ct, ss))
    assert header.kem_ciphertext == ct
    assert pqxdh.respond(bob, secrets, header).sk == keys.sk


def test_an_all_zero_x25519_shared_secret_is_refused() -> None:
    low_order = bytes(32)
    with pytest.raises(InvalidKey):
        p.x25519(Identity.generate().dh_private, low_order)
    one = (1).to_bytes(32, "little")
    with pytest.raises(InvalidKey):
        p.x25519(Identity.generate().dh_private, one)


def test_a_header_with_a_low_order_ephemeral_key_is_refused_by_the_responder() -> None:
    alice, bob = Identity.generate(), Identity.generate()
    bundle, secrets = generate_bundle(bob)
    _, header = pqxdh.initiate(alice, bundle.claim())
    bad = PrekeyHeader(**{**header.__dict__, "ephemeral_key": bytes(32)})
    with pytest.raises(DecryptionError):
        pqxdh.respond(bob, secrets, bad)


def test_one_time_prekeys_are_deleted_only_after_the_first_message_authenticates() -> None:
    alice, bob = Identity.generate(), Identity.generate()
    bundle, secrets = generate_bundle(bob, one_time_ids=(2,), pq_one_time_ids=(4,))
    session, _ = start_session(alice, bundle.claim())
    header = PrekeyHeader.decode(session.state.pending_prekey_header or b"")
    first = session.encrypt(b"hi")
    with pytest.raises(DecryptionError):
        accept_session(bob, secrets, header, first[:-1] + bytes([first[-1] ^ 1]))
    assert 2 in secrets.one_time and 4 in secrets.pq_one_time
    accept_session(bob, secrets, header, first)
    assert 2 not in secrets.one_time and 4 not in secrets.pq_one_time
    with pytest.raises(DecryptionError):  # the replay finds its one-time prekeys gone
        accept_session(bob, secrets, header, first)


def test_a_forged_initiator_identity_is_refused() -> None:
    alice, bob, mallory = Identity.generate(), Identity.generate(), Identity.generate()
    bundle, secrets = generate_bundle(bob)
    _, header = pqxdh.initiate(alice, bundle.claim())
    forged = type(header.initiator)(
        header.initiator.identity_key,
        mallory.public.identity_dh_key,
        header.initiator.identity_dh_signature,
    )
    with pytest.raises(DecryptionError):
        pqxdh.respond(bob, secrets, PrekeyHeader(**{**header.__dict__, "initiator": forged}))


def test_a_signed_but_malformed_ml_kem_key_is_refused() -> None:
    from courier.crypto.identity import PQ_KIND_ONE_TIME, pq_prekey_message

    bob = Identity.generate()
    bundle, _ = generate_bundle(bob, pq_one_time_ids=(4,))
    obj = bundle_to_json(bundle)
    key = bytearray(bundle.pq_one_time_prekeys[0].key)
    key[0] = key[1] = 0xFF  # a coefficient of 4095 >= q
    obj["pq_one_time_prekeys"][0]["key"] = b64u_encode(bytes(key))
    obj["pq_one_time_prekeys"][0]["signature"] = b64u_encode(
        bob.sign(pq_prekey_message(PQ_KIND_ONE_TIME, 4, bytes(key)))
    )
    with pytest.raises(InvalidBundle):
        verify_bundle(obj)


def test_the_crypto_core_imports_nothing_from_django_or_the_server() -> None:
    import subprocess
    import sys

    code = (
        "import sys, courier.crypto.vectors, courier.crypto.sealed, courier.crypto.link;"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('django', 'messenger', 'keys', 'relay', 'files')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
