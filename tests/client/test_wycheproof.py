"""Wycheproof vectors: our accept/reject decision must match each vector's.

The files in tests/vectors/wycheproof are copied from the upstream commit named in SOURCE, under
the LICENSE beside them.
"""

from __future__ import annotations

import pytest

from courier.crypto import primitives as p
from courier.crypto.errors import CryptoError, DecryptionError, InvalidKey

from .support import load_wycheproof


def _tests(name: str, group_filter=lambda g: True):  # type: ignore[no-untyped-def]
    data = load_wycheproof(name)
    return [(g, t) for g in data["testGroups"] if group_filter(g) for t in g["tests"]]


def test_x25519_agrees_with_every_wycheproof_vector_and_refuses_each_zero_shared_secret() -> None:
    refused = 0
    for _, t in _tests("x25519_test.json"):
        private, public = bytes.fromhex(t["private"]), bytes.fromhex(t["public"])
        if "ZeroSharedSecret" in t["flags"]:
            # "acceptable" upstream; our policy (RFC 7748 section 6.1) is to refuse.
            with pytest.raises(InvalidKey):
                p.x25519(private, public)
            refused += 1
        else:
            assert t["result"] in ("valid", "acceptable")
            assert p.x25519(private, public).hex() == t["shared"], t["tcId"]
    assert refused >= 30


def test_ed25519_verification_matches_every_wycheproof_decision() -> None:
    cases = _tests("ed25519_test.json")
    assert len(cases) == 151
    for g, t in cases:
        public = bytes.fromhex(g["publicKey"]["pk"])
        try:
            p.ed25519_verify(public, bytes.fromhex(t["sig"]), bytes.fromhex(t["msg"]))
            accepted = True
        except p.InvalidSignature:
            accepted = False
        assert accepted == (t["result"] == "valid"), t["tcId"]


def test_aes_256_gcm_matches_every_wycheproof_vector_with_96_bit_iv_and_128_bit_tag() -> None:
    cases = _tests(
        "aes_gcm_test.json",
        lambda g: g["keySize"] == 256 and g["ivSize"] == 96 and g["tagSize"] == 128,
    )
    assert cases
    for _, t in cases:
        key, iv, aad = (bytes.fromhex(t[k]) for k in ("key", "iv", "aad"))
        msg, ct_tag = bytes.fromhex(t["msg"]), bytes.fromhex(t["ct"] + t["tag"])
        if t["result"] == "valid":
            assert p.aead_encrypt(key, iv, msg, aad) == ct_tag, t["tcId"]
            assert p.aead_decrypt(key, iv, ct_tag, aad) == msg, t["tcId"]
        else:
            with pytest.raises(DecryptionError):
                p.aead_decrypt(key, iv, ct_tag, aad)


def test_hkdf_sha256_matches_every_wycheproof_vector() -> None:
    for _, t in _tests("hkdf_sha256_test.json"):
        args = (bytes.fromhex(t["salt"]), bytes.fromhex(t["ikm"]), bytes.fromhex(t["info"]))
        if t["result"] == "valid":
            assert p.hkdf(*args, t["size"]).hex() == t["okm"], t["tcId"]
        else:
            with pytest.raises(CryptoError):
                p.hkdf(*args, t["size"])


def test_mlkem_768_decapsulation_matches_every_wycheproof_vector() -> None:
    cases = _tests("mlkem_768_test.json")
    assert len(cases) == 193
    for _, t in cases:
        seed, ct = bytes.fromhex(t["seed"]), bytes.fromhex(t["c"])
        if t["result"] == "valid":
            if "ek" in t:
                assert p.mlkem_public(seed).hex() == t["ek"], t["tcId"]
            assert p.mlkem_decapsulate(seed, ct).hex() == t["K"], t["tcId"]
        else:
            with pytest.raises(CryptoError):
                p.mlkem_decapsulate(seed, ct)
