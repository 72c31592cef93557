"""Races that only a real database shows: run on PostgreSQL with real threads."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection
from django.test import Client

from files.models import Blob, BlobChunk
from tests.files.conftest import CHUNK, create_blob, get_chunk, put_chunk, upload_all

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def run_together(count: int, action) -> list:
    """Start `count` threads that call `action()` at the same instant; their results."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def worker(slot: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[slot] = action()
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_concurrent_downloads_near_the_limit_never_exceed_it(auth_client: Client) -> None:
    assert connection.vendor == "postgresql"
    for max_downloads in (1, 3):
        blob = create_blob(auth_client, chunk_count=1, max_downloads=max_downloads)
        (chunk,) = upload_all(auth_client, blob)

        def download(blob=blob):
            response = get_chunk(Client(), blob.id, 0, blob.download)
            code = response.json()["error"]["code"] if response.status_code != 200 else "ok"
            return response.status_code, code, response.content if code == "ok" else b""

        results = run_together(8, download)
        outcomes = Counter((status, code) for status, code, _ in results)
        assert outcomes == {
            (200, "ok"): max_downloads,
            (410, "download_limit_reached"): 8 - max_downloads,
        }
        assert all(content == chunk for _, code, content in results if code == "ok")
        assert Blob.objects.get(pk=blob.id).downloads == max_downloads


def test_concurrent_uploads_of_one_chunk_store_it_once(auth_client: Client, small_blobs) -> None:
    assert connection.vendor == "postgresql"
    blob = create_blob(auth_client, chunk_count=1)

    def upload():
        return put_chunk(Client(), blob.id, 0, b"z" * CHUNK, blob.upload).status_code

    statuses = run_together(6, upload)
    assert sorted(statuses)[-1] == 201 and statuses.count(201) == 1
    assert set(statuses) <= {200, 201}
    assert BlobChunk.objects.count() == 1
    assert Blob.objects.get().complete is True
    # The losers removed their own files: only the committed chunk is stored.
    assert len([p for p in small_blobs.rglob("*") if p.is_file()]) == 1
