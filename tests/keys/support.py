"""Helpers for the prekey directory's tests: real bundles and owner-signed requests.

Bundles are built by the client's crypto core (courier.crypto.identity), so these tests
also show that the server accepts exactly what the client publishes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from typing import Any

from django.test import Client

from courier.crypto.identity import Identity, bundle_to_json, generate_bundle
from messenger.codec import b64u_decode, b64u_encode
from messenger.signing import signed_request_bytes


def new_handle() -> str:
    return b64u_encode(secrets.token_bytes(16))


def make_bundle(
    identity: Identity,
    one_time_ids: Iterable[int] = (),
    pq_one_time_ids: Iterable[int] = (),
    *,
    signed_prekey_id: int = 1,
    pq_last_resort_id: int = 0,
) -> dict[str, Any]:
    bundle, _ = generate_bundle(
        identity,
        signed_prekey_id=signed_prekey_id,
        pq_last_resort_id=pq_last_resort_id,
        one_time_ids=tuple(one_time_ids),
        pq_one_time_ids=tuple(pq_one_time_ids),
    )
    return bundle_to_json(bundle)


def signed_headers(
    client: Client, signer: Identity, method: str, path: str, body: bytes = b""
) -> dict[str, str]:
    """Fetch a fresh challenge and sign the request with the identity key."""
    challenge = b64u_decode(client.post("/api/v1/challenges").json()["challenge"])
    signature = signer.sign(signed_request_bytes(challenge, method, path, body))
    return {
        "X-Courier-Challenge": b64u_encode(challenge),
        "X-Courier-Signature": b64u_encode(signature),
    }


class Directory:
    """Drives /api/v1/keys/ as a client would, with one session."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def put(
        self,
        handle: str,
        bundle: dict[str, Any] | bytes,
        signer: Identity | None,
        headers: dict[str, str] | None = None,
    ):
        path = f"/api/v1/keys/{handle}"
        body = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
        if headers is None:
            headers = signed_headers(self.client, signer, "PUT", path, body) if signer else {}
        return self.client.put(path, body, content_type="application/json", headers=headers)

    def claim(self, handle: str):
        return self.client.get(f"/api/v1/keys/{handle}")

    def count(self, handle: str, signer: Identity | None):
        path = f"/api/v1/keys/{handle}/count"
        headers = signed_headers(self.client, signer, "GET", path) if signer else {}
        return self.client.get(path, headers=headers)

    def delete(self, handle: str, signer: Identity | None):
        path = f"/api/v1/keys/{handle}"
        headers = signed_headers(self.client, signer, "DELETE", path) if signer else {}
        return self.client.delete(path, headers=headers)


def error_code(response) -> str:
    return response.json()["error"]["code"]
