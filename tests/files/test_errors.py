"""Every bad request gets a 4xx with a stable code, and a wrong capability says nothing."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from files import services
from files.models import Blob, BlobChunk
from messenger.codec import b64u_decode, b64u_encode
from messenger.sessions import mint_session
from tests.files.conftest import CHUNK, cap, create_blob, get_chunk, put_chunk, upload_all

pytestmark = pytest.mark.django_db


def error_code(response) -> str:
    return response.json()["error"]["code"]


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"chunk_size": 1000}, 400, "invalid_chunk_size"),
        ({"chunk_size": 65536}, 400, "invalid_chunk_size"),
        ({"chunk_count": 0}, 400, "invalid_chunk_count"),
        ({"ttl": 10}, 400, "invalid_ttl"),
        ({"ttl": 48 * 3600 + 1}, 400, "invalid_ttl"),
        ({"max_downloads": 0}, 400, "invalid_max_downloads"),
        ({"max_downloads": 11}, 400, "invalid_max_downloads"),
        ({"chunk_count": 65}, 413, "blob_too_large"),
        ({"chunk_size": "big"}, 400, "invalid_request"),
    ],
)
def test_it_refuses_a_blob_outside_the_policy(
    auth_client: Client, fields: dict, status: int, code: str
) -> None:
    body = {"chunk_size": CHUNK, "chunk_count": 1, **fields}
    response = auth_client.post("/api/v1/blobs", body, content_type="application/json")
    assert response.status_code == status
    assert error_code(response) == code
    assert Blob.objects.count() == 0


def test_the_quota_counts_the_sessions_live_blobs_only(auth_client: Client) -> None:
    # Quota is 128 KiB, a blob at most 64 KiB.
    create_blob(auth_client, chunk_count=64)
    create_blob(auth_client, chunk_count=60)
    over = auth_client.post(
        "/api/v1/blobs", {"chunk_size": CHUNK, "chunk_count": 5}, content_type="application/json"
    )
    assert over.status_code == 413 and error_code(over) == "quota_exceeded"
    # Another session has its own quota.
    other, _ = mint_session()
    create_blob(Client(headers={"Authorization": f"Bearer {other}"}), chunk_count=64)
    # Expired blobs no longer count.
    Blob.objects.filter(chunk_count=64).update(expires_at=timezone.now())
    create_blob(auth_client, chunk_count=64)


def test_the_blob_row_does_not_hold_the_session_token_hash(
    auth_client: Client, session_token: str
) -> None:
    from messenger.sessions import hash_token

    create_blob(auth_client)
    row = Blob.objects.get()
    assert bytes(row.quota_key) != hash_token(session_token)


@pytest.mark.parametrize("index", [3, 4, 1000, -1])
def test_it_refuses_a_chunk_out_of_range(auth_client: Client, index: int) -> None:
    blob = create_blob(auth_client, chunk_count=3)
    response = put_chunk(auth_client, blob.id, index, b"x" * CHUNK, blob.upload)
    assert response.status_code == 400 and error_code(response) == "chunk_out_of_range"
    upload_all(auth_client, blob)
    response = get_chunk(auth_client, blob.id, index, blob.download)
    assert response.status_code == 400 and error_code(response) == "chunk_out_of_range"


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK + 1, 4 * CHUNK])
def test_it_refuses_a_chunk_of_the_wrong_size(auth_client: Client, size: int) -> None:
    blob = create_blob(auth_client, chunk_count=1)
    response = put_chunk(auth_client, blob.id, 0, b"x" * size, blob.upload)
    assert response.status_code == 400 and error_code(response) == "wrong_chunk_size"
    assert BlobChunk.objects.count() == 0


def test_a_body_without_content_length_is_still_held_to_the_chunk_size(auth_client: Client) -> None:
    blob = create_blob(auth_client, chunk_count=1)

    class Body:
        def __init__(self) -> None:
            self.left = 3 * CHUNK

        def read(self, size: int) -> bytes:
            piece = min(size, self.left)
            self.left -= piece
            return b"x" * piece

    from files.errors import WrongChunkSize

    with pytest.raises(WrongChunkSize):
        services.store_chunk(blob.id, b64u_decode(blob.upload), 0, Body(), None)
    assert BlobChunk.objects.count() == 0


@pytest.mark.parametrize(
    "header", [None, "Bearer abc", "Capability", "Capability abc", "Capability " + "A" * 44]
)
def test_a_missing_or_malformed_capability_is_refused(auth_client: Client, header) -> None:
    blob = create_blob(auth_client)
    headers = {"Authorization": header} if header else {}
    response = auth_client.get(f"/api/v1/blobs/{blob.id}/chunks/0", headers=headers)
    assert response.status_code == 401 and error_code(response) == "capability_required"


def test_an_expired_blob_is_refused_as_expired_to_its_capability_holder(
    auth_client: Client,
) -> None:
    blob = create_blob(auth_client, chunk_count=1)
    upload_all(auth_client, blob)
    Blob.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = get_chunk(auth_client, blob.id, 0, blob.download)
    assert response.status_code == 410 and error_code(response) == "blob_expired"
    wrong = get_chunk(auth_client, blob.id, 0, b64u_encode(os.urandom(32)))
    assert wrong.status_code == 404 and error_code(wrong) == "blob_not_found"


def test_an_abandoned_blob_takes_no_more_chunks(auth_client: Client) -> None:
    blob = create_blob(auth_client, chunk_count=2)
    Blob.objects.update(upload_deadline=timezone.now() - timedelta(seconds=1))
    response = put_chunk(auth_client, blob.id, 0, b"x" * CHUNK, blob.upload)
    assert response.status_code == 410 and error_code(response) == "upload_closed"


def _answers(client: Client, blob_id: str, capability: str) -> list[tuple[int, dict]]:
    base = f"/api/v1/blobs/{blob_id}"
    responses = [
        client.get(base, headers=cap(capability)),
        put_chunk(client, blob_id, 0, b"x" * CHUNK, capability),
        put_chunk(client, blob_id, 99, b"x", capability),
        get_chunk(client, blob_id, 0, capability),
        get_chunk(client, blob_id, 99, capability),
        client.delete(base, headers=cap(capability)),
    ]
    return [(response.status_code, response.json()) for response in responses]


@pytest.mark.parametrize("complete", [False, True])
def test_a_wrong_capability_never_reveals_whether_a_blob_exists(
    auth_client: Client, monkeypatch: pytest.MonkeyPatch, complete: bool
) -> None:
    blob = create_blob(auth_client, chunk_count=1)
    if complete:
        upload_all(auth_client, blob)
    compares: list[int] = []
    real_compare = services.hmac.compare_digest

    def counting_compare(a: bytes, b: bytes) -> bool:
        compares.append(len(b))
        return real_compare(a, b)

    monkeypatch.setattr(services.hmac, "compare_digest", counting_compare)
    stranger = Client()
    wrong = b64u_encode(os.urandom(32))
    existing = _answers(stranger, blob.id, wrong)
    work_existing = list(compares)
    compares.clear()
    unknown = _answers(stranger, b64u_encode(os.urandom(16)), wrong)
    work_unknown = list(compares)
    compares.clear()
    malformed = _answers(stranger, "no-such-blob", wrong)
    assert existing == unknown == malformed
    assert {status for status, _ in existing} == {404}
    assert {body["error"]["code"] for _, body in existing} == {"blob_not_found"}
    # The same number of constant-time compares of 32-byte hashes on either path.
    assert work_existing == work_unknown == compares
    # The two capabilities are not interchangeable.
    assert get_chunk(stranger, blob.id, 0, blob.upload).status_code == 404
    assert put_chunk(stranger, blob.id, 0, b"x" * CHUNK, blob.download).status_code == 404
    assert Blob.objects.get().downloads == 0
