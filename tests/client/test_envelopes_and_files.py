"""Padding, envelopes, the sealed intro (sections 9-10) and file chunks (section 12)."""

from __future__ import annotations

import pytest

from courier.crypto import envelope, files, sealed
from courier.crypto import primitives as p
from courier.crypto.errors import DecryptionError, EncodingError
from courier.crypto.identity import Identity, generate_bundle
from courier.crypto.session import accept_session, start_session

from .support import new_pair


def test_envelopes_are_exactly_a_bucket_size_and_pick_the_smallest_that_fits() -> None:
    alice, bob, *_ = new_pair()
    cap = envelope.message_capacity(1024)
    for size, bucket in [(0, 1024), (cap, 1024), (cap + 1, 4096), (60_000, 65536)]:
        env = envelope.seal_message(alice, bytes(size))
        assert len(env) == bucket and env[0] == 0x01
        assert envelope.open_message(bob, env) == bytes(size)
    with pytest.raises(EncodingError):
        envelope.seal_message(alice, bytes(envelope.message_capacity(65536) + 1))


def test_padding_hides_the_length_within_a_bucket() -> None:
    alice, bob, *_ = new_pair()
    short = envelope.seal_message(alice, b"")
    long = envelope.seal_message(alice, bytes(envelope.message_capacity(1024)))
    assert len(short) == len(long) == 1024
    # Nothing in the clear depends on the length: only the version byte is fixed.
    assert short[0] == long[0] == 1
    assert envelope.open_message(bob, short) == b""


def test_an_envelope_of_a_non_bucket_size_or_unknown_version_is_refused() -> None:
    alice, bob, *_ = new_pair()
    env = envelope.seal_message(alice, b"x")
    before = bob.to_bytes()
    for bad in (env[:-1], env + b"\0", b"\x02" + env[1:]):
        with pytest.raises(DecryptionError):
            envelope.open_message(bob, bad)
    assert bob.to_bytes() == before


def test_unpad_refuses_overlong_lengths_and_non_zero_padding() -> None:
    assert envelope.unpad(envelope.pad(b"abc", 10)) == b"abc"
    with pytest.raises(EncodingError):
        envelope.unpad(b"\x00\x00\x00\x09abc")
    with pytest.raises(EncodingError):
        envelope.unpad(b"\x00\x00\x00\x01a\x01")


def test_a_sealed_intro_carries_the_pqxdh_header_and_starts_the_conversation() -> None:
    alice_id, bob_id = Identity.generate(), Identity.generate()
    bundle, secrets = generate_bundle(bob_id, one_time_ids=(2,), pq_one_time_ids=(3,))
    intro_private = Identity.generate().dh_private
    intro_key = p.x25519_public(intro_private)
    alice, _ = start_session(alice_id, bundle.claim())
    env1 = sealed.seal_intro_message(alice, intro_key, b"reply to mbx1")
    env2 = sealed.seal_intro_message(alice, intro_key, b"and more")
    assert len(env1) == len(env2) == 4096
    header, first = sealed.decode_intro(sealed.unseal(intro_private, env1))
    assert header.initiator == alice_id.public
    bob, plaintext, _ = accept_session(bob_id, secrets, header, first)
    assert plaintext == b"reply to mbx1"
    header2, second = sealed.decode_intro(sealed.unseal(intro_private, env2))
    assert header2 == header  # the same session: bob decrypts with what he has
    assert bob.decrypt(second) == b"and more"
    alice.decrypt(bob.encrypt(b"hi"))
    with pytest.raises(EncodingError):  # after a reply, alice moves to the pairwise mailbox
        sealed.seal_intro_message(alice, intro_key, b"x")


def test_a_sealed_envelope_opens_only_with_the_intro_key_and_resists_tampering() -> None:
    intro_private = Identity.generate().dh_private
    env, _ = sealed.seal(p.x25519_public(intro_private), b"\x01" + bytes(1300))
    with pytest.raises(DecryptionError):
        sealed.unseal(Identity.generate().dh_private, env)
    for position in (1, 20, 40, 100, len(env) - 1):
        bad = bytearray(env)
        bad[position] ^= 0x80
        with pytest.raises(DecryptionError):
            sealed.unseal(intro_private, bytes(bad))


def test_the_sealed_ephemeral_key_is_masked_so_its_top_bit_varies() -> None:
    intro_key = p.x25519_public(Identity.generate().dh_private)
    top_bits = {sealed.seal(intro_key, b"x")[0][1 + 16 + 31] >> 7 for _ in range(64)}
    assert top_bits == {0, 1}


@pytest.mark.parametrize("size", [0, 1, 47, 48, 49, 150, 480])
def test_files_round_trip_with_every_chunk_exactly_the_chunk_size(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    enc = files.encrypt_file(data, 64)
    assert all(len(c) == 64 for c in enc.chunks)
    assert enc.chunk_count == files.chunk_count(size, 64)
    assert files.decrypt_file(enc.key, enc.chunks, size, enc.digest, 64) == data


def test_file_chunks_cannot_be_reordered_truncated_or_extended() -> None:
    data = bytes(200)
    enc = files.encrypt_file(data, 64)
    chunks = list(enc.chunks)
    assert len(chunks) == 5

    def check(bad: list[bytes], size: int = 200) -> None:
        with pytest.raises(DecryptionError):
            files.decrypt_file(enc.key, bad, size, enc.digest, 64)

    check([chunks[1], chunks[0], *chunks[2:]])  # reordered
    check(chunks[:-1], size=192)  # truncated to a whole number of chunks
    check(chunks[:-1])  # dropped last chunk
    check([*chunks, chunks[-1]], size=248)  # extended
    check([*chunks[:-1], chunks[-2]])  # a middle chunk replayed as the last
    check(chunks, size=199)  # size lies
    bad = bytearray(chunks[2])
    bad[0] ^= 1
    check([*chunks[:2], bytes(bad), *chunks[3:]])


def test_the_default_file_chunk_is_one_mebibyte() -> None:
    enc = files.encrypt_file(bytes(files.chunk_capacity(files.DEFAULT_CHUNK_SIZE) + 1))
    assert [len(c) for c in enc.chunks] == [1_048_576, 1_048_576]
