from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.files.storage import storages
from django.test import Client
from django.utils import timezone

from files.models import Blob, BlobChunk
from files.services import _chunk_context
from files.tasks import purge_blobs
from messenger import atrest
from messenger.models import EpochKey
from tests.files.conftest import create_blob, get_chunk, stored_files, upload_all

pytestmark = pytest.mark.django_db


def test_purge_deletes_expired_exhausted_and_abandoned_blobs_with_their_files(
    auth_client: Client, small_blobs
) -> None:
    past = timezone.now() - timedelta(seconds=1)
    expired, exhausted, abandoned, live, still_downloading = (
        create_blob(auth_client, chunk_count=2, max_downloads=1) for _ in range(5)
    )
    for blob in (expired, exhausted, live, still_downloading):
        upload_all(auth_client, blob)
    client = Client()
    for blob in (exhausted, still_downloading):
        assert get_chunk(client, blob.id, 0, blob.download).status_code == 200
    Blob.objects.filter(pk=expired.id).update(expires_at=past)
    Blob.objects.filter(pk=exhausted.id).update(download_deadline=past)
    Blob.objects.filter(pk=abandoned.id).update(upload_deadline=past)
    assert len(stored_files(small_blobs)) == 8

    assert purge_blobs() == {"blobs": 3, "files": 4}
    assert set(Blob.objects.values_list("pk", flat=True)) == {live.id, still_downloading.id}
    assert BlobChunk.objects.count() == 4
    remaining = {path.parent.name for path in stored_files(small_blobs)}
    assert remaining == {live.id, still_downloading.id}
    for blob in (expired, exhausted, abandoned):
        assert not (small_blobs / blob.id).exists()
    # Idempotent: a second run finds nothing.
    assert purge_blobs() == {"blobs": 0, "files": 0}


def test_purge_sweeps_files_whose_blob_row_is_gone(auth_client: Client, small_blobs) -> None:
    blob = create_blob(auth_client, chunk_count=2)
    upload_all(auth_client, blob)
    # A purge that crashed between deleting files and rows, the other way round.
    Blob.objects.filter(pk=blob.id).delete()
    (small_blobs / "not-a-blob-folder").mkdir()
    assert purge_blobs() == {"blobs": 0, "files": 2}
    assert not (small_blobs / blob.id).exists()
    assert (small_blobs / "not-a-blob-folder").exists()


def test_the_purge_runs_on_the_beat_schedule() -> None:
    tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "files.purge_blobs" in tasks


def test_stored_chunks_are_sealed_under_the_epoch_key_of_the_blobs_expiry(
    auth_client: Client, small_blobs
) -> None:
    blob = create_blob(auth_client, chunk_count=2)
    chunks = upload_all(auth_client, blob)
    row = Blob.objects.get()
    storage = storages["blobs"]
    for chunk in BlobChunk.objects.order_by("index"):
        with storage.open(chunk.storage_name, "rb") as stored:
            record = stored.read()
        plaintext = chunks[chunk.index]
        assert len(record) == len(plaintext) + atrest.OVERHEAD
        assert plaintext not in record and plaintext[:32] not in record
        key = EpochKey.objects.get(pk=atrest.key_id_of(record))
        assert key.epoch == atrest.epoch_of(row.expires_at)
        context = _chunk_context(blob.id, chunk.index)
        assert atrest.open_sealed(record, context=context) == plaintext


def test_a_chunk_moved_to_another_position_does_not_open(auth_client: Client) -> None:
    blob = create_blob(auth_client, chunk_count=2)
    upload_all(auth_client, blob)
    first, second = BlobChunk.objects.order_by("index")
    BlobChunk.objects.filter(pk=first.pk).update(storage_name=second.storage_name)
    response = get_chunk(auth_client, blob.id, 0, blob.download)
    assert response.status_code == 410
    assert response.json()["error"]["code"] == "chunk_unreadable"


def test_chunks_are_unreadable_once_their_epoch_key_is_destroyed(auth_client: Client) -> None:
    blob = create_blob(auth_client, chunk_count=2, max_downloads=3)
    chunks = upload_all(auth_client, blob)
    client = Client()
    assert get_chunk(client, blob.id, 0, blob.download).content == chunks[0]
    expires_at = Blob.objects.get().expires_at
    # Beat as it runs after the blob's epoch has ended (the row is left alive on purpose).
    later = expires_at + timedelta(seconds=2 * settings.EPOCH_SECONDS)
    assert atrest.rotate_epoch_keys(now=later)["destroyed"] >= 1
    for index in (0, 1):
        response = get_chunk(client, blob.id, index, blob.download)
        assert response.status_code == 410
        assert response.json()["error"]["code"] == "blob_shredded"
