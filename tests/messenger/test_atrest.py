"""At-rest encryption under epoch keys, and crypto-shredding when a key is destroyed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography.exceptions import InvalidTag
from django.utils import timezone

from messenger import atrest
from messenger.models import EpochKey

pytestmark = pytest.mark.django_db


def test_a_sealed_record_opens_with_its_context_only() -> None:
    expires = timezone.now() + timedelta(hours=2)
    record = atrest.seal(b"ciphertext from a client", expires_at=expires, context=b"row-1")
    assert b"ciphertext from a client" not in record
    assert atrest.open_sealed(record, context=b"row-1") == b"ciphertext from a client"
    with pytest.raises(InvalidTag):
        atrest.open_sealed(record, context=b"row-2")


def test_records_are_keyed_by_the_epoch_of_their_expiry(settings) -> None:
    now = timezone.now()
    soon = atrest.seal(b"a", expires_at=now + timedelta(minutes=1), context=b"")
    later = atrest.seal(b"b", expires_at=now + timedelta(hours=5), context=b"")
    assert atrest.key_id_of(soon) != atrest.key_id_of(later)
    epochs = set(EpochKey.objects.values_list("epoch", flat=True))
    assert atrest.epoch_of(now + timedelta(hours=5)) in epochs


def test_destroying_an_ended_epoch_shreds_its_records_and_spares_live_ones() -> None:
    now = timezone.now()
    old = atrest.seal(b"old", expires_at=now + timedelta(minutes=1), context=b"x")
    live = atrest.seal(b"live", expires_at=now + timedelta(hours=3), context=b"y")
    assert atrest.rotate_epoch_keys(now=now)["destroyed"] == 0
    result = atrest.rotate_epoch_keys(now=now + timedelta(hours=2))
    assert result["destroyed"] == 1
    with pytest.raises(atrest.KeyDestroyed):
        atrest.open_sealed(old, context=b"x")
    assert atrest.open_sealed(live, context=b"y") == b"live"
    # Idempotent: running the job again destroys nothing more.
    assert atrest.rotate_epoch_keys(now=now + timedelta(hours=2))["destroyed"] == 0


def test_the_database_never_holds_an_unwrapped_key() -> None:
    record = atrest.seal(b"z", expires_at=timezone.now() + timedelta(hours=1), context=b"")
    key_id = atrest.key_id_of(record)
    key = atrest._key_cache[key_id][1]
    wrapped = bytes(EpochKey.objects.get(pk=key_id).wrapped_key)
    assert key not in wrapped


def test_retiring_keys_moves_new_data_to_a_fresh_key_and_old_data_still_opens() -> None:
    expires = timezone.now() + timedelta(hours=1)
    before = atrest.seal(b"before", expires_at=expires, context=b"")
    assert atrest.retire_current_keys() >= 1
    after = atrest.seal(b"after", expires_at=expires, context=b"")
    assert atrest.key_id_of(before) != atrest.key_id_of(after)
    assert atrest.open_sealed(before, context=b"") == b"before"


def test_a_key_destroyed_by_another_process_stops_working_once_the_cache_lapses(
    monkeypatch,
) -> None:
    expires = timezone.now() + timedelta(minutes=1)
    record = atrest.seal(b"r", expires_at=expires, context=b"")
    # Another process (beat) deletes the key row; this process still holds it briefly.
    EpochKey.objects.all().delete()
    assert atrest.open_sealed(record, context=b"") == b"r"
    monkeypatch.setattr(atrest, "KEY_CACHE_SECONDS", 0.0)
    with pytest.raises(atrest.KeyDestroyed):
        atrest.open_sealed(record, context=b"")
