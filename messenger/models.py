from __future__ import annotations

from django.db import models
from django.utils import timezone


class ExpiringQuerySet(models.QuerySet):
    """Rows that carry `expires_at`. Reads use `live()`; purge jobs use `expired()`."""

    def live(self) -> ExpiringQuerySet:
        return self.filter(expires_at__gt=timezone.now())

    def expired(self) -> ExpiringQuerySet:
        return self.filter(expires_at__lte=timezone.now())


class AnonymousSession(models.Model):
    """The only "who" the server knows: a random bearer token, kept as its SHA-256."""

    token_hash = models.BinaryField(primary_key=True, max_length=32)
    expires_at = models.DateTimeField(db_index=True)

    objects = ExpiringQuerySet.as_manager()

    def __str__(self) -> str:
        return f"session expiring {self.expires_at:%Y-%m-%d %H:%M}"


class EpochKey(models.Model):
    """A data key for stored envelopes and blob chunks, wrapped by the master key.

    Keys are bucketed by the *expiry* epoch of what they protect: everything that expires
    during epoch `epoch` is encrypted under a key of that epoch, so the key can be
    destroyed as soon as the epoch has ended, and with it every copy of that data
    (database pages, WAL, backups of the data tables): crypto-shredding.
    """

    epoch = models.BigIntegerField(db_index=True)
    wrapped_key = models.BinaryField(max_length=60)
    # A retired key still decrypts; new data goes under a newer key of the same epoch.
    retired = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"epoch key {self.pk} for epoch {self.epoch}"
