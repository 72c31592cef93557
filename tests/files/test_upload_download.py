from __future__ import annotations

import hashlib

import pytest
from django.test import Client

from files.models import Blob, BlobChunk
from messenger.codec import b64u_decode
from tests.files.conftest import (
    CHUNK,
    cap,
    create_blob,
    get_chunk,
    put_chunk,
    stored_files,
    upload_all,
)

pytestmark = pytest.mark.django_db


def test_it_creates_a_blob_and_stores_only_hashes_of_its_capabilities(
    auth_client: Client,
) -> None:
    blob = create_blob(auth_client, chunk_count=2, ttl=3600, max_downloads=2)
    upload, download = b64u_decode(blob.upload), b64u_decode(blob.download)
    assert len(upload) == len(download) == 32 and upload != download
    assert len(b64u_decode(blob.id)) == 16
    row = Blob.objects.get()
    assert bytes(row.upload_capability_hash) == hashlib.sha256(upload).digest()
    assert bytes(row.download_capability_hash) == hashlib.sha256(download).digest()
    assert (row.chunk_size, row.chunk_count, row.max_downloads) == (CHUNK, 2, 2)
    assert row.expires_at.second == 0 and row.upload_deadline <= row.expires_at


def test_creating_a_blob_needs_a_session(client: Client) -> None:
    response = client.post(
        "/api/v1/blobs", {"chunk_size": CHUNK, "chunk_count": 1}, content_type="application/json"
    )
    assert response.status_code == 401


def test_it_uploads_every_chunk_and_downloads_them_back(auth_client: Client) -> None:
    blob = create_blob(auth_client, chunk_count=3)
    chunks = upload_all(auth_client, blob)
    status = auth_client.get(f"/api/v1/blobs/{blob.id}", headers=cap(blob.download)).json()
    assert status["complete"] is True and status["downloads_remaining"] == 1
    assert "present" not in status or status["present"] is None
    downloader = Client()
    for index, data in enumerate(chunks):
        response = get_chunk(downloader, blob.id, index, blob.download)
        assert response.status_code == 200
        assert response["Content-Type"] == "application/octet-stream"
        assert response.content == data


def test_an_interrupted_upload_resumes_from_the_chunks_the_server_reports(
    auth_client: Client, small_blobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = create_blob(auth_client, chunk_count=4)
    uploader = Client()
    chunks = [bytes([i]) * CHUNK for i in range(4)]
    assert put_chunk(uploader, blob.id, 0, chunks[0], blob.upload).status_code == 201
    assert put_chunk(uploader, blob.id, 2, chunks[2], blob.upload).status_code == 201
    # The connection drops half-way through chunk 1: the server sees a short body.
    cut = put_chunk(uploader, blob.id, 1, chunks[1][: CHUNK // 2], blob.upload)
    assert cut.status_code == 400 and cut.json()["error"]["code"] == "wrong_chunk_size"

    # Chunk 3 fails while the storage writes it: half a file lands on disk, no row.
    from django.core.files.storage import FileSystemStorage

    real_save = FileSystemStorage._save

    def failing_save(self, name, content):
        real_save(self, name, type(content)(content.read()[: CHUNK // 2]))
        raise OSError("disk full")

    monkeypatch.setattr(FileSystemStorage, "_save", failing_save)
    failed = put_chunk(uploader, blob.id, 3, chunks[3], blob.upload)
    assert failed.status_code == 503
    assert failed.json()["error"]["code"] == "storage_unavailable"
    monkeypatch.setattr(FileSystemStorage, "_save", real_save)

    status = uploader.get(f"/api/v1/blobs/{blob.id}", headers=cap(blob.upload)).json()
    assert status["present"] == [0, 2] and status["complete"] is False
    # Nothing is served before the blob is complete, half-written files least of all.
    refused = get_chunk(Client(), blob.id, 3, blob.download)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "blob_incomplete"

    for index in (1, 3):
        assert put_chunk(uploader, blob.id, index, chunks[index], blob.upload).status_code == 201
    status = uploader.get(f"/api/v1/blobs/{blob.id}", headers=cap(blob.upload)).json()
    assert status["present"] == [0, 1, 2, 3] and status["complete"] is True
    downloader = Client()
    assert [get_chunk(downloader, blob.id, i, blob.download).content for i in range(4)] == chunks


def test_a_reupload_of_a_present_chunk_is_idempotent(auth_client: Client) -> None:
    blob = create_blob(auth_client, chunk_count=2)
    first = b"a" * CHUNK
    assert put_chunk(auth_client, blob.id, 0, first, blob.upload).status_code == 201
    again = put_chunk(auth_client, blob.id, 0, b"b" * CHUNK, blob.upload)
    assert again.status_code == 200
    assert again.json() == {"index": 0, "stored": True, "complete": False}
    assert BlobChunk.objects.count() == 1
    assert put_chunk(auth_client, blob.id, 1, first, blob.upload).json()["complete"] is True
    assert get_chunk(Client(), blob.id, 0, blob.download).content == first


def test_downloads_within_the_limit_succeed_and_the_next_is_refused(
    auth_client: Client,
) -> None:
    blob = create_blob(auth_client, chunk_count=2, max_downloads=2)
    chunks = upload_all(auth_client, blob)
    downloader = Client()
    for _ in range(2):
        assert get_chunk(downloader, blob.id, 0, blob.download).content == chunks[0]
        assert get_chunk(downloader, blob.id, 1, blob.download).content == chunks[1]
    refused = get_chunk(downloader, blob.id, 0, blob.download)
    assert refused.status_code == 410
    assert refused.json()["error"]["code"] == "download_limit_reached"
    # The downloads already open may still finish within the download window.
    assert get_chunk(downloader, blob.id, 1, blob.download).status_code == 200
    assert Blob.objects.get().downloads == 2
    status = downloader.get(f"/api/v1/blobs/{blob.id}", headers=cap(blob.download))
    assert status.json()["downloads_remaining"] == 0


def test_after_the_download_window_no_chunk_of_an_exhausted_blob_is_served(
    auth_client: Client,
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    blob = create_blob(auth_client, chunk_count=2, max_downloads=1)
    upload_all(auth_client, blob)
    assert get_chunk(auth_client, blob.id, 0, blob.download).status_code == 200
    Blob.objects.update(download_deadline=timezone.now() - timedelta(seconds=1))
    late = get_chunk(auth_client, blob.id, 1, blob.download)
    assert late.status_code == 410 and late.json()["error"]["code"] == "download_limit_reached"


def test_chunks_after_the_first_need_an_open_download(auth_client: Client) -> None:
    blob = create_blob(auth_client, chunk_count=2)
    upload_all(auth_client, blob)
    response = get_chunk(auth_client, blob.id, 1, blob.download)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "download_not_opened"
    assert Blob.objects.get().downloads == 0


def test_the_uploader_can_withdraw_a_blob_with_its_files(auth_client: Client, small_blobs) -> None:
    blob = create_blob(auth_client, chunk_count=2)
    upload_all(auth_client, blob)
    assert len(stored_files(small_blobs)) == 2
    wrong = auth_client.delete(f"/api/v1/blobs/{blob.id}", headers=cap(blob.download))
    assert wrong.status_code == 404
    response = auth_client.delete(f"/api/v1/blobs/{blob.id}", headers=cap(blob.upload))
    assert response.status_code == 204
    assert Blob.objects.count() == 0 and BlobChunk.objects.count() == 0
    assert stored_files(small_blobs) == []
    assert get_chunk(auth_client, blob.id, 0, blob.download).status_code == 404


def test_the_policy_lists_what_blob_clients_need(client: Client, settings) -> None:
    blobs = client.get("/api/v1/policy").json()["blobs"]
    assert blobs["chunk_sizes"] == [CHUNK, 4 * CHUNK]
    assert blobs["upload_window_seconds"] == settings.BLOB_UPLOAD_WINDOW_SECONDS
    assert blobs["download_window_seconds"] == settings.BLOB_DOWNLOAD_WINDOW_SECONDS
    assert blobs["default_ttl_seconds"] <= blobs["max_ttl_seconds"]


def test_the_openapi_schema_lists_the_blob_endpoints(client: Client) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert set(paths["/api/v1/blobs/{blob_id}/chunks/{index}"]) == {"put", "get"}
    assert set(paths["/api/v1/blobs/{blob_id}"]) == {"get", "delete"}
    assert "post" in paths["/api/v1/blobs"]
