"""The project's own deployment checks (messenger/checks.py), one by one."""

from __future__ import annotations

import os
import secrets
import socket
from datetime import timedelta

import pytest
from django.utils import timezone

from messenger import atrest, checks
from messenger.beat import HEARTBEAT_TTL, alive_key, redis_client
from messenger.models import EpochKey


def ids(messages: list) -> list[str]:
    return [message.id for message in messages]


@pytest.mark.parametrize("value", ["", "change-me", "CHANGEME"])
def test_a_missing_or_placeholder_master_key_is_an_error(settings, value: str) -> None:
    settings.MASTER_KEY = value
    assert ids(checks.check_master_key_present(None)) == ["messenger.E003"]


def test_a_random_master_key_passes(settings) -> None:
    settings.MASTER_KEY = secrets.token_urlsafe(32)
    assert checks.check_master_key_present(None) == []
    assert checks.check_master_key(None) == []


@pytest.mark.django_db
def test_a_master_key_that_does_not_unwrap_the_stored_keys_is_an_error(settings) -> None:
    settings.MASTER_KEY = secrets.token_urlsafe(32)
    atrest.seal(b"x", expires_at=timezone.now() + timedelta(hours=1), context=b"")
    assert checks.check_master_key_matches_stored_keys(None) == []
    settings.MASTER_KEY = secrets.token_urlsafe(32)
    assert ids(checks.check_master_key_matches_stored_keys(None)) == ["messenger.E004"]


def test_checks_that_read_the_database_never_crash_without_one() -> None:
    # No django_db mark: pytest-django refuses database access, as an unmigrated or
    # unreachable database would.
    assert checks.check_master_key_matches_stored_keys(None) == []
    assert checks.check_epoch_keys_destroyed_on_time(None) == []


@pytest.mark.django_db
def test_epoch_keys_outliving_their_epoch_mean_beat_is_not_running() -> None:
    assert checks.check_epoch_keys_destroyed_on_time(None) == []
    atrest.seal(b"live", expires_at=timezone.now() + timedelta(hours=1), context=b"")
    assert checks.check_epoch_keys_destroyed_on_time(None) == []
    EpochKey.objects.create(epoch=1, wrapped_key=b"\x00" * 40)
    assert ids(checks.check_epoch_keys_destroyed_on_time(None)) == ["messenger.W003"]


def test_an_unreachable_redis_is_an_error(settings) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    assert ids(checks.check_redis_reachable(None)) == ["messenger.E005"]
    assert checks.check_one_beat(None) == []  # reported once, by the reachability check


def test_without_redis_there_is_nothing_to_reach_and_no_beat_to_count(settings) -> None:
    settings.REDIS_URL = ""
    assert checks.check_redis_reachable(None) == []
    assert checks.check_one_beat(None) == []


@pytest.mark.redis
def test_two_live_beat_heartbeats_are_reported() -> None:
    assert os.environ.get("REDIS_URL"), "needs the Redis pass"
    client = redis_client()
    first, second = f"test-a:{secrets.token_hex(4)}", f"test-b:{secrets.token_hex(4)}"
    try:
        assert checks.check_redis_reachable(None) == []
        client.set(alive_key(first), "1", ex=HEARTBEAT_TTL)
        assert checks.check_one_beat(None) == []
        client.set(alive_key(second), "1", ex=HEARTBEAT_TTL)
        assert ids(checks.check_one_beat(None)) == ["messenger.W002"]
    finally:
        client.delete(alive_key(first), alive_key(second))


@pytest.mark.redis
@pytest.mark.django_db
def test_rewrap_master_key_refuses_to_run_while_a_beat_is_alive(tmp_path) -> None:
    from django.core.management import call_command
    from django.core.management.base import CommandError

    assert os.environ.get("REDIS_URL"), "needs the Redis pass"
    key_file = tmp_path / "new"
    key_file.write_text(secrets.token_urlsafe(32))
    client = redis_client()
    beat_id = f"test-beat:{secrets.token_hex(4)}"
    client.set(alive_key(beat_id), "1", ex=HEARTBEAT_TTL)
    try:
        with pytest.raises(CommandError, match="beat is running"):
            call_command("rewrap_master_key", new_key_file=str(key_file))
    finally:
        client.delete(alive_key(beat_id))
