from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

from courier.crypto.identity import (
    Identity,
    fingerprint,
    pq_prekey_message,
    verify_claimed_bundle,
)
from keys.models import OneTimePrekey, PrekeyBundle
from messenger.codec import b64u_decode, b64u_encode
from messenger.sessions import mint_session
from tests.keys.support import Directory, error_code, make_bundle, new_handle, signed_headers

pytestmark = pytest.mark.django_db

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "protocol.json"


def stored_rows() -> tuple[int, int]:
    return PrekeyBundle.objects.count(), OneTimePrekey.objects.count()


def other_session_directory() -> Directory:
    token, _ = mint_session()
    return Directory(Client(headers={"Authorization": f"Bearer {token}"}))


# --- publish and claim ------------------------------------------------------------------------


def test_it_publishes_a_bundle_and_hands_out_each_one_time_prekey_once(
    directory: Directory, identity: Identity, roomy_rates: None
) -> None:
    handle = new_handle()
    published = directory.put(handle, make_bundle(identity, [5, 6], [7, 8]), identity)
    assert published.status_code == 201
    assert published.json()["one_time_prekeys"] == 2
    assert published.json()["pq_one_time_prekeys"] == 2

    claims = [directory.claim(handle) for _ in range(3)]
    assert [c.status_code for c in claims] == [200, 200, 200]
    bodies = [c.json() for c in claims]
    # The client's own verifier accepts what the server hands out, pinned by fingerprint.
    for body in bodies:
        verify_claimed_bundle(body, fingerprint(identity.public.identity_key))
    assert [b["one_time_prekey"]["id"] for b in bodies[:2]] == [5, 6]
    assert [b["pq_one_time_prekey"]["id"] for b in bodies[:2]] == [7, 8]
    # Exhausted: last-resort keys only, both one-time fields present and null.
    assert bodies[2]["one_time_prekey"] is None
    assert bodies[2]["pq_one_time_prekey"] is None
    assert bodies[2]["pq_last_resort_prekey"]["id"] == 0
    assert OneTimePrekey.objects.count() == 0


def test_it_serves_the_protocol_vector_bundle_exactly(
    directory: Directory, roomy_rates: None
) -> None:
    vectors = json.loads(VECTORS.read_text())
    bob = vectors["identities"]["bob"]
    signer = Identity(bytes.fromhex(bob["signing_seed"]), bytes.fromhex(bob["dh_private"]))
    handle = new_handle()
    assert directory.put(handle, vectors["bundle"]["published"], signer).status_code == 201
    assert directory.claim(handle).json() == vectors["bundle"]["claimed"]


def test_a_claim_needs_a_session(client: Client, directory: Directory, identity) -> None:
    handle = new_handle()
    directory.put(handle, make_bundle(identity, [1]), identity)
    response = client.get(f"/api/v1/keys/{handle}")
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"
    assert OneTimePrekey.objects.count() == 1


def test_publishing_needs_a_session(client: Client, identity: Identity) -> None:
    response = Directory(client).put(new_handle(), make_bundle(identity), identity)
    assert response.status_code == 401
    assert stored_rows() == (0, 0)


def test_an_unknown_or_stale_handle_is_not_found(directory: Directory, identity) -> None:
    assert error_code(directory.claim(new_handle())) == "unknown_handle"
    handle = new_handle()
    directory.put(handle, make_bundle(identity, [1]), identity)
    PrekeyBundle.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = directory.claim(handle)
    assert response.status_code == 404
    assert error_code(response) == "unknown_handle"
    assert error_code(directory.count(handle, identity)) == "unknown_handle"


def test_stored_times_are_coarsened(directory: Directory, identity: Identity) -> None:
    directory.put(new_handle(), make_bundle(identity), identity)
    bundle = PrekeyBundle.objects.get()
    for moment in (bundle.expires_at, bundle.signed_prekey_since):
        assert moment.second == 0 and moment.microsecond == 0
    retention = timedelta(seconds=django_settings.PREKEY_RETENTION_SECONDS)
    assert timedelta(0) <= bundle.expires_at - timezone.now() - retention <= timedelta(minutes=1)


# --- signatures in the bundle -----------------------------------------------------------------


def corrupt(text: str) -> str:
    raw = bytearray(b64u_decode(text))
    raw[0] ^= 0x01
    return b64u_encode(bytes(raw))


BUNDLE_SIGNATURES = [
    ("identity_dh_signature",),
    ("signed_prekey", "signature"),
    ("pq_last_resort_prekey", "signature"),
    ("pq_one_time_prekeys", -1, "signature"),
    ("pq_one_time_prekeys", 0, "signature"),
]


@pytest.mark.parametrize("where", BUNDLE_SIGNATURES, ids=lambda w: ".".join(map(str, w)))
def test_a_bundle_with_one_bad_signature_is_refused_whole(
    directory: Directory, identity: Identity, where: tuple
) -> None:
    bundle = make_bundle(identity, [1, 2, 3], [4, 5, 6])
    node = bundle
    for step in where[:-1]:
        node = node[step]
    node[where[-1]] = corrupt(node[where[-1]])
    response = directory.put(new_handle(), bundle, identity)
    assert response.status_code == 400
    assert error_code(response) == "bad_bundle_signature"
    assert stored_rows() == (0, 0)


def test_a_bad_signature_in_a_top_up_changes_nothing(
    directory: Directory, identity: Identity
) -> None:
    handle = new_handle()
    directory.put(handle, make_bundle(identity, [1], [2]), identity)
    before = list(PrekeyBundle.objects.values())
    top_up = make_bundle(identity, [10, 11], [12, 13], signed_prekey_id=9, pq_last_resort_id=9)
    top_up["pq_one_time_prekeys"][1]["signature"] = corrupt(
        top_up["pq_one_time_prekeys"][1]["signature"]
    )
    assert error_code(directory.put(handle, top_up, identity)) == "bad_bundle_signature"
    assert list(PrekeyBundle.objects.values()) == before
    assert sorted(OneTimePrekey.objects.values_list("key_id", flat=True)) == [1, 2]


def test_a_one_time_pq_signature_cannot_pass_as_a_last_resort_one(
    directory: Directory, identity: Identity
) -> None:
    bundle = make_bundle(identity, [], [7])
    # Same id, key and signature, but the kind byte in the signed message differs.
    bundle["pq_last_resort_prekey"] = bundle["pq_one_time_prekeys"].pop()
    response = directory.put(new_handle(), bundle, identity)
    assert error_code(response) == "bad_bundle_signature"
    assert stored_rows() == (0, 0)


def test_a_bundle_signed_by_another_identity_is_refused(directory: Directory) -> None:
    alice, mallory = Identity.generate(), Identity.generate()
    bundle = make_bundle(mallory, [1], [2])
    bundle["identity_key"] = make_bundle(alice)["identity_key"]
    # The request itself is signed by alice; the prekeys are not.
    response = directory.put(new_handle(), bundle, alice)
    assert error_code(response) == "bad_bundle_signature"
    assert stored_rows() == (0, 0)


def test_a_malformed_ml_kem_key_is_refused_even_when_signed(
    directory: Directory, identity: Identity
) -> None:
    bundle = make_bundle(identity)
    key = b"\xff" * 1184  # right length, coefficients out of range (FIPS 203 check)
    bundle["pq_last_resort_prekey"] = {
        "id": 0,
        "key": b64u_encode(key),
        "signature": b64u_encode(identity.sign(pq_prekey_message(1, 0, key))),
    }
    response = directory.put(new_handle(), bundle, identity)
    assert response.status_code == 400
    assert error_code(response) == "invalid_pq_key"
    assert stored_rows() == (0, 0)


# --- signatures on the request ----------------------------------------------------------------


def test_a_replayed_publish_is_refused(directory: Directory, identity: Identity) -> None:
    handle = new_handle()
    path = f"/api/v1/keys/{handle}"
    body = json.dumps(make_bundle(identity, [1])).encode()
    headers = signed_headers(directory.client, identity, "PUT", path, body)
    assert directory.put(handle, body, identity, headers=headers).status_code == 201
    directory.delete(handle, identity)
    replay = directory.put(handle, body, identity, headers=headers)
    assert replay.status_code == 403
    assert error_code(replay) == "stale_challenge"
    assert stored_rows() == (0, 0)


@pytest.mark.parametrize("forgery", ["unsigned", "other_key", "other_body", "other_path"])
def test_a_forged_publish_is_refused(
    directory: Directory, identity: Identity, forgery: str
) -> None:
    handle = new_handle()
    path = f"/api/v1/keys/{handle}"
    body = json.dumps(make_bundle(identity, [1])).encode()
    headers = {
        "unsigned": {},
        "other_key": signed_headers(directory.client, Identity.generate(), "PUT", path, body),
        "other_body": signed_headers(directory.client, identity, "PUT", path, body + b" "),
        "other_path": signed_headers(
            directory.client, identity, "PUT", f"/api/v1/keys/{new_handle()}", body
        ),
    }[forgery]
    response = directory.put(handle, body, identity, headers=headers)
    assert response.status_code == 403
    assert error_code(response) == "bad_signature"
    assert stored_rows() == (0, 0)


def test_a_handle_s_identity_cannot_be_swapped(directory: Directory) -> None:
    alice, mallory = Identity.generate(), Identity.generate()
    handle = new_handle()
    assert directory.put(handle, make_bundle(alice, [1], [2]), alice).status_code == 201
    # Mallory's bundle and request are both validly signed, by Mallory.
    swap = directory.put(handle, make_bundle(mallory, [3], [4]), mallory)
    assert swap.status_code == 403
    assert error_code(swap) == "identity_mismatch"
    assert error_code(directory.delete(handle, mallory)) == "bad_signature"
    assert error_code(directory.count(handle, mallory)) == "bad_signature"
    stored = PrekeyBundle.objects.get()
    assert bytes(stored.identity_key) == alice.public.identity_key
    assert sorted(OneTimePrekey.objects.values_list("key_id", flat=True)) == [1, 2]


def test_a_stale_handle_can_be_taken_by_a_new_identity(directory: Directory) -> None:
    # After the retention the binding ends with the bundle; contact links pin the
    # fingerprint, so a new owner cannot impersonate the old one.
    alice, bob = Identity.generate(), Identity.generate()
    handle = new_handle()
    directory.put(handle, make_bundle(alice, [1]), alice)
    PrekeyBundle.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert directory.put(handle, make_bundle(bob, [2]), bob).status_code == 201
    assert bytes(PrekeyBundle.objects.get().identity_key) == bob.public.identity_key
    assert list(OneTimePrekey.objects.values_list("key_id", flat=True)) == [2]


# --- top-up, stock and batch limits ------------------------------------------------------------


def test_a_republish_appends_one_time_prekeys_and_replaces_the_rest(
    directory: Directory, identity: Identity, roomy_rates: None
) -> None:
    handle = new_handle()
    directory.put(handle, make_bundle(identity, [1, 2], [3]), identity)
    again = directory.put(
        handle,
        make_bundle(identity, [4], [5, 6], signed_prekey_id=7, pq_last_resort_id=8),
        identity,
    )
    assert again.status_code == 200
    assert again.json()["one_time_prekeys"] == 3
    assert again.json()["pq_one_time_prekeys"] == 3
    claimed = directory.claim(handle).json()
    assert claimed["signed_prekey"]["id"] == 7
    assert claimed["pq_last_resort_prekey"]["id"] == 8
    assert claimed["one_time_prekey"]["id"] == 1


def test_a_top_up_may_not_reuse_a_stored_id(directory: Directory, identity: Identity) -> None:
    handle = new_handle()
    directory.put(handle, make_bundle(identity, [1], [2], pq_last_resort_id=9), identity)
    for bundle in (
        make_bundle(identity, [1], [], pq_last_resort_id=9),
        make_bundle(identity, [], [2], pq_last_resort_id=9),
        # The last-resort id may change, but not to a stored one-time PQ id.
        make_bundle(identity, [], [], pq_last_resort_id=2),
    ):
        response = directory.put(handle, bundle, identity)
        assert response.status_code == 409
        assert error_code(response) == "prekey_id_in_use"
    assert OneTimePrekey.objects.count() == 2


@pytest.mark.parametrize("case", ["x25519", "pq", "pq-with-last-resort"])
def test_it_refuses_duplicate_ids_in_one_bundle(
    directory: Directory, identity: Identity, case: str
) -> None:
    bundle = make_bundle(identity, [1], [2], pq_last_resort_id=3)
    if case == "x25519":
        bundle["one_time_prekeys"] *= 2
    elif case == "pq":
        bundle["pq_one_time_prekeys"] *= 2
    else:
        # Validly signed, but the initiator could not tell it from the last-resort prekey.
        other = make_bundle(identity, [], [3], pq_last_resort_id=0)
        bundle["pq_one_time_prekeys"] = other["pq_one_time_prekeys"]
    response = directory.put(new_handle(), bundle, identity)
    assert response.status_code == 400
    assert error_code(response) == "duplicate_prekey_id"
    assert stored_rows() == (0, 0)


def test_the_stock_is_capped(directory: Directory, identity: Identity, settings) -> None:
    settings.PREKEY_MAX_ONE_TIME = 3
    handle = new_handle()
    assert directory.put(handle, make_bundle(identity, [1, 2], [3, 4]), identity).status_code == 201
    full = directory.put(handle, make_bundle(identity, [5, 6], []), identity)
    assert full.status_code == 409
    assert error_code(full) == "prekey_stock_full"
    assert directory.put(handle, make_bundle(identity, [5], [6]), identity).status_code == 200
    assert OneTimePrekey.objects.count() == 6


def test_a_batch_is_capped(directory: Directory, identity: Identity, settings) -> None:
    settings.PREKEY_MAX_BATCH = 2
    response = directory.put(new_handle(), make_bundle(identity, [], [1, 2, 3]), identity)
    assert response.status_code == 400
    assert error_code(response) == "too_many_prekeys"
    assert stored_rows() == (0, 0)


def test_a_full_default_batch_fits_the_request_body_limit(
    directory: Directory, identity: Identity
) -> None:
    batch = range(1, django_settings.PREKEY_MAX_BATCH + 1)
    bundle = make_bundle(identity, batch, [i + 1000 for i in batch], pq_last_resort_id=0)
    assert directory.put(new_handle(), bundle, identity).status_code == 201


# --- strict validation ------------------------------------------------------------------------


def _mutations(bundle: dict) -> dict[str, dict]:
    def changed(path: tuple, value) -> dict:
        copy = json.loads(json.dumps(bundle))
        node = copy
        for step in path[:-1]:
            node = node[step]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return copy

    key = bundle["identity_key"]
    pq_key = bundle["pq_last_resort_prekey"]["key"]
    return {
        "short key": changed(("identity_key",), key[:-1]),
        "long key": changed(("identity_dh_key",), key + "A"),
        "31-byte key": changed(("signed_prekey", "key"), b64u_encode(b"\x01" * 31)),
        "1183-byte pq key": changed(
            ("pq_last_resort_prekey", "key"), b64u_encode(b64u_decode(pq_key)[:-1])
        ),
        "padding": changed(("identity_key",), key + "="),
        "standard alphabet": changed(("identity_key",), "+" + key[1:]),
        "non-canonical": changed(("signed_prekey", "key"), key[:-1] + "B"),
        "not a string": changed(("identity_key",), 12),
        "extra field": changed(("extra",), 1),
        "extra nested field": changed(("signed_prekey", "extra"), 1),
        "missing field": changed(("pq_one_time_prekeys",), KeyError),
        "negative id": changed(("signed_prekey", "id"), -1),
        "id of 2^32": changed(("signed_prekey", "id"), 2**32),
        "boolean id": changed(("signed_prekey", "id"), True),
        "float id": changed(("signed_prekey", "id"), 1.0),
        "string id": changed(("signed_prekey", "id"), "1"),
        "list not a list": changed(("one_time_prekeys",), {"id": 1}),
        "null prekey": changed(("signed_prekey",), None),
    }


def test_it_refuses_malformed_bundles_with_a_clear_code(
    directory: Directory, identity: Identity
) -> None:
    bundle = make_bundle(identity, [1], [2])
    for name, bad in _mutations(bundle).items():
        response = directory.put(new_handle(), bad, identity)
        assert response.status_code == 400, name
        assert error_code(response) == "invalid_request", name
        assert response.json()["error"]["message"], name
    assert stored_rows() == (0, 0)


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b'"bundle"'])
def test_it_refuses_a_body_that_is_not_a_bundle(
    directory: Directory, identity: Identity, body: bytes
) -> None:
    response = directory.put(new_handle(), body, identity)
    assert response.status_code == 400
    assert error_code(response) in {"invalid_request", "malformed_body"}
    assert stored_rows() == (0, 0)


@pytest.mark.parametrize(
    "handle",
    ["short", "A" * 21, "A" * 22 + "AA", "AAAAAAAAAAAAAAAAAAAAAB", "AAAAAAAAAAAAAAAAAAAA+A", "%20"],
)
def test_it_refuses_malformed_handles(
    directory: Directory, identity: Identity, handle: str
) -> None:
    response = directory.put(handle, make_bundle(identity), identity)
    assert response.status_code in {400, 404}
    assert error_code(response) in {"invalid_handle", "not_found"}
    claim = directory.claim(handle)
    assert claim.status_code in {400, 404}
    assert error_code(claim) in {"invalid_handle", "not_found"}
    assert stored_rows() == (0, 0)


def test_a_well_formed_path_with_a_bad_handle_gets_invalid_handle(
    directory: Directory, identity: Identity
) -> None:
    response = directory.put("A" * 21, make_bundle(identity), identity)
    assert response.status_code == 400
    assert error_code(response) == "invalid_handle"


def test_an_oversized_body_is_refused(directory: Directory, identity: Identity, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 4096
    response = directory.put(new_handle(), make_bundle(identity, [], [1, 2, 3]), None, headers={})
    assert response.status_code == 413
    assert error_code(response) == "body_too_large"


# --- count, rotation, delete ------------------------------------------------------------------


def test_the_count_is_signed_and_flags_an_old_signed_prekey(
    directory: Directory, identity: Identity, settings
) -> None:
    handle = new_handle()
    directory.put(handle, make_bundle(identity, [1, 2, 3], [4]), identity)
    unsigned = directory.count(handle, None)
    assert unsigned.status_code == 403
    assert error_code(unsigned) == "bad_signature"

    counts = directory.count(handle, identity).json()
    assert counts["one_time_prekeys"] == 3
    assert counts["pq_one_time_prekeys"] == 1
    assert counts["max_one_time_prekeys"] == settings.PREKEY_MAX_ONE_TIME
    assert counts["signed_prekey_stale"] is False

    old = timezone.now() - timedelta(seconds=settings.SIGNED_PREKEY_ROTATION_SECONDS + 120)
    PrekeyBundle.objects.update(signed_prekey_since=old)
    assert directory.count(handle, identity).json()["signed_prekey_stale"] is True
    # A refresh with the same signed prekey keeps its age...
    same = PrekeyBundle.objects.get()
    bundle = make_bundle(identity)
    bundle["signed_prekey"] = {
        "id": same.signed_prekey_id,
        "key": b64u_encode(bytes(same.signed_prekey)),
        "signature": b64u_encode(bytes(same.signed_prekey_signature)),
    }
    assert directory.put(handle, bundle, identity).status_code == 200
    assert directory.count(handle, identity).json()["signed_prekey_stale"] is True
    # ...and rotating it resets the flag.
    directory.put(handle, make_bundle(identity, signed_prekey_id=2), identity)
    fresh = directory.count(handle, identity).json()
    assert fresh["signed_prekey_stale"] is False
    assert fresh["signed_prekey_id"] == 2
    assert fresh["one_time_prekeys"] == 3


def test_the_count_claims_nothing(directory: Directory, identity: Identity) -> None:
    handle = new_handle()
    directory.put(handle, make_bundle(identity, [1], [2]), identity)
    for _ in range(3):
        assert directory.count(handle, identity).status_code == 200
    assert OneTimePrekey.objects.count() == 2


def test_a_handle_is_rotated_by_publishing_anew_and_deleting_the_old(
    directory: Directory, identity: Identity, roomy_rates: None
) -> None:
    old, new = new_handle(), new_handle()
    directory.put(old, make_bundle(identity, [1], [2]), identity)
    directory.put(new, make_bundle(identity, [3], [4]), identity)
    assert error_code(directory.delete(old, None)) == "bad_signature"
    assert directory.delete(old, identity).status_code == 204
    assert error_code(directory.claim(old)) == "unknown_handle"
    assert error_code(directory.delete(old, identity)) == "unknown_handle"
    claimed = directory.claim(new).json()
    assert (claimed["one_time_prekey"]["id"], claimed["pq_one_time_prekey"]["id"]) == (3, 4)
    assert PrekeyBundle.objects.count() == 1


# --- rate limits ------------------------------------------------------------------------------


def test_claims_are_limited_per_session(directory: Directory, identity: Identity, settings) -> None:
    settings.RATELIMIT_PREKEY_CLAIM_PER_SESSION = "3/h"
    settings.RATELIMIT_PREKEY_CLAIM_PER_HANDLE = "1000/h"
    handle = new_handle()
    directory.put(handle, make_bundle(identity, range(1, 11)), identity)
    statuses = [directory.claim(handle).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert error_code(directory.claim(handle)) == "rate_limited"
    assert OneTimePrekey.objects.count() == 7
    # Another session is not affected.
    assert other_session_directory().claim(handle).status_code == 200


def test_one_time_prekeys_are_handed_out_no_faster_than_the_handle_s_rate(
    directory: Directory, identity: Identity, settings
) -> None:
    settings.RATELIMIT_PREKEY_CLAIM_PER_SESSION = "1000/h"
    settings.RATELIMIT_PREKEY_CLAIM_PER_HANDLE = "2/h"
    handle, other = new_handle(), new_handle()
    directory.put(handle, make_bundle(identity, range(1, 11), range(11, 21)), identity)
    directory.put(other, make_bundle(identity, [1]), identity)
    bodies = [other_session_directory().claim(handle).json() for _ in range(5)]
    # Over the rate, every claimer still gets a usable bundle, with last-resort keys only.
    assert [b["one_time_prekey"] is not None for b in bodies] == [True, True] + [False] * 3
    assert [b["pq_one_time_prekey"] is not None for b in bodies] == [True, True] + [False] * 3
    assert OneTimePrekey.objects.filter(bundle_id=handle).count() == 16
    # The limit is per handle: another handle still hands out its prekeys.
    assert directory.claim(other).json()["one_time_prekey"]["id"] == 1


def test_publishing_is_limited_per_session(
    directory: Directory, identity: Identity, settings
) -> None:
    settings.RATELIMIT_PREKEY_PUBLISH = "2/h"
    statuses = [
        directory.put(new_handle(), make_bundle(identity), identity).status_code for _ in range(3)
    ]
    assert statuses == [201, 201, 429]
    assert PrekeyBundle.objects.count() == 2


# --- schema and schedule ----------------------------------------------------------------------


def test_the_openapi_schema_lists_the_endpoints(client: Client) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert set(paths["/api/v1/keys/{handle}"]) == {"put", "get", "delete"}
    assert set(paths["/api/v1/keys/{handle}/count"]) == {"get"}
    put = paths["/api/v1/keys/{handle}"]["put"]
    assert {"200", "201", "400", "403", "409", "429"} <= set(put["responses"])


def test_the_policy_states_the_directory_s_limits(client: Client, settings) -> None:
    prekeys = client.get("/api/v1/policy").json()["prekeys"]
    assert prekeys["max_batch"] == settings.PREKEY_MAX_BATCH
    assert prekeys["max_one_time_prekeys"] == settings.PREKEY_MAX_ONE_TIME
    assert prekeys["claim_rate_per_handle"] == settings.RATELIMIT_PREKEY_CLAIM_PER_HANDLE


def test_beat_runs_the_purge() -> None:
    from messenger.celery import app

    tasks = {entry["task"] for entry in django_settings.CELERY_BEAT_SCHEDULE.values()}
    assert "keys.purge_stale_bundles" in tasks
    app.loader.import_default_modules()
    assert "keys.purge_stale_bundles" in app.tasks
