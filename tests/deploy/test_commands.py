"""The operator's management commands and the metrics endpoint: there is no admin."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from messenger import atrest
from messenger.models import AnonymousSession, EpochKey
from messenger.sessions import mint_session

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def expired_session() -> None:
    AnonymousSession.objects.create(
        token_hash=secrets.token_bytes(32), expires_at=timezone.now() - timedelta(minutes=5)
    )


def test_stats_prints_aggregate_counts_only() -> None:
    token, _ = mint_session()
    mint_session()
    expired_session()
    atrest.seal(b"x", expires_at=timezone.now() + timedelta(hours=1), context=b"")
    numbers = json.loads(run("stats", "--json"))
    assert numbers["sessions_live"] == 2
    assert numbers["sessions_expired"] == 1
    assert numbers["epoch_keys"] == 1
    assert all(isinstance(value, int) for value in numbers.values())
    text = run("stats")
    assert "sessions_live" in text and token not in text


def test_rotate_keys_retires_current_keys_and_destroys_ended_ones() -> None:
    expires = timezone.now() + timedelta(hours=1)
    before = atrest.seal(b"before", expires_at=expires, context=b"a")
    ended = EpochKey.objects.create(epoch=1, wrapped_key=b"\x00" * 40)
    output = run("rotate_keys")
    assert "retired 2 current epoch keys; destroyed 1 expired" in output
    assert not EpochKey.objects.filter(pk=ended.pk).exists()
    after = atrest.seal(b"after", expires_at=expires, context=b"b")
    assert atrest.key_id_of(after) != atrest.key_id_of(before)
    assert atrest.open_sealed(before, context=b"a") == b"before"


def test_purge_runs_every_job_of_the_beat_schedule_now(settings) -> None:
    expired_session()
    mint_session()
    EpochKey.objects.create(epoch=1, wrapped_key=b"\x00" * 40)
    output = run("purge")
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert f"{entry['task']}: " in output
    assert "messenger.purge_expired_sessions: 1" in output
    assert AnonymousSession.objects.count() == 1
    assert not EpochKey.objects.filter(epoch=1).exists()
    # Idempotent.
    assert "messenger.purge_expired_sessions: 0" in run("purge")


def test_show_config_prints_the_policy_and_hides_every_secret(settings, monkeypatch) -> None:
    master = secrets.token_urlsafe(32)
    settings.MASTER_KEY = master
    monkeypatch.setenv("MASTER_KEY", master)
    monkeypatch.setenv("SECRET_KEY", settings.SECRET_KEY)
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "s3-secret-value")
    monkeypatch.setenv("DATABASE_URL", "postgres://courier:db-password@db:5432/courier")
    monkeypatch.setenv("REDIS_URL", "redis://:redis-password@redis:6379/0")
    settings.REDIS_URL = "redis://:redis-password@redis:6379/0"
    from messenger.env import READ_VARIABLES

    READ_VARIABLES.update({"S3_SECRET_ACCESS_KEY"})
    output = run("show_config")
    for secret in (master, settings.SECRET_KEY, "s3-secret-value", "db-password", "redis-password"):
        assert secret not in output
    shown = json.loads(output)
    assert shown["policy"]["envelopes"]["bucket_sizes"] == settings.ENVELOPE_BUCKETS
    assert shown["environment"]["MASTER_KEY"] == "[hidden]"
    assert shown["environment"]["DATABASE_URL"] == "postgres://courier:[hidden]@db:5432/courier"
    assert shown["configuration"]["redis"] == "redis://:[hidden]@redis:6379/0"
    assert shown["configuration"]["master_key"]["set"] is True
    assert len(shown["configuration"]["master_key"]["id"]) == 12


def test_metrics_are_off_by_default(client: Client) -> None:
    response = client.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_metrics_serve_prometheus_gauges_of_the_aggregate_numbers(settings) -> None:
    settings.METRICS_ENABLED = True
    settings.SECURE_SSL_REDIRECT = True  # scraped over plain HTTP on the internal network
    token, _ = mint_session()
    response = Client().get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    text = response.content.decode()
    assert "# TYPE courier_sessions_live gauge\ncourier_sessions_live 1\n" in text
    assert token not in text
    for line in text.splitlines():
        if not line.startswith("#"):
            name, value = line.split(" ")
            assert name.startswith("courier_") and "{" not in name  # no labels at all
            int(value)


def test_stats_counts_prekey_stock_and_blobs_in_aggregate() -> None:
    from files.models import Blob, BlobChunk
    from keys.models import OneTimePrekey, PrekeyBundle, PrekeyKind

    now = timezone.now()

    def bundle(handle: str, expires_in: timedelta) -> PrekeyBundle:
        return PrekeyBundle.objects.create(
            handle=handle,
            identity_key=b"i" * 32,
            identity_dh_key=b"d" * 32,
            identity_dh_signature=b"s" * 64,
            signed_prekey_id=1,
            signed_prekey=b"p" * 32,
            signed_prekey_signature=b"s" * 64,
            signed_prekey_since=now,
            pq_last_resort_id=1,
            pq_last_resort_key=b"k" * 1184,
            pq_last_resort_signature=b"s" * 64,
            expires_at=now + expires_in,
        )

    stocked = bundle("A" * 22, timedelta(days=1))
    bundle("B" * 22, timedelta(days=1))  # out of one-time prekeys
    gone = bundle("C" * 22, -timedelta(minutes=1))
    for key_id in range(3):
        OneTimePrekey.objects.create(
            bundle=stocked, kind=PrekeyKind.X25519, key_id=key_id, key=b"x" * 32
        )
    OneTimePrekey.objects.create(
        bundle=stocked, kind=PrekeyKind.ML_KEM_768, key_id=9, key=b"m" * 1184
    )
    OneTimePrekey.objects.create(bundle=gone, kind=PrekeyKind.X25519, key_id=1, key=b"x" * 32)

    def blob(blob_id: str, chunks: int, *, complete: bool, expires_in: timedelta) -> None:
        Blob.objects.create(
            id=blob_id,
            upload_capability_hash=b"u" * 32,
            download_capability_hash=b"d" * 32,
            quota_key=b"q" * 32,
            chunk_size=65536,
            chunk_count=2,
            max_downloads=1,
            complete=complete,
            expires_at=now + expires_in,
            upload_deadline=now + timedelta(hours=1),
        )
        for index in range(chunks):
            BlobChunk.objects.create(
                blob_id=blob_id, index=index, storage_name=f"{blob_id}/{index}"
            )

    blob("D" * 22, 2, complete=True, expires_in=timedelta(hours=1))
    blob("E" * 22, 1, complete=False, expires_in=timedelta(hours=1))
    blob("F" * 22, 2, complete=True, expires_in=-timedelta(minutes=1))

    numbers = json.loads(run("stats", "--json"))
    assert numbers["prekey_bundles"] == 2
    assert numbers["prekey_bundles_expired"] == 1
    assert numbers["one_time_prekeys_x25519"] == 3
    assert numbers["one_time_prekeys_mlkem768"] == 1
    assert numbers["prekey_bundles_out_of_stock"] == 1
    assert numbers["blobs"] == 2
    assert numbers["blobs_complete"] == 1
    assert numbers["blobs_purgeable"] == 1
    assert numbers["blob_chunks"] == 5
    assert numbers["blob_bytes"] == 5 * 65536


def test_stats_counts_mailboxes_and_queued_envelopes_in_aggregate() -> None:
    from relay.models import Envelope, Mailbox

    now = timezone.now()
    live = Mailbox.objects.create(owner_key=b"o" * 32, expires_at=now + timedelta(days=1))
    Mailbox.objects.create(owner_key=b"o" * 32, expires_at=now - timedelta(minutes=1))
    for size, expires_in in ((1024, 60), (4096, 60), (1024, -60)):
        Envelope.objects.create(
            mailbox=live,
            sealed=b"sealed",
            size=size,
            expires_at=now + timedelta(minutes=expires_in),
        )
    numbers = json.loads(run("stats", "--json"))
    assert numbers["mailboxes"] == 1
    assert numbers["mailboxes_expired"] == 1
    assert numbers["envelopes_queued"] == 2
    assert numbers["envelope_bytes"] == 5120
    assert numbers["envelopes_expired"] == 1


def test_rewrap_master_key_moves_every_epoch_key_to_the_new_master_key(settings, tmp_path) -> None:
    from messenger import checks

    old, new = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    settings.MASTER_KEY = old
    now = timezone.now()
    records = [
        atrest.seal(b"soon", expires_at=now + timedelta(minutes=5), context=b"1"),
        atrest.seal(b"later", expires_at=now + timedelta(days=3), context=b"2"),
    ]
    key_file = tmp_path / "master_key.new"
    key_file.write_text(new + "\n")
    assert "re-wrapped 2 epoch keys" in run("rewrap_master_key", "--new-key-file", str(key_file))

    atrest._key_cache.clear()  # other processes start with no unwrapped key in memory
    assert [m.id for m in checks.check_master_key_matches_stored_keys(None)] == ["messenger.E004"]
    settings.MASTER_KEY = new
    assert checks.check_master_key_matches_stored_keys(None) == []
    assert atrest.open_sealed(records[0], context=b"1") == b"soon"
    assert atrest.open_sealed(records[1], context=b"2") == b"later"


def test_rewrap_master_key_changes_nothing_when_a_key_does_not_unwrap(settings, tmp_path) -> None:
    from django.core.management.base import CommandError

    settings.MASTER_KEY = secrets.token_urlsafe(32)
    atrest.seal(b"x", expires_at=timezone.now() + timedelta(hours=1), context=b"")
    EpochKey.objects.create(epoch=10**6, wrapped_key=secrets.token_bytes(60))
    before = {k.pk: bytes(k.wrapped_key) for k in EpochKey.objects.all()}
    key_file = tmp_path / "new"
    key_file.write_text(secrets.token_urlsafe(32))
    with pytest.raises(CommandError, match="does not unwrap"):
        run("rewrap_master_key", "--new-key-file", str(key_file))
    assert {k.pk: bytes(k.wrapped_key) for k in EpochKey.objects.all()} == before
    key_file.write_text(settings.MASTER_KEY)
    with pytest.raises(CommandError, match="is the current one"):
        run("rewrap_master_key", "--new-key-file", str(key_file))


def test_after_a_lost_master_key_rotate_keys_shreds_what_it_cannot_read(settings) -> None:
    from messenger import checks

    settings.MASTER_KEY = secrets.token_urlsafe(32)
    expires = timezone.now() + timedelta(hours=2)
    lost = atrest.seal(b"under the lost key", expires_at=expires, context=b"a")
    settings.MASTER_KEY = secrets.token_urlsafe(32)  # the old one is gone
    atrest._key_cache.clear()
    assert [m.id for m in checks.check_master_key_matches_stored_keys(None)] == ["messenger.E004"]
    output = run("rotate_keys", "--destroy-unreadable")
    assert "destroyed 1 epoch keys the master key does not unwrap" in output
    assert checks.check_master_key_matches_stored_keys(None) == []
    with pytest.raises(atrest.KeyDestroyed):  # readers skip it as shredded
        atrest.open_sealed(lost, context=b"a")
    fresh = atrest.seal(b"new data", expires_at=expires, context=b"b")
    assert atrest.open_sealed(fresh, context=b"b") == b"new data"


def test_probes_and_scrapers_reach_a_node_by_its_internal_name(settings) -> None:
    """Healthchecks call 127.0.0.1:8000, Prometheus web:8000: neither is an allowed host,
    and neither speaks HTTPS; both paths answer anyway, and nothing else does."""
    settings.ALLOWED_HOSTS = ["chat.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    settings.METRICS_ENABLED = True
    client = Client()
    assert client.get("/healthz", HTTP_HOST="127.0.0.1:8000").status_code == 200
    assert client.get("/metrics", HTTP_HOST="web:8000").status_code == 200
    assert client.get("/api/v1/policy", HTTP_HOST="web:8000").status_code == 400
    redirected = client.get("/api/v1/policy", HTTP_HOST="chat.example.org")
    assert redirected.status_code == 301
