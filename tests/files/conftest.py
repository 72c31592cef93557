"""Blob tests run with small chunk sizes and their own storage folder, to stay fast."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.test import Client

CHUNK = 1024


@dataclass
class NewBlob:
    id: str
    upload: str
    download: str
    chunk_size: int
    chunk_count: int


@pytest.fixture(autouse=True)
def small_blobs(settings, tmp_path: Path) -> Path:
    root = tmp_path / "blobs"
    settings.BLOB_CHUNK_SIZES = [CHUNK, 4 * CHUNK]
    settings.BLOB_MAX_BYTES = 64 * CHUNK
    settings.BLOB_SESSION_QUOTA_BYTES = 128 * CHUNK
    settings.BLOB_MAX_DOWNLOADS = 10
    # Overriding STORAGES resets django.core.files.storage.storages (setting_changed).
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(root)},
        },
    }
    return root


def cap(capability: str) -> dict[str, str]:
    return {"Authorization": f"Capability {capability}"}


def create_blob(client: Client, **fields: object) -> NewBlob:
    body = {"chunk_size": CHUNK, "chunk_count": 3, **fields}
    response = client.post("/api/v1/blobs", body, content_type="application/json")
    assert response.status_code == 201, response.json()
    answer = response.json()
    return NewBlob(
        answer["blob_id"],
        answer["upload_capability"],
        answer["download_capability"],
        answer["chunk_size"],
        answer["chunk_count"],
    )


def put_chunk(client: Client, blob_id: str, index: int, data: bytes, capability: str):
    return client.put(
        f"/api/v1/blobs/{blob_id}/chunks/{index}",
        data=data,
        content_type="application/octet-stream",
        headers=cap(capability),
    )


def get_chunk(client: Client, blob_id: str, index: int, capability: str):
    return client.get(f"/api/v1/blobs/{blob_id}/chunks/{index}", headers=cap(capability))


def chunks_of(blob: NewBlob) -> list[bytes]:
    return [os.urandom(blob.chunk_size) for _ in range(blob.chunk_count)]


def upload_all(client: Client, blob: NewBlob) -> list[bytes]:
    chunks = chunks_of(blob)
    for index, data in enumerate(chunks):
        assert put_chunk(client, blob.id, index, data, blob.upload).status_code == 201
    return chunks


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []
