"""What the relay can do: mailboxes, envelopes, delivery, acknowledgement, expiry.

The database is the queue. An envelope is accepted only once its row is committed; the
channel layer then rings a *doorbell* (the mailbox's internal id and the envelope id,
never the payload) so live sockets fetch it by id. A lost doorbell costs latency, not
data: every (re)subscribe and every periodic resync reads the pending rows again.

Views and the consumer are thin: they parse, call one function here, and respond.
Functions here are synchronous (ORM); the consumer runs them in Django's database thread.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from messenger.atrest import KeyDestroyed, open_sealed, seal
from messenger.sessions import coarse_time
from messenger.signing import verify_ed25519
from relay.errors import (
    InvalidEnvelopeSize,
    InvalidTtl,
    MailboxFull,
    MailboxNotFound,
    UnsupportedEnvelopeVersion,
)
from relay.models import Envelope, Mailbox, random_id

logger = logging.getLogger(__name__)

ENVELOPE_VERSION = 0x01
SUBSCRIBE_CONTEXT = b"courier-v1 relay-subscribe\x00"
DOORBELL_TYPE = "relay.doorbell"
MAX_IDS_PER_ACK = 100


@dataclass(frozen=True)
class AcceptedEnvelope:
    id: bytes
    mailbox_id: bytes
    expires_at: datetime


@dataclass(frozen=True)
class Delivery:
    id: bytes
    mailbox_id: bytes
    expires_at: datetime
    envelope: bytes


# --- Mailboxes ----------------------------------------------------------------------------


def _check_ttl(ttl_seconds: int, maximum: int) -> None:
    if not isinstance(ttl_seconds, int) or not 1 <= ttl_seconds <= maximum:
        raise InvalidTtl(f"ttl must be between 1 and {maximum} seconds.")


def create_mailbox(owner_key: bytes, ttl_seconds: int) -> Mailbox:
    """A new mailbox; nothing about the caller (not even the session) is stored."""
    _check_ttl(ttl_seconds, settings.MAILBOX_MAX_TTL_SECONDS)
    expires_at = coarse_time(timezone.now() + timedelta(seconds=ttl_seconds))
    return Mailbox.objects.create(owner_key=owner_key, expires_at=expires_at)


def owned_mailbox(receive_id: bytes) -> Mailbox:
    """The live mailbox with this receive id; its owner key still has to be checked."""
    mailbox = Mailbox.objects.live().filter(receive_id=receive_id).first()
    if mailbox is None:
        raise MailboxNotFound()
    return mailbox


def find_owned_mailbox(receive_id: bytes) -> Mailbox | None:
    return Mailbox.objects.live().filter(receive_id=receive_id).first()


def extend_mailbox(mailbox: Mailbox, ttl_seconds: int) -> datetime:
    """Move the expiry to now + ttl, never earlier than it already is.

    Never shortening keeps the rule that no envelope outlives its mailbox.
    """
    _check_ttl(ttl_seconds, settings.MAILBOX_MAX_TTL_SECONDS)
    wanted = coarse_time(timezone.now() + timedelta(seconds=ttl_seconds))
    expires_at = max(wanted, mailbox.expires_at)
    Mailbox.objects.filter(pk=mailbox.pk).update(expires_at=expires_at)
    return expires_at


def delete_mailbox(mailbox: Mailbox) -> None:
    """Delete the mailbox and everything queued in it."""
    with transaction.atomic():
        Envelope.objects.filter(mailbox_id=mailbox.pk).delete()
        Mailbox.objects.filter(pk=mailbox.pk).delete()


def subscription_message(challenge: bytes, receive_id: bytes) -> bytes:
    """What the owner key signs to subscribe a socket to a mailbox."""
    return SUBSCRIBE_CONTEXT + challenge + receive_id


def verify_subscription(
    mailbox: Mailbox, challenge: bytes, receive_id: bytes, signature: bytes
) -> bool:
    message = subscription_message(challenge, receive_id)
    return verify_ed25519(bytes(mailbox.owner_key), signature, message)


# --- Envelopes ----------------------------------------------------------------------------


def check_envelope(envelope: bytes) -> None:
    """Refuse anything but a bucket-sized envelope that starts with the version byte."""
    if len(envelope) not in settings.ENVELOPE_BUCKETS:
        raise InvalidEnvelopeSize()
    if envelope[0] != ENVELOPE_VERSION:
        raise UnsupportedEnvelopeVersion()


def check_envelope_ttl(ttl_seconds: int) -> None:
    _check_ttl(ttl_seconds, settings.ENVELOPE_MAX_TTL_SECONDS)


# The hot path's one select, written out: the ORM spends longer compiling the same query
# (two correlated subqueries) than the database spends running it.
_MAILBOX_FOR_SEND = (
    "SELECT m.id, m.expires_at,"
    " (SELECT COUNT(*) FROM relay_envelope e"
    "   WHERE e.mailbox_id = m.id AND e.expires_at > %s) AS queued,"
    " (SELECT COALESCE(SUM(e.size), 0) FROM relay_envelope e"
    "   WHERE e.mailbox_id = m.id AND e.expires_at > %s) AS queued_bytes"
    " FROM relay_mailbox m WHERE m.send_id = %s AND m.expires_at > %s"
)


def _mailbox_for_send(send_id: bytes) -> Mailbox | None:
    """The live mailbox behind a send id with its live usage; call inside a transaction.

    On PostgreSQL the row is locked (FOR NO KEY UPDATE, which does not block inserts that
    reference it), so two concurrent sends cannot both squeeze under the quota. SQLite
    takes the database write lock at BEGIN (IMMEDIATE), which serializes them anyway.
    """
    connection = transaction.get_connection()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    sql = _MAILBOX_FOR_SEND
    if connection.vendor == "postgresql":
        sql += " FOR NO KEY UPDATE OF m"
    found = list(Mailbox.objects.raw(sql, [now, now, send_id, now]))
    return found[0] if found else None


def enqueue_envelope(
    send_id: bytes, envelope: bytes, ttl_seconds: int, *, ring: bool = True
) -> AcceptedEnvelope:
    """Store an envelope for the mailbox behind `send_id`; return once it is committed.

    One select (the mailbox with its live usage, `_mailbox_for_send`) and one insert.
    The expiry is the client's ttl, cut to the mailbox's own expiry so no envelope
    outlives its mailbox. With `ring`, the
    doorbell goes out on commit; async callers pass False and ring it themselves.
    """
    check_envelope(envelope)
    check_envelope_ttl(ttl_seconds)
    with transaction.atomic():
        mailbox = _mailbox_for_send(send_id)
        if mailbox is None:
            raise MailboxNotFound()
        # Both counts are annotated onto the row by _mailbox_for_send's query.
        queued: int = mailbox.queued  # type: ignore[attr-defined]
        queued_bytes: int = mailbox.queued_bytes  # type: ignore[attr-defined]
        if (
            queued >= settings.MAILBOX_QUOTA_ENVELOPES
            or queued_bytes + len(envelope) > settings.MAILBOX_QUOTA_BYTES
        ):
            raise MailboxFull()
        wanted = coarse_time(timezone.now() + timedelta(seconds=ttl_seconds))
        expires_at = min(wanted, mailbox.expires_at)
        envelope_id = random_id()
        Envelope.objects.create(
            id=envelope_id,
            mailbox_id=mailbox.pk,
            sealed=seal(envelope, expires_at=expires_at, context=envelope_id),
            size=len(envelope),
            expires_at=expires_at,
        )
        accepted = AcceptedEnvelope(bytes(envelope_id), bytes(mailbox.pk), expires_at)
        if ring:
            transaction.on_commit(lambda: ring_doorbell(accepted.mailbox_id, accepted.id))
    return accepted


def doorbell_group(mailbox_id: bytes) -> str:
    return f"relay.{mailbox_id.hex()}"


def _doorbell(mailbox_id: bytes, envelope_id: bytes) -> dict[str, str]:
    return {"type": DOORBELL_TYPE, "mailbox": mailbox_id.hex(), "envelope": envelope_id.hex()}


def ring_doorbell(mailbox_id: bytes, envelope_id: bytes) -> None:
    """Tell live sockets of the mailbox that an envelope is waiting (sync callers)."""
    try:
        async_to_sync(aring_doorbell)(mailbox_id, envelope_id)
    except Exception:  # the envelope is committed; a resync heals a lost doorbell
        logger.warning("doorbell not delivered; subscribers pick the envelope up on resync")


async def aring_doorbell(mailbox_id: bytes, envelope_id: bytes) -> None:
    """Tell live sockets of the mailbox that an envelope is waiting (async callers).

    Failures are logged, not raised: the envelope is already committed and will be
    delivered on the next (re)subscribe or resync.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        await layer.group_send(doorbell_group(mailbox_id), _doorbell(mailbox_id, envelope_id))
    except Exception:  # as above
        logger.warning("doorbell not delivered; subscribers pick the envelope up on resync")


def _open(envelope_id: bytes, sealed: bytes) -> bytes | None:
    try:
        return open_sealed(bytes(sealed), context=bytes(envelope_id))
    except KeyDestroyed:
        # Only possible for a row past its expiry that a purge has not reached yet.
        return None


def _deliveries(rows: list[tuple[bytes, bytes, bytes, datetime]]) -> list[Delivery]:
    deliveries = []
    for envelope_id, mailbox_id, sealed, expires_at in rows:
        envelope = _open(envelope_id, sealed)
        if envelope is not None:
            deliveries.append(Delivery(bytes(envelope_id), bytes(mailbox_id), expires_at, envelope))
    return deliveries


_DELIVERY_FIELDS = ("id", "mailbox_id", "sealed", "expires_at")


def pending_envelopes(
    mailbox_ids: list[bytes], exclude_ids: list[bytes], limit: int
) -> list[Delivery]:
    """Live envelopes queued in these mailboxes, earliest expiry first (one select)."""
    if not mailbox_ids or limit <= 0:
        return []
    rows = (
        Envelope.objects.live()
        .filter(mailbox_id__in=mailbox_ids)
        .exclude(id__in=exclude_ids)
        .order_by("expires_at", "id")
        .values_list(*_DELIVERY_FIELDS)[:limit]
    )
    return _deliveries(list(rows))


def envelope_for_delivery(mailbox_id: bytes, envelope_id: bytes) -> Delivery | None:
    """The envelope a doorbell announced, if it is still live and queued (one select)."""
    rows = list(
        Envelope.objects.live()
        .filter(id=envelope_id, mailbox_id=mailbox_id)
        .values_list(*_DELIVERY_FIELDS)
    )
    found = _deliveries(rows)
    return found[0] if found else None


def fetch_envelopes(mailbox: Mailbox, limit: int) -> tuple[list[Delivery], bool]:
    """The HTTP fallback's fetch: up to `limit` pending envelopes, and whether more wait."""
    deliveries = pending_envelopes([bytes(mailbox.pk)], [], limit + 1)
    return deliveries[:limit], len(deliveries) > limit


def acknowledge_envelopes(mailbox_ids: list[bytes], envelope_ids: list[bytes]) -> int:
    """Delete acknowledged envelopes of these mailboxes (one delete). Idempotent."""
    if not mailbox_ids or not envelope_ids:
        return 0
    deleted, _ = Envelope.objects.filter(mailbox_id__in=mailbox_ids, id__in=envelope_ids).delete()
    return deleted


# --- Expiry --------------------------------------------------------------------------------


def purge_expired() -> dict[str, int]:
    """Beat job: delete expired envelopes and mailboxes. Idempotent.

    Reads already ignore expired rows; this only reclaims space. Their bytes stay
    unreadable in old pages and backups once `messenger.rotate_epoch_keys` destroys the
    epoch key they were sealed under.
    """
    envelopes, _ = Envelope.objects.expired().delete()
    expired_mailboxes = Mailbox.objects.expired()
    orphans, _ = Envelope.objects.filter(mailbox__in=expired_mailboxes).delete()
    _, per_model = expired_mailboxes.delete()
    mailboxes = per_model.get("relay.Mailbox", 0)
    return {"envelopes": envelopes + orphans, "mailboxes": mailboxes}
