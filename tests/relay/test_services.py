"""The relay's services: doorbells, expiry, purge, and crypto-shredding."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.utils import timezone

from messenger import atrest
from messenger.atrest import KeyDestroyed, open_sealed, rotate_epoch_keys
from messenger.models import EpochKey
from relay import services, tasks
from relay.models import Envelope, Mailbox
from tests.relay.conftest import OwnedMailbox, new_mailbox
from tests.support.relay_protocol import make_envelope


def test_the_doorbell_rings_only_after_commit_and_carries_no_payload(
    mailbox: OwnedMailbox, django_capture_on_commit_callbacks
) -> None:
    envelope = make_envelope()

    def send() -> tuple[services.AcceptedEnvelope, list]:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            accepted = services.enqueue_envelope(mailbox.send_id, envelope, 600)
        return accepted, callbacks

    async def scenario() -> tuple[services.AcceptedEnvelope, dict | None, dict | None]:
        # One event loop throughout: the Redis pub/sub layer is bound to its loop.
        layer = get_channel_layer()
        channel = await layer.new_channel()
        group = services.doorbell_group(bytes(mailbox.mailbox.pk))
        await layer.group_add(group, channel)

        # One pending receive throughout: cancelling one unsubscribes a pub/sub channel.
        waiting = asyncio.ensure_future(layer.receive(channel))
        accepted, callbacks = await sync_to_async(send)()
        await asyncio.sleep(0.3)
        before = waiting.result() if waiting.done() else None  # not committed: no doorbell
        assert len(callbacks) == 1
        await sync_to_async(callbacks[0])()  # the commit
        after = await asyncio.wait_for(waiting, 2)
        await layer.group_discard(group, channel)
        return accepted, before, after

    accepted, before, after = async_to_sync(scenario)()
    assert before is None
    assert after == {
        "type": "relay.doorbell",
        "mailbox": bytes(mailbox.mailbox.pk).hex(),
        "envelope": accepted.id.hex(),
    }


def test_a_failed_send_rings_no_doorbell_and_stores_nothing(
    mailbox: OwnedMailbox, settings
) -> None:
    settings.MAILBOX_QUOTA_ENVELOPES = 0
    with pytest.raises(services.MailboxFull):
        services.enqueue_envelope(mailbox.send_id, make_envelope(), 600)
    assert not Envelope.objects.exists()


def test_reads_ignore_expired_rows_before_any_purge(mailbox: OwnedMailbox) -> None:
    live = services.enqueue_envelope(mailbox.send_id, make_envelope(), 600, ring=False)
    dead = services.enqueue_envelope(mailbox.send_id, make_envelope(), 600, ring=False)
    Envelope.objects.filter(id=dead.id).update(expires_at=timezone.now() - timedelta(seconds=1))
    pk = bytes(mailbox.mailbox.pk)
    assert [d.id for d in services.pending_envelopes([pk], [], 10)] == [live.id]
    assert services.envelope_for_delivery(pk, dead.id) is None
    # An expired mailbox takes no envelopes and cannot be subscribed to.
    Mailbox.objects.filter(pk=pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert services.find_owned_mailbox(mailbox.receive_id) is None
    with pytest.raises(services.MailboxNotFound):
        services.enqueue_envelope(mailbox.send_id, make_envelope(), 600)


def test_the_purge_removes_expired_envelopes_and_mailboxes_and_is_idempotent(db: None) -> None:
    keep, drop = new_mailbox(), new_mailbox()
    kept = services.enqueue_envelope(keep.send_id, make_envelope(), 600, ring=False)
    stale = services.enqueue_envelope(keep.send_id, make_envelope(), 600, ring=False)
    services.enqueue_envelope(drop.send_id, make_envelope(), 600, ring=False)
    past = timezone.now() - timedelta(seconds=1)
    Envelope.objects.filter(id=stale.id).update(expires_at=past)
    Mailbox.objects.filter(pk=drop.mailbox.pk).update(expires_at=past)
    assert tasks.purge_expired() == {"envelopes": 2, "mailboxes": 1}
    assert tasks.purge_expired() == {"envelopes": 0, "mailboxes": 0}
    assert list(Envelope.objects.values_list("id", flat=True)) == [kept.id]
    assert list(Mailbox.objects.values_list("pk", flat=True)) == [keep.mailbox.pk]


def test_the_purge_is_on_the_beat_schedule() -> None:
    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "relay.purge_expired" in tasks_scheduled


def test_a_copy_of_the_envelope_table_is_unreadable_once_its_epoch_key_is_destroyed(
    mailbox: OwnedMailbox,
) -> None:
    envelopes = [make_envelope(size) for size in (1024, 4096)]
    for envelope in envelopes:
        services.enqueue_envelope(mailbox.send_id, envelope, 60, ring=False)
    # The "backup": every column of every row, as raw bytes, before any purge.
    backup = [(bytes(row.id), bytes(row.sealed), row.expires_at) for row in Envelope.objects.all()]
    assert sorted(open_sealed(s, context=i) for i, s, _ in backup) == sorted(envelopes)
    assert all(e not in s for e in envelopes for _, s, _ in backup)

    # Time passes beyond the epoch of their expiry: beat purges, then destroys the keys.
    later = max(e for _, _, e in backup) + timedelta(
        seconds=settings.EPOCH_SECONDS + atrest.DESTROY_GRACE_SECONDS
    )
    Envelope.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    services.purge_expired()
    assert rotate_epoch_keys(now=later)["destroyed"] >= 1
    atrest._key_cache.clear()  # a fresh process, or an attacker with the server's files

    for envelope_id, sealed, _ in backup:
        with pytest.raises(KeyDestroyed):
            open_sealed(sealed, context=envelope_id)
    # Nor does any key the server still holds (other epochs, the master key) open them.
    remaining = [
        atrest._unwrap(row.epoch, bytes(row.wrapped_key)) for row in EpochKey.objects.all()
    ]
    candidates = [*remaining, atrest._master_key()]
    for envelope_id, sealed, _ in backup:
        header = atrest.HEADER.size
        nonce = sealed[header - 12 : header]
        key_ids = {atrest.key_id_of(sealed), *EpochKey.objects.values_list("pk", flat=True)}
        for key in candidates:
            for key_id in key_ids:
                ad = atrest.AD_CONTEXT + key_id.to_bytes(8, "big") + envelope_id
                with pytest.raises(InvalidTag):
                    AESGCM(key).decrypt(nonce, sealed[header:], ad)
