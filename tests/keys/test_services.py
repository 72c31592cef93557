from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from courier.crypto.identity import Identity
from keys import services
from keys.errors import IdentityMismatch, PublishConflict, UnknownHandle
from keys.models import OneTimePrekey, PrekeyBundle
from keys.schemas import BundleIn
from keys.tasks import purge_stale_bundles
from messenger.models import AnonymousSession
from messenger.sessions import mint_session
from tests.keys.support import make_bundle, new_handle


def unsigned(public_key: bytes) -> None:
    """Service tests skip the request signature; the API tests cover it."""


def publish(identity: Identity, handle: str, one_time: int, pq: int, first_id: int = 1) -> None:
    bundle = make_bundle(
        identity,
        range(first_id, first_id + one_time),
        range(first_id + 1000, first_id + 1000 + pq),
        pq_last_resort_id=0,
    )
    services.publish_bundle(handle, BundleIn(**bundle).to_service(), unsigned)


# --- claims ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_fifty_claims_against_twenty_prekeys_hand_out_each_once() -> None:
    handle = new_handle()
    publish(Identity.generate(), handle, 20, 20)
    claims = [services.claim_bundle(handle) for _ in range(50)]
    assert_twenty_distinct_and_thirty_last_resort(claims)


def assert_twenty_distinct_and_thirty_last_resort(claims: list[services.ClaimedBundle]) -> None:
    one_time = [c.one_time_prekey.id for c in claims if c.one_time_prekey]
    pq_one_time = [c.pq_one_time_prekey.id for c in claims if c.pq_one_time_prekey]
    assert sorted(one_time) == list(range(1, 21))
    assert sorted(pq_one_time) == list(range(1001, 1021))
    last_resort_only = [c for c in claims if not c.one_time_prekey and not c.pq_one_time_prekey]
    assert len(last_resort_only) == 30
    assert all(c.pq_last_resort_prekey.id == 0 for c in claims)
    assert OneTimePrekey.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_claimers_get_twenty_distinct_prekeys_on_postgresql() -> None:
    assert connection.vendor == "postgresql"
    handle = new_handle()
    publish(Identity.generate(), handle, 20, 20)
    claims, errors = run_in_threads(50, lambda: services.claim_bundle(handle))
    assert errors == []
    assert_twenty_distinct_and_thirty_last_resort(claims)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_publishes_bind_the_handle_to_one_identity() -> None:
    assert connection.vendor == "postgresql"
    handle = new_handle()
    identities = [Identity.generate() for _ in range(6)]
    bundles = [
        BundleIn(**make_bundle(identity, [i], [100 + i])).to_service()
        for i, identity in enumerate(identities)
    ]
    outcomes, errors = run_in_threads(
        len(bundles), lambda i: services.publish_bundle(handle, bundles[i], unsigned), indexed=True
    )
    assert all(isinstance(error, IdentityMismatch | PublishConflict) for error in errors)
    assert len(outcomes) + len(errors) == len(bundles)
    stored = PrekeyBundle.objects.get()
    winners = [b for b in bundles if b.identity_key == bytes(stored.identity_key)]
    assert len(winners) == 1
    # Only the winner's prekeys were stored: a losing publish stored nothing.
    assert sorted(OneTimePrekey.objects.values_list("key_id", flat=True)) == sorted(
        [winners[0].one_time_prekeys[0].id, winners[0].pq_one_time_prekeys[0].id]
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_top_ups_during_concurrent_claims_lose_and_repeat_nothing() -> None:
    assert connection.vendor == "postgresql"
    identity = Identity.generate()
    handle = new_handle()
    publish(identity, handle, 10, 10)
    top_ups = [
        BundleIn(
            **make_bundle(identity, range(first, first + 5), range(first + 1000, first + 1005))
        ).to_service()
        for first in (11, 16, 21, 26)
    ]

    def work(index: int):
        if index < len(top_ups):
            return services.publish_bundle(handle, top_ups[index], unsigned)
        return services.claim_bundle(handle)

    results, errors = run_in_threads(44, work, indexed=True)
    assert errors == []
    claims = [r for r in results if isinstance(r, services.ClaimedBundle)]
    handed = [c.one_time_prekey.id for c in claims if c.one_time_prekey]
    handed_pq = [c.pq_one_time_prekey.id for c in claims if c.pq_one_time_prekey]
    assert len(handed) == len(set(handed)) and len(handed_pq) == len(set(handed_pq))
    left = list(OneTimePrekey.objects.filter(kind=1).values_list("key_id", flat=True))
    left_pq = list(OneTimePrekey.objects.filter(kind=2).values_list("key_id", flat=True))
    assert sorted(handed + left) == list(range(1, 31))
    assert sorted(handed_pq + left_pq) == list(range(1001, 1031))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_delete_during_concurrent_claims_hands_out_nothing_twice() -> None:
    assert connection.vendor == "postgresql"
    identity = Identity.generate()
    handle = new_handle()
    publish(identity, handle, 20, 20)

    def work(index: int):
        if index == 15:
            return services.delete_bundle(handle, unsigned)
        return services.claim_bundle(handle)

    results, errors = run_in_threads(30, work, indexed=True)
    assert all(isinstance(error, UnknownHandle) for error in errors), errors
    claims = [r for r in results if isinstance(r, services.ClaimedBundle)]
    handed = [c.one_time_prekey.id for c in claims if c.one_time_prekey]
    assert len(handed) == len(set(handed))
    assert PrekeyBundle.objects.count() == 0
    assert OneTimePrekey.objects.count() == 0


def run_in_threads(count: int, work, *, indexed: bool = False) -> tuple[list, list]:
    """Run `work` in `count` real threads released together, each on its own connection."""
    barrier = threading.Barrier(count)
    results: list = []
    errors: list = []
    lock = threading.Lock()

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            result = work(index) if indexed else work()
            with lock:
                results.append(result)
        except Exception as error:  # collected and asserted by the caller
            with lock:
                errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results, errors


# --- purge ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_purge_removes_stale_bundles_and_nothing_else() -> None:
    identity = Identity.generate()
    stale, live, edge = new_handle(), new_handle(), new_handle()
    publish(identity, stale, 3, 2)
    publish(identity, live, 2, 1)
    publish(identity, edge, 1, 1)
    mint_session()
    now = timezone.now()
    PrekeyBundle.objects.filter(handle=stale).update(expires_at=now - timedelta(minutes=1))
    PrekeyBundle.objects.filter(handle=edge).update(expires_at=now + timedelta(minutes=1))

    assert purge_stale_bundles() == 1

    assert set(PrekeyBundle.objects.values_list("handle", flat=True)) == {live, edge}
    assert not OneTimePrekey.objects.filter(bundle_id=stale).exists()
    assert OneTimePrekey.objects.filter(bundle_id=live).count() == 3
    assert OneTimePrekey.objects.filter(bundle_id=edge).count() == 2
    assert AnonymousSession.objects.count() == 1
    # Idempotent: a second run finds nothing.
    assert purge_stale_bundles() == 0


@pytest.mark.django_db
def test_the_purge_works_through_many_stale_bundles_in_batches() -> None:
    identity = Identity.generate()
    handles = [new_handle() for _ in range(7)]
    for handle in handles:
        publish(identity, handle, 1, 0)
    PrekeyBundle.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    assert services.purge_stale_bundles(batch_size=3) == 7
    assert PrekeyBundle.objects.count() == 0
    assert OneTimePrekey.objects.count() == 0


@pytest.mark.django_db
def test_a_republish_refreshes_the_bundle_so_the_purge_keeps_it() -> None:
    identity = Identity.generate()
    handle = new_handle()
    publish(identity, handle, 1, 0)
    PrekeyBundle.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    # The bundle is stale (and thus gone for readers); publishing again starts it afresh.
    publish(identity, handle, 1, 0, first_id=2)
    assert purge_stale_bundles() == 0
    assert list(OneTimePrekey.objects.values_list("key_id", flat=True)) == [2]
