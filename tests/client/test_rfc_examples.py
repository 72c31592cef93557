"""The examples printed in RFC 7748 (X25519), RFC 8032 (Ed25519) and RFC 5869 (HKDF)."""

from __future__ import annotations

from courier.crypto import primitives as p


def test_x25519_matches_the_rfc_7748_diffie_hellman_example() -> None:
    alice = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
    bob = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
    alice_pub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    bob_pub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
    assert p.x25519_public(alice).hex() == alice_pub
    assert p.x25519_public(bob).hex() == bob_pub
    assert p.x25519(alice, bytes.fromhex(bob_pub)).hex() == shared
    assert p.x25519(bob, bytes.fromhex(alice_pub)).hex() == shared


def test_x25519_matches_the_rfc_7748_scalar_multiplication_examples() -> None:
    cases = [
        (
            "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
            "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
            "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
        ),
    ]
    for scalar, u, out in cases:
        assert p.x25519(bytes.fromhex(scalar), bytes.fromhex(u)).hex() == out


def test_x25519_matches_the_rfc_7748_iterated_example_after_one_and_1000_rounds() -> None:
    k = u = (9).to_bytes(32, "little")
    results = {}
    for i in range(1, 1001):
        k, u = p.x25519(k, u), k
        if i in (1, 1000):
            results[i] = k.hex()
    assert results[1] == "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079"
    assert results[1000] == "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51"


RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


def test_ed25519_matches_the_rfc_8032_examples_and_rejects_a_flipped_bit() -> None:
    for seed, pub, msg, sig in RFC8032:
        seed_b, msg_b = bytes.fromhex(seed), bytes.fromhex(msg)
        assert p.ed25519_public(seed_b).hex() == pub
        assert p.ed25519_sign(seed_b, msg_b).hex() == sig
        p.ed25519_verify(bytes.fromhex(pub), bytes.fromhex(sig), msg_b)
        bad = bytearray.fromhex(sig)
        bad[0] ^= 1
        try:
            p.ed25519_verify(bytes.fromhex(pub), bytes(bad), msg_b)
        except p.InvalidSignature:
            pass
        else:
            raise AssertionError("a modified signature verified")


def test_hkdf_matches_the_rfc_5869_sha256_examples() -> None:
    ikm = bytes([0x0B] * 22)
    okm1 = p.hkdf(bytes(range(13)), ikm, bytes(range(0xF0, 0xFA)), 42)
    assert okm1.hex() == (
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    )
    okm3 = p.hkdf(b"", ikm, b"", 42)
    assert okm3.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )
