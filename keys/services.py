"""What the prekey directory can do: publish, claim, count, delete, purge.

The bundle format and its signatures are docs/protocol.md section 3; the HTTP surface is
docs/api/keys.md. Publishing, counting and deleting are authorized by a request signature
of the handle's identity key (messenger/signing.py); the first publish binds the handle
to that key for as long as the bundle lives.

One-time prekeys are appended by each publish (top-up) and removed by the claim that
hands them out, so each is handed out at most once (ARCHITECTURE.md invariant 4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM768PublicKey
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from keys.errors import (
    BadBundleSignature,
    DuplicatePrekeyId,
    IdentityMismatch,
    InvalidHandle,
    InvalidPqKey,
    PrekeyIdInUse,
    PrekeyStockFull,
    PublishConflict,
    TooManyPrekeys,
    UnknownHandle,
)
from keys.models import OneTimePrekey, PrekeyBundle, PrekeyKind
from messenger.codec import b64u_decode
from messenger.sessions import coarse_time
from messenger.signing import verify_ed25519

HANDLE_BYTES = 16

# Signature contexts of docs/protocol.md section 3.1 (ASCII, then one zero byte).
CONTEXT_IDENTITY_DH = b"courier-v1 identity-dh\x00"
CONTEXT_SIGNED_PREKEY = b"courier-v1 signed-prekey\x00"
CONTEXT_PQ_PREKEY = b"courier-v1 pq-prekey\x00"
PQ_KIND_LAST_RESORT = b"\x01"
PQ_KIND_ONE_TIME = b"\x02"

# Proves possession of the identity key for this very request: raises unless the
# request carries a valid single-use signature by the given Ed25519 public key.
Authorize = Callable[[bytes], None]


@dataclass(frozen=True)
class SignedKey:
    id: int
    key: bytes
    signature: bytes


@dataclass(frozen=True)
class OneTimeKey:
    id: int
    key: bytes


@dataclass(frozen=True)
class PublishedBundle:
    """A bundle as PUT (section 3.1), fields already decoded and length-checked."""

    identity_key: bytes
    identity_dh_key: bytes
    identity_dh_signature: bytes
    signed_prekey: SignedKey
    pq_last_resort_prekey: SignedKey
    one_time_prekeys: Sequence[OneTimeKey]
    pq_one_time_prekeys: Sequence[SignedKey]


@dataclass(frozen=True)
class ClaimedBundle:
    """What a claim returns (section 3.2): at most one one-time prekey of each kind."""

    identity_key: bytes
    identity_dh_key: bytes
    identity_dh_signature: bytes
    signed_prekey: SignedKey
    pq_last_resort_prekey: SignedKey
    one_time_prekey: OneTimeKey | None
    pq_one_time_prekey: SignedKey | None


@dataclass(frozen=True)
class PrekeyCounts:
    one_time_prekeys: int
    pq_one_time_prekeys: int
    signed_prekey_id: int
    signed_prekey_stale: bool
    expires_at: datetime


# --- checks (no database) -------------------------------------------------------------------


def check_handle(handle: str) -> str:
    try:
        b64u_decode(handle, length=HANDLE_BYTES)
    except ValueError:
        raise InvalidHandle() from None
    return handle


def check_bundle(bundle: PublishedBundle) -> None:
    """Refuse a bundle that breaks a rule of section 3.1 (lists, ids, keys, signatures).

    Every signature is checked before anything is stored, so one bad signature refuses
    the whole bundle.
    """
    limit = settings.PREKEY_MAX_BATCH
    if len(bundle.one_time_prekeys) > limit or len(bundle.pq_one_time_prekeys) > limit:
        raise TooManyPrekeys(
            f"At most {limit} one-time prekeys of each kind per request; top up in batches."
        )
    one_time_ids = [prekey.id for prekey in bundle.one_time_prekeys]
    if len(set(one_time_ids)) != len(one_time_ids):
        raise DuplicatePrekeyId("Two one_time_prekeys share an id.")
    # The initiator names a PQ prekey by its id alone, so last-resort and one-time PQ
    # prekeys share one id space.
    pq_ids = [bundle.pq_last_resort_prekey.id, *(k.id for k in bundle.pq_one_time_prekeys)]
    if len(set(pq_ids)) != len(pq_ids):
        raise DuplicatePrekeyId("Two PQ prekeys (last-resort and one-time together) share an id.")

    for where, key in [
        ("pq_last_resort_prekey", bundle.pq_last_resort_prekey.key),
        *((f"pq_one_time_prekeys[{i}]", k.key) for i, k in enumerate(bundle.pq_one_time_prekeys)),
    ]:
        try:
            MLKEM768PublicKey.from_public_bytes(key)
        except ValueError:
            raise InvalidPqKey(f"{where}.key is not an ML-KEM-768 encapsulation key.") from None

    identity = bundle.identity_key
    signed: list[tuple[str, bytes, bytes]] = [
        (
            "identity_dh_signature",
            bundle.identity_dh_signature,
            CONTEXT_IDENTITY_DH + bundle.identity_dh_key,
        ),
        (
            "signed_prekey.signature",
            bundle.signed_prekey.signature,
            CONTEXT_SIGNED_PREKEY + _u32(bundle.signed_prekey.id) + bundle.signed_prekey.key,
        ),
        (
            "pq_last_resort_prekey.signature",
            bundle.pq_last_resort_prekey.signature,
            _pq_message(PQ_KIND_LAST_RESORT, bundle.pq_last_resort_prekey),
        ),
        *(
            (
                f"pq_one_time_prekeys[{i}].signature",
                prekey.signature,
                _pq_message(PQ_KIND_ONE_TIME, prekey),
            )
            for i, prekey in enumerate(bundle.pq_one_time_prekeys)
        ),
    ]
    for where, signature, message in signed:
        if not verify_ed25519(identity, signature, message):
            raise BadBundleSignature(f"{where} does not verify under identity_key.")


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _pq_message(kind: bytes, prekey: SignedKey) -> bytes:
    return CONTEXT_PQ_PREKEY + kind + _u32(prekey.id) + prekey.key


# --- operations -----------------------------------------------------------------------------


def publish_bundle(
    handle: str, bundle: PublishedBundle, authorize: Authorize
) -> tuple[bool, PrekeyCounts]:
    """Publish or refresh the bundle under `handle`; return (created, counts).

    The identity fields, signed prekey and last-resort PQ prekey are replaced; the one-time
    prekeys in the request are appended to those still stored. Nothing is stored unless
    the request signature, every bundle signature and every stock rule hold.
    """
    check_handle(handle)
    check_bundle(bundle)
    # The request must be signed by the identity key it publishes: that is what binds the
    # handle to the key on first publish, and what a later publish is compared against.
    authorize(bundle.identity_key)
    try:
        with transaction.atomic():
            return _store_bundle(handle, bundle)
    except IntegrityError:
        # Two first publishes of one handle raced (PostgreSQL); the loser retries and
        # then meets the identity check like any later publish.
        raise PublishConflict() from None


def _store_bundle(handle: str, bundle: PublishedBundle) -> tuple[bool, PrekeyCounts]:
    now = timezone.now()
    # The row lock orders concurrent publishes and deletes of one handle, so the stock
    # checks below see every one-time prekey a concurrent top-up added.
    existing = PrekeyBundle.objects.select_for_update().filter(handle=handle).first()
    if existing is not None and existing.expires_at <= now:
        # A stale bundle is gone as far as readers are concerned: its binding ends with it.
        existing.delete()
        existing = None
    if existing is not None and bytes(existing.identity_key) != bundle.identity_key:
        raise IdentityMismatch()

    stored_ids: dict[int, set[int]] = {PrekeyKind.X25519: set(), PrekeyKind.ML_KEM_768: set()}
    if existing is not None:
        for kind, key_id in OneTimePrekey.objects.filter(bundle=existing).values_list(
            "kind", "key_id"
        ):
            stored_ids[kind].add(key_id)
    _check_stock(bundle, stored_ids)

    signed_prekey = bundle.signed_prekey
    same_signed_prekey = (
        existing is not None
        and existing.signed_prekey_id == signed_prekey.id
        and bytes(existing.signed_prekey) == signed_prekey.key
    )
    row = existing or PrekeyBundle(handle=handle)
    row.identity_key = bundle.identity_key
    row.identity_dh_key = bundle.identity_dh_key
    row.identity_dh_signature = bundle.identity_dh_signature
    row.signed_prekey_id = signed_prekey.id
    row.signed_prekey = signed_prekey.key
    row.signed_prekey_signature = signed_prekey.signature
    if not same_signed_prekey:
        row.signed_prekey_since = coarse_time(now)
    row.pq_last_resort_id = bundle.pq_last_resort_prekey.id
    row.pq_last_resort_key = bundle.pq_last_resort_prekey.key
    row.pq_last_resort_signature = bundle.pq_last_resort_prekey.signature
    row.expires_at = coarse_time(now + timedelta(seconds=settings.PREKEY_RETENTION_SECONDS))
    if existing is None:
        # force_insert: a concurrent first publish makes this an IntegrityError, never
        # a silent overwrite of the other identity's row.
        row.save(force_insert=True)
    else:
        row.save()
    OneTimePrekey.objects.bulk_create(
        [
            OneTimePrekey(bundle=row, kind=PrekeyKind.X25519, key_id=k.id, key=k.key)
            for k in bundle.one_time_prekeys
        ]
        + [
            OneTimePrekey(
                bundle=row,
                kind=PrekeyKind.ML_KEM_768,
                key_id=k.id,
                key=k.key,
                signature=k.signature,
            )
            for k in bundle.pq_one_time_prekeys
        ]
    )
    return existing is None, _counts(row)


def _check_stock(bundle: PublishedBundle, stored_ids: dict[int, set[int]]) -> None:
    stored_x25519 = stored_ids[PrekeyKind.X25519]
    stored_pq = stored_ids[PrekeyKind.ML_KEM_768]
    if any(k.id in stored_x25519 for k in bundle.one_time_prekeys):
        raise PrekeyIdInUse("A one_time_prekeys id is already stored under this handle.")
    if any(k.id in stored_pq for k in bundle.pq_one_time_prekeys):
        raise PrekeyIdInUse("A pq_one_time_prekeys id is already stored under this handle.")
    if bundle.pq_last_resort_prekey.id in stored_pq:
        raise PrekeyIdInUse("pq_last_resort_prekey.id is the id of a stored PQ one-time prekey.")
    maximum = settings.PREKEY_MAX_ONE_TIME
    if (
        len(stored_x25519) + len(bundle.one_time_prekeys) > maximum
        or len(stored_pq) + len(bundle.pq_one_time_prekeys) > maximum
    ):
        raise PrekeyStockFull(
            f"At most {maximum} one-time prekeys of each kind may be stored "
            f"(stored now: {len(stored_x25519)} X25519, {len(stored_pq)} PQ)."
        )


def claim_bundle(handle: str, *, hand_out_one_time: bool = True) -> ClaimedBundle:
    """Return the bundle under `handle`, handing out (and deleting) one one-time prekey of
    each kind while any is left. With `hand_out_one_time=False` (the handle is over its
    claim rate) only the last-resort keys are served and the stock is left alone.
    """
    check_handle(handle)
    if not hand_out_one_time:
        bundle = PrekeyBundle.objects.live().filter(handle=handle).first()
        if bundle is None:
            raise UnknownHandle()
        return _claimed(bundle, None, None)
    with transaction.atomic():
        # Without a lock, two concurrent claims on PostgreSQL could both read the same
        # lowest prekey and both hand it out. Locking the bundle row (FOR UPDATE, waiting)
        # serializes the claims of one handle, so each takes the next prekey of each kind
        # and deletes it before the next claim reads: every prekey goes to exactly one
        # claimer, and the first N claimers get both kinds. SKIP LOCKED on the prekey rows
        # instead would keep exactly-once but split the pairs under contention (a claimer
        # finding every X25519 row locked still takes a PQ row), handing bundles out with
        # one one-time prekey where both were available. Claims of different handles do
        # not wait for each other; one handle's claims are rate-limited anyway.
        # On SQLite select_for_update is a no-op: the transaction begins IMMEDIATE
        # (settings), so the database's write lock serializes every claim.
        bundle = PrekeyBundle.objects.live().select_for_update().filter(handle=handle).first()
        if bundle is None:
            raise UnknownHandle()
        taken = _take_one_time_prekeys(bundle)
    return _claimed(bundle, taken.get(PrekeyKind.X25519), taken.get(PrekeyKind.ML_KEM_768))


def _take_one_time_prekeys(bundle: PrekeyBundle) -> dict[int, OneTimePrekey]:
    """Delete and return the lowest-id one-time prekey of each kind still stored.

    Call inside a transaction holding the bundle's row lock. Two statements for both
    kinds (one read, one delete): a claim is a handful of round trips in all.
    """
    x25519, ml_kem = (
        OneTimePrekey.objects.filter(bundle=bundle, kind=kind).order_by("key_id").values("pk")[:1]
        for kind in (PrekeyKind.X25519, PrekeyKind.ML_KEM_768)
    )
    prekeys = list(OneTimePrekey.objects.filter(Q(pk__in=x25519) | Q(pk__in=ml_kem)))
    if prekeys:
        OneTimePrekey.objects.filter(pk__in=[prekey.pk for prekey in prekeys]).delete()
    return {prekey.kind: prekey for prekey in prekeys}


def _claimed(
    bundle: PrekeyBundle, one_time: OneTimePrekey | None, pq_one_time: OneTimePrekey | None
) -> ClaimedBundle:
    return ClaimedBundle(
        identity_key=bytes(bundle.identity_key),
        identity_dh_key=bytes(bundle.identity_dh_key),
        identity_dh_signature=bytes(bundle.identity_dh_signature),
        signed_prekey=SignedKey(
            bundle.signed_prekey_id,
            bytes(bundle.signed_prekey),
            bytes(bundle.signed_prekey_signature),
        ),
        pq_last_resort_prekey=SignedKey(
            bundle.pq_last_resort_id,
            bytes(bundle.pq_last_resort_key),
            bytes(bundle.pq_last_resort_signature),
        ),
        one_time_prekey=OneTimeKey(one_time.key_id, bytes(one_time.key)) if one_time else None,
        pq_one_time_prekey=(
            SignedKey(pq_one_time.key_id, bytes(pq_one_time.key), bytes(pq_one_time.signature))
            if pq_one_time
            else None
        ),
    )


def count_prekeys(handle: str, authorize: Authorize) -> PrekeyCounts:
    """The owner's view of its stock, so it knows when to top up or rotate."""
    bundle = _owned_bundle(handle, authorize)
    return _counts(bundle)


def delete_bundle(handle: str, authorize: Authorize) -> None:
    """Delete the bundle and every prekey under `handle` (e.g. after moving to a new one)."""
    bundle = _owned_bundle(handle, authorize)
    with transaction.atomic():
        # Lock the bundle row before its prekeys go, in the same order as claims and
        # publishes: deleting the prekeys first could deadlock against a claim that holds
        # the bundle and waits for a prekey. Only the row that was authorized is deleted:
        # a republish under a new identity (possible only after expiry) is left alone.
        owned = (
            PrekeyBundle.objects.select_for_update()
            .filter(handle=bundle.handle, identity_key=bytes(bundle.identity_key))
            .first()
        )
        if owned is not None:
            owned.delete()


def _owned_bundle(handle: str, authorize: Authorize) -> PrekeyBundle:
    check_handle(handle)
    bundle = PrekeyBundle.objects.live().filter(handle=handle).first()
    if bundle is None:
        raise UnknownHandle()
    authorize(bytes(bundle.identity_key))
    return bundle


def _counts(bundle: PrekeyBundle) -> PrekeyCounts:
    by_kind = dict(
        OneTimePrekey.objects.filter(bundle=bundle)
        .values("kind")
        .annotate(n=Count("pk"))
        .values_list("kind", "n")
    )
    age = timezone.now() - bundle.signed_prekey_since
    return PrekeyCounts(
        one_time_prekeys=by_kind.get(PrekeyKind.X25519, 0),
        pq_one_time_prekeys=by_kind.get(PrekeyKind.ML_KEM_768, 0),
        signed_prekey_id=bundle.signed_prekey_id,
        signed_prekey_stale=age > timedelta(seconds=settings.SIGNED_PREKEY_ROTATION_SECONDS),
        expires_at=bundle.expires_at,
    )


def purge_stale_bundles(batch_size: int = 500) -> int:
    """Delete bundles (and their prekeys) not refreshed within the retention; idempotent.

    Returns the number of bundles deleted.
    """
    deleted = 0
    while True:
        with transaction.atomic():
            # Lock what is stale now and skip what a publish holds: a bundle being
            # refreshed at this moment is not deleted under it.
            stale = list(
                PrekeyBundle.objects.expired()
                .select_for_update(skip_locked=True)
                .values_list("handle", flat=True)[:batch_size]
            )
            OneTimePrekey.objects.filter(bundle_id__in=stale).delete()
            PrekeyBundle.objects.filter(handle__in=stale).delete()
        deleted += len(stale)
        if len(stale) < batch_size:
            return deleted
