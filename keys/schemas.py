"""The request and response bodies of the prekey directory (docs/api/keys.md).

They hold the strict shape of docs/protocol.md section 3: no unknown fields, ids that are
JSON integers in 0..2^32-1 (not booleans, floats or strings), base64url without padding
that decodes to the exact length. Anything else is a 400 `invalid_request` naming the
field, before any service runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.conf import settings
from ninja import Field, Schema
from pydantic import ConfigDict

from keys import services
from keys.models import U32_MAX
from messenger.codec import b64u_encode
from messenger.schemas import b64u_bytes

X25519Key = b64u_bytes(32)
Ed25519Key = b64u_bytes(32)
Signature = b64u_bytes(64)
MlKemKey = b64u_bytes(1184)
PrekeyId = Annotated[int, Field(strict=True, ge=0, le=U32_MAX)]


class StrictSchema(Schema):
    model_config = ConfigDict(extra="forbid")


class OneTimePrekeyIn(StrictSchema):
    id: PrekeyId
    key: X25519Key  # type: ignore[valid-type]


class SignedPrekeyIn(StrictSchema):
    id: PrekeyId
    key: X25519Key  # type: ignore[valid-type]
    signature: Signature  # type: ignore[valid-type]


class PqPrekeyIn(StrictSchema):
    id: PrekeyId
    key: MlKemKey  # type: ignore[valid-type]
    signature: Signature  # type: ignore[valid-type]


class BundleIn(StrictSchema):
    """A published bundle, docs/protocol.md section 3.1."""

    identity_key: Ed25519Key  # type: ignore[valid-type]
    identity_dh_key: X25519Key  # type: ignore[valid-type]
    identity_dh_signature: Signature  # type: ignore[valid-type]
    signed_prekey: SignedPrekeyIn
    pq_last_resort_prekey: PqPrekeyIn
    one_time_prekeys: list[OneTimePrekeyIn]
    pq_one_time_prekeys: list[PqPrekeyIn]

    def to_service(self) -> services.PublishedBundle:
        return services.PublishedBundle(
            identity_key=self.identity_key,
            identity_dh_key=self.identity_dh_key,
            identity_dh_signature=self.identity_dh_signature,
            signed_prekey=_signed(self.signed_prekey),
            pq_last_resort_prekey=_signed(self.pq_last_resort_prekey),
            one_time_prekeys=[services.OneTimeKey(k.id, k.key) for k in self.one_time_prekeys],
            pq_one_time_prekeys=[_signed(k) for k in self.pq_one_time_prekeys],
        )


def _signed(prekey: SignedPrekeyIn | PqPrekeyIn) -> services.SignedKey:
    return services.SignedKey(prekey.id, prekey.key, prekey.signature)


class OneTimePrekeyOut(Schema):
    id: int
    key: str


class SignedPrekeyOut(Schema):
    id: int
    key: str
    signature: str


class ClaimedBundleOut(Schema):
    """A claimed bundle, docs/protocol.md section 3.2; one-time fields may be null."""

    identity_key: str
    identity_dh_key: str
    identity_dh_signature: str
    signed_prekey: SignedPrekeyOut
    pq_last_resort_prekey: SignedPrekeyOut
    one_time_prekey: OneTimePrekeyOut | None
    pq_one_time_prekey: SignedPrekeyOut | None


class CountsOut(Schema):
    one_time_prekeys: int
    pq_one_time_prekeys: int
    max_one_time_prekeys: int
    signed_prekey_id: int
    signed_prekey_stale: bool
    expires_at: datetime


def _signed_out(prekey: services.SignedKey) -> dict[str, object]:
    return {
        "id": prekey.id,
        "key": b64u_encode(prekey.key),
        "signature": b64u_encode(prekey.signature),
    }


def claimed_out(bundle: services.ClaimedBundle) -> dict[str, object]:
    one_time = bundle.one_time_prekey
    return {
        "identity_key": b64u_encode(bundle.identity_key),
        "identity_dh_key": b64u_encode(bundle.identity_dh_key),
        "identity_dh_signature": b64u_encode(bundle.identity_dh_signature),
        "signed_prekey": _signed_out(bundle.signed_prekey),
        "pq_last_resort_prekey": _signed_out(bundle.pq_last_resort_prekey),
        "one_time_prekey": (
            {"id": one_time.id, "key": b64u_encode(one_time.key)} if one_time else None
        ),
        "pq_one_time_prekey": (
            _signed_out(bundle.pq_one_time_prekey) if bundle.pq_one_time_prekey else None
        ),
    }


def counts_out(counts: services.PrekeyCounts) -> dict[str, object]:
    return {
        "one_time_prekeys": counts.one_time_prekeys,
        "pq_one_time_prekeys": counts.pq_one_time_prekeys,
        "max_one_time_prekeys": settings.PREKEY_MAX_ONE_TIME,
        "signed_prekey_id": counts.signed_prekey_id,
        "signed_prekey_stale": counts.signed_prekey_stale,
        "expires_at": counts.expires_at,
    }
