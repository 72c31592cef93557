"""The prekey directory's rows: one bundle per handle, and its one-time prekeys.

Only public keys and their signatures are stored. A bundle lives until `expires_at`
(PREKEY_RETENTION_SECONDS after its last publish, coarsened); reads use `live()`, the
beat job `keys.purge_stale_bundles` reclaims the rest.
"""

from __future__ import annotations

from django.db import models

from messenger.models import ExpiringQuerySet

U32_MAX = 2**32 - 1


class PrekeyKind(models.IntegerChoices):
    X25519 = 1, "X25519 one-time prekey"
    ML_KEM_768 = 2, "ML-KEM-768 one-time prekey"


class PrekeyBundle(models.Model):
    """The long-lived part of a bundle, bound for life to its identity key."""

    # 16 random bytes chosen by the client, base64url (22 characters).
    handle = models.CharField(primary_key=True, max_length=22)
    identity_key = models.BinaryField(max_length=32)
    identity_dh_key = models.BinaryField(max_length=32)
    identity_dh_signature = models.BinaryField(max_length=64)
    signed_prekey_id = models.BigIntegerField()
    signed_prekey = models.BinaryField(max_length=32)
    signed_prekey_signature = models.BinaryField(max_length=64)
    # When this signed prekey was first published (coarsened): the count endpoint flags
    # it once it is older than SIGNED_PREKEY_ROTATION_SECONDS.
    signed_prekey_since = models.DateTimeField()
    pq_last_resort_id = models.BigIntegerField()
    pq_last_resort_key = models.BinaryField(max_length=1184)
    pq_last_resort_signature = models.BinaryField(max_length=64)
    expires_at = models.DateTimeField(db_index=True)

    objects = ExpiringQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(signed_prekey_id__gte=0, signed_prekey_id__lte=U32_MAX)
                & models.Q(pq_last_resort_id__gte=0, pq_last_resort_id__lte=U32_MAX),
                name="keys_bundle_ids_are_u32",
            )
        ]

    def __str__(self) -> str:
        return f"prekey bundle expiring {self.expires_at:%Y-%m-%d %H:%M}"


class OneTimePrekey(models.Model):
    """One one-time prekey: handed out by exactly one claim, then deleted."""

    # No index of its own: the unique constraint below starts with bundle.
    bundle = models.ForeignKey(
        PrekeyBundle, on_delete=models.CASCADE, related_name="one_time_prekeys", db_index=False
    )
    kind = models.PositiveSmallIntegerField(choices=PrekeyKind.choices)
    key_id = models.BigIntegerField()
    key = models.BinaryField(max_length=1184)
    # Empty for X25519 one-time prekeys, which PQXDH leaves unsigned.
    signature = models.BinaryField(max_length=64, default=b"")

    class Meta:
        constraints = [
            # Also the index a claim walks: (bundle, kind) in key_id order.
            models.UniqueConstraint(
                fields=["bundle", "kind", "key_id"], name="keys_one_time_prekey_unique_id"
            ),
            models.CheckConstraint(
                condition=models.Q(key_id__gte=0, key_id__lte=U32_MAX),
                name="keys_one_time_prekey_id_is_u32",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.key_id}"
