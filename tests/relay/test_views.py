"""The relay's HTTP API: mailboxes, envelopes, and the owner-signed fallback."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from messenger.atrest import open_sealed
from relay.models import Envelope, Mailbox
from tests.relay.conftest import OwnedMailbox, signed
from tests.support.relay_protocol import Owner, b64u, make_envelope, unb64u


def post_envelope(
    client: Client, send_id: bytes, body: bytes, *, ttl: int | None = None, **extra
) -> object:
    path = f"/api/v1/mailboxes/{b64u(send_id)}/envelopes"
    if ttl is not None:
        path += f"?ttl={ttl}"
    return client.post(path, body, content_type="application/octet-stream", **extra)


def test_it_creates_a_mailbox_with_two_unrelated_random_ids(auth_client: Client) -> None:
    owner = Owner.generate()
    response = auth_client.post(
        "/api/v1/mailboxes",
        {"owner_key": b64u(owner.public), "ttl_seconds": 3600},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"send_id", "receive_id", "expires_at"}
    send_id, receive_id = unb64u(body["send_id"]), unb64u(body["receive_id"])
    assert len(send_id) == len(receive_id) == 16 and send_id != receive_id
    mailbox = Mailbox.objects.get(receive_id=receive_id)
    assert bytes(mailbox.owner_key) == owner.public
    # Nothing in the row points back to the session that created it.
    assert {f.name for f in Mailbox._meta.concrete_fields} == {
        "id",
        "send_id",
        "receive_id",
        "owner_key",
        "expires_at",
    }
    assert mailbox.expires_at.second == 0  # coarse


@pytest.mark.parametrize(
    "body",
    [
        {"owner_key": "short", "ttl_seconds": 60},
        {"owner_key": b64u(b"k" * 32), "ttl_seconds": 0},
        {"owner_key": b64u(b"k" * 32), "ttl_seconds": "60"},
        {"owner_key": b64u(b"k" * 32)},
        {"owner_key": b64u(b"k" * 32), "ttl_seconds": 60, "session": "x"},
    ],
)
def test_it_refuses_a_malformed_mailbox_request(auth_client: Client, body: dict) -> None:
    response = auth_client.post("/api/v1/mailboxes", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_it_refuses_a_mailbox_ttl_beyond_the_policy(auth_client: Client, settings) -> None:
    body = {"owner_key": b64u(b"k" * 32), "ttl_seconds": settings.MAILBOX_MAX_TTL_SECONDS + 1}
    response = auth_client.post("/api/v1/mailboxes", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_ttl"


def test_creating_a_mailbox_needs_a_session(client: Client, db: None) -> None:
    body = {"owner_key": b64u(b"k" * 32), "ttl_seconds": 60}
    response = client.post("/api/v1/mailboxes", body, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("size", [1024, 4096, 16384, 65536])
def test_it_accepts_an_envelope_of_each_bucket_size(
    auth_client: Client, mailbox: OwnedMailbox, size: int
) -> None:
    envelope = make_envelope(size)
    response = post_envelope(auth_client, mailbox.send_id, envelope, ttl=600)
    assert response.status_code == 201, response.content
    body = response.json()
    row = Envelope.objects.get(id=unb64u(body["id"]))
    assert row.size == size
    # Stored encrypted at rest, bound to its id.
    assert envelope not in bytes(row.sealed)
    assert open_sealed(bytes(row.sealed), context=bytes(row.id)) == envelope


@pytest.mark.parametrize("size", [0, 1, 1000, 1023, 1025, 4095, 65535])
def test_it_refuses_an_envelope_of_a_non_bucket_size(
    auth_client: Client, mailbox: OwnedMailbox, size: int
) -> None:
    response = post_envelope(auth_client, mailbox.send_id, b"\x01" * size)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_envelope_size"
    assert not Envelope.objects.exists()


def test_it_refuses_an_envelope_larger_than_any_request(
    auth_client: Client, mailbox: OwnedMailbox
) -> None:
    response = post_envelope(auth_client, mailbox.send_id, b"\x01" * (256 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_it_refuses_an_envelope_of_another_version(
    auth_client: Client, mailbox: OwnedMailbox
) -> None:
    response = post_envelope(auth_client, mailbox.send_id, b"\x02" + b"\x00" * 1023)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "unsupported_envelope_version"


def test_it_refuses_an_envelope_sent_as_another_media_type(
    auth_client: Client, mailbox: OwnedMailbox
) -> None:
    path = f"/api/v1/mailboxes/{b64u(mailbox.send_id)}/envelopes"
    response = auth_client.post(path, make_envelope(), content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


def test_sending_needs_a_session_and_nothing_else(client: Client, mailbox: OwnedMailbox) -> None:
    response = post_envelope(client, mailbox.send_id, make_envelope())
    assert response.status_code == 401


@pytest.mark.parametrize("send_id", ["AAAAAAAAAAAAAAAAAAAAAA", "not-an-id", "A" * 40])
def test_sending_to_an_unknown_mailbox_is_not_found(auth_client: Client, send_id: str) -> None:
    path = f"/api/v1/mailboxes/{send_id}/envelopes"
    response = auth_client.post(path, make_envelope(), content_type="application/octet-stream")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "mailbox_not_found"


def test_the_receive_id_is_not_a_send_capability(
    auth_client: Client, mailbox: OwnedMailbox
) -> None:
    response = post_envelope(auth_client, mailbox.receive_id, make_envelope())
    assert response.status_code == 404


@pytest.mark.parametrize("ttl", [0, -5, 7 * 24 * 3600 + 1])
def test_it_refuses_an_envelope_ttl_outside_the_policy(
    auth_client: Client, mailbox: OwnedMailbox, ttl: int
) -> None:
    response = post_envelope(auth_client, mailbox.send_id, make_envelope(), ttl=ttl)
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid_ttl", "invalid_request"}


def test_an_envelope_never_outlives_its_mailbox(auth_client: Client, db: None) -> None:
    from tests.relay.conftest import new_mailbox

    short = new_mailbox(ttl=120)
    response = post_envelope(auth_client, short.send_id, make_envelope(), ttl=3600)
    assert response.status_code == 201
    row = Envelope.objects.get()
    assert row.expires_at == short.mailbox.expires_at


def test_the_mailbox_quota_of_envelopes_is_enforced(
    auth_client: Client, mailbox: OwnedMailbox, settings
) -> None:
    settings.MAILBOX_QUOTA_ENVELOPES = 2
    for _ in range(2):
        assert post_envelope(auth_client, mailbox.send_id, make_envelope()).status_code == 201
    response = post_envelope(auth_client, mailbox.send_id, make_envelope())
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "mailbox_full"
    assert Envelope.objects.count() == 2


def test_the_mailbox_quota_of_bytes_is_enforced(
    auth_client: Client, mailbox: OwnedMailbox, settings
) -> None:
    settings.MAILBOX_QUOTA_BYTES = 6000
    assert post_envelope(auth_client, mailbox.send_id, make_envelope(4096)).status_code == 201
    response = post_envelope(auth_client, mailbox.send_id, make_envelope(1024))
    assert response.status_code == 201
    response = post_envelope(auth_client, mailbox.send_id, make_envelope(1024))
    assert response.status_code == 409


def test_envelope_ids_are_random(auth_client: Client, mailbox: OwnedMailbox) -> None:
    ids = [
        unb64u(post_envelope(auth_client, mailbox.send_id, make_envelope()).json()["id"])
        for _ in range(5)
    ]
    assert len(set(ids)) == 5 and all(len(i) == 16 for i in ids)
    assert ids != sorted(ids) or ids != sorted(ids, reverse=True)


# --- the owner-signed fallback -------------------------------------------------------------


def fetch(client: Client, owned: OwnedMailbox, owner: Owner | None = None, query: str = ""):
    path = f"/api/v1/mailboxes/{b64u(owned.receive_id)}/envelopes"
    headers = signed(client, owner or owned.owner, "GET", path)
    return client.get(path + query, headers=headers)


def ack(client: Client, owned: OwnedMailbox, ids: list[str]):
    path = f"/api/v1/mailboxes/{b64u(owned.receive_id)}/acks"
    body = json.dumps({"ids": ids}).encode()
    headers = signed(client, owned.owner, "POST", path, body)
    return client.post(path, body, content_type="application/json", headers=headers)


def test_the_owner_fetches_and_acknowledges_over_http(
    auth_client: Client, mailbox: OwnedMailbox
) -> None:
    sent = {}
    for size in (1024, 4096, 1024):
        envelope = make_envelope(size)
        sent[post_envelope(auth_client, mailbox.send_id, envelope).json()["id"]] = envelope
    response = fetch(auth_client, mailbox, query="?limit=2")
    assert response.status_code == 200, response.content
    page = response.json()
    assert page["more"] is True and len(page["envelopes"]) == 2
    response = fetch(auth_client, mailbox)
    got = {e["id"]: unb64u(e["envelope"]) for e in response.json()["envelopes"]}
    assert got == sent and response.json()["more"] is False
    response = ack(auth_client, mailbox, list(sent))
    assert response.json() == {"deleted": 3}
    # Acknowledging again is harmless; the envelopes are gone.
    assert ack(auth_client, mailbox, list(sent)).json() == {"deleted": 0}
    assert fetch(auth_client, mailbox).json() == {"envelopes": [], "more": False}


def test_fetching_needs_the_owner_key(
    auth_client: Client, mailbox: OwnedMailbox, other_mailbox: OwnedMailbox
) -> None:
    response = fetch(auth_client, mailbox, owner=other_mailbox.owner)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "bad_signature"


def test_a_signed_request_cannot_be_replayed(auth_client: Client, mailbox: OwnedMailbox) -> None:
    path = f"/api/v1/mailboxes/{b64u(mailbox.receive_id)}/envelopes"
    headers = signed(auth_client, mailbox.owner, "GET", path)
    assert auth_client.get(path, headers=headers).status_code == 200
    response = auth_client.get(path, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "stale_challenge"


def test_an_acknowledgement_cannot_delete_another_mailboxs_envelopes(
    auth_client: Client, mailbox: OwnedMailbox, other_mailbox: OwnedMailbox
) -> None:
    theirs = post_envelope(auth_client, other_mailbox.send_id, make_envelope()).json()["id"]
    assert ack(auth_client, mailbox, [theirs]).json() == {"deleted": 0}
    assert Envelope.objects.count() == 1


def test_the_owner_extends_the_mailbox_but_never_shortens_it(
    auth_client: Client, mailbox: OwnedMailbox
) -> None:
    path = f"/api/v1/mailboxes/{b64u(mailbox.receive_id)}"
    before = mailbox.mailbox.expires_at

    def patch(ttl: int):
        body = json.dumps({"ttl_seconds": ttl}).encode()
        headers = signed(auth_client, mailbox.owner, "PATCH", path, body)
        return auth_client.patch(path, body, content_type="application/json", headers=headers)

    response = patch(7200)
    assert response.status_code == 200, response.content
    longer = Mailbox.objects.get(pk=mailbox.mailbox.pk).expires_at
    assert longer > before
    assert patch(60).status_code == 200
    assert Mailbox.objects.get(pk=mailbox.mailbox.pk).expires_at == longer


def test_the_owner_deletes_the_mailbox_and_its_envelopes(
    auth_client: Client, mailbox: OwnedMailbox
) -> None:
    post_envelope(auth_client, mailbox.send_id, make_envelope())
    path = f"/api/v1/mailboxes/{b64u(mailbox.receive_id)}"
    response = auth_client.delete(path, headers=signed(auth_client, mailbox.owner, "DELETE", path))
    assert response.status_code == 204
    assert not Mailbox.objects.exists() and not Envelope.objects.exists()
    assert post_envelope(auth_client, mailbox.send_id, make_envelope()).status_code == 404


def test_deleting_needs_the_owner_key(
    auth_client: Client, mailbox: OwnedMailbox, other_mailbox: OwnedMailbox
) -> None:
    path = f"/api/v1/mailboxes/{b64u(mailbox.receive_id)}"
    headers = signed(auth_client, other_mailbox.owner, "DELETE", path)
    assert auth_client.delete(path, headers=headers).status_code == 403
    assert Mailbox.objects.filter(pk=mailbox.mailbox.pk).exists()


def test_the_openapi_schema_describes_the_relay(client: Client) -> None:
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/mailboxes/{mailbox_id}/envelopes" in paths
    body = paths["/api/v1/mailboxes/{mailbox_id}/envelopes"]["post"]["requestBody"]
    assert "application/octet-stream" in body["content"]
