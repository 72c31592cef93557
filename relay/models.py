"""The relay's rows: mailboxes and the sealed envelopes queued in them.

Nothing here says who created a mailbox or who sent an envelope. Every identifier is
random (16 bytes), so neither row order nor ids reveal which mailboxes were made
together; timestamps exist only for expiry and are coarsened (`coarse_time`).
Reads always use `live()`; the beat job `relay.purge_expired` reclaims the rest.
"""

from __future__ import annotations

import secrets

from django.db import models

from messenger.models import ExpiringQuerySet

ID_BYTES = 16


def random_id() -> bytes:
    return secrets.token_bytes(ID_BYTES)


class Mailbox(models.Model):
    """A queue with two capabilities: a send id for one contact, a receive id for its owner.

    The internal `id` is a third random value, so doorbells and logs never carry either
    capability. The owner key is an Ed25519 key made for this mailbox alone.
    """

    id = models.BinaryField(primary_key=True, max_length=ID_BYTES, default=random_id)
    send_id = models.BinaryField(unique=True, max_length=ID_BYTES, default=random_id)
    receive_id = models.BinaryField(unique=True, max_length=ID_BYTES, default=random_id)
    owner_key = models.BinaryField(max_length=32)
    expires_at = models.DateTimeField(db_index=True)

    objects = ExpiringQuerySet.as_manager()

    def __str__(self) -> str:
        return f"mailbox expiring {self.expires_at:%Y-%m-%d %H:%M}"


class Envelope(models.Model):
    """One opaque envelope, encrypted at rest under the epoch key of its expiry.

    `sealed` is `messenger.atrest.seal(envelope, expires_at=..., context=id)`; `size` is
    the envelope's bucket size (public anyway), kept for the mailbox's byte quota.
    """

    id = models.BinaryField(primary_key=True, max_length=ID_BYTES, default=random_id)
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="envelopes")
    sealed = models.BinaryField()
    size = models.PositiveIntegerField()
    expires_at = models.DateTimeField()

    objects = ExpiringQuerySet.as_manager()

    class Meta:
        indexes = [
            # Pending envelopes of a mailbox, oldest expiry first, live ones only.
            models.Index(fields=["mailbox", "expires_at"], name="relay_env_mailbox_expiry"),
            models.Index(fields=["expires_at"], name="relay_env_expiry"),
        ]

    def __str__(self) -> str:
        return f"envelope of {self.size} bytes expiring {self.expires_at:%Y-%m-%d %H:%M}"
