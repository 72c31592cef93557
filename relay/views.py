"""The relay's HTTP API (docs/api/relay.md): parse, call one service, respond.

`POST /mailboxes/<send_id>/envelopes` takes the envelope as the raw request body.
Everything the owner does (extend, delete, fetch, acknowledge) is addressed by the
receive id and signed by the mailbox's owner key (messenger/signing.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict

from messenger.api import session_auth
from messenger.codec import b64u_decode, b64u_encode
from messenger.ratelimits import limit_by_session
from messenger.schemas import b64u_bytes
from messenger.signing import verify_signed_request
from messenger.views import ErrorOut
from relay import services
from relay.errors import MailboxNotFound, UnsupportedMediaType
from relay.models import ID_BYTES, Mailbox

router = Router(tags=["relay"])

RATE_GROUP = "relay"
OCTET_STREAM = "application/octet-stream"


Ed25519Key = b64u_bytes(32)
EnvelopeId = b64u_bytes(ID_BYTES)
Ttl = Annotated[int, Field(strict=True, ge=1)]


class StrictSchema(Schema):
    model_config = ConfigDict(extra="forbid")


class MailboxIn(StrictSchema):
    owner_key: Ed25519Key  # type: ignore[valid-type]
    ttl_seconds: Ttl


class MailboxOut(Schema):
    send_id: str
    receive_id: str
    expires_at: datetime


class ExtendIn(StrictSchema):
    ttl_seconds: Ttl


class ExpiryOut(Schema):
    expires_at: datetime


class AcceptedOut(Schema):
    id: str
    expires_at: datetime


class EnvelopeOut(Schema):
    id: str
    expires_at: datetime
    envelope: str


class FetchOut(Schema):
    envelopes: list[EnvelopeOut]
    more: bool


class FetchQuery(Schema):
    limit: Annotated[int, Field(ge=1, le=100)] = 50


class SendQuery(Schema):
    ttl: Annotated[int, Field(ge=1)] | None = None


class AckIn(StrictSchema):
    ids: Annotated[list[EnvelopeId], Field(min_length=1, max_length=100)]  # type: ignore[valid-type]


class AckOut(Schema):
    deleted: int


def _capability(value: str) -> bytes:
    """A send or receive id from the path; anything malformed is simply not found."""
    try:
        return b64u_decode(value, length=ID_BYTES)
    except ValueError:
        raise MailboxNotFound() from None


def _owned(request: HttpRequest, receive_id: str) -> Mailbox:
    """The mailbox, after checking the owner key's signature over this request."""
    limit_by_session(request, RATE_GROUP)
    mailbox = services.owned_mailbox(_capability(receive_id))
    verify_signed_request(request, bytes(mailbox.owner_key), request.body)
    return mailbox


ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 429: ErrorOut}


@router.post("/mailboxes", response={201: MailboxOut, **ERRORS}, auth=session_auth)
def create_mailbox(request: HttpRequest, body: MailboxIn) -> Status:
    """Create a mailbox; the session is checked and then forgotten."""
    limit_by_session(request, RATE_GROUP)
    mailbox = services.create_mailbox(body.owner_key, body.ttl_seconds)
    return Status(
        201,
        {
            "send_id": b64u_encode(bytes(mailbox.send_id)),
            "receive_id": b64u_encode(bytes(mailbox.receive_id)),
            "expires_at": mailbox.expires_at,
        },
    )


@router.post(
    # The path is shared with the owner's fetch, so the parameter has a neutral name:
    # here it is the send id, there the receive id.
    "/mailboxes/{mailbox_id}/envelopes",
    response={201: AcceptedOut, 409: ErrorOut, 413: ErrorOut, 415: ErrorOut, **ERRORS},
    auth=session_auth,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
def send_envelope(request: HttpRequest, mailbox_id: str, query: Query[SendQuery]) -> Status:
    """Queue an envelope (the raw body); 201 only after it is committed."""
    limit_by_session(request, RATE_GROUP)
    # The size first: an empty body often comes without any content type at all.
    services.check_envelope(request.body)
    if request.content_type != OCTET_STREAM:
        raise UnsupportedMediaType()
    ttl = query.ttl if query.ttl is not None else settings.ENVELOPE_MAX_TTL_SECONDS
    accepted = services.enqueue_envelope(_capability(mailbox_id), request.body, ttl)
    return Status(201, {"id": b64u_encode(accepted.id), "expires_at": accepted.expires_at})


@router.patch("/mailboxes/{receive_id}", response={200: ExpiryOut, **ERRORS}, auth=session_auth)
def extend_mailbox(request: HttpRequest, receive_id: str, body: ExtendIn) -> dict[str, object]:
    """Owner-signed: move the expiry to now + ttl_seconds (never earlier)."""
    mailbox = _owned(request, receive_id)
    return {"expires_at": services.extend_mailbox(mailbox, body.ttl_seconds)}


@router.delete("/mailboxes/{receive_id}", response={204: None, **ERRORS}, auth=session_auth)
def delete_mailbox(request: HttpRequest, receive_id: str) -> HttpResponse:
    """Owner-signed: delete the mailbox and everything queued in it."""
    services.delete_mailbox(_owned(request, receive_id))
    return HttpResponse(status=204)


@router.get(
    "/mailboxes/{mailbox_id}/envelopes", response={200: FetchOut, **ERRORS}, auth=session_auth
)
def fetch_envelopes(
    request: HttpRequest, mailbox_id: str, query: Query[FetchQuery]
) -> dict[str, object]:
    """Owner-signed: pending envelopes, earliest expiry first (the fallback for push).

    `mailbox_id` is the receive id here."""
    mailbox = _owned(request, mailbox_id)
    deliveries, more = services.fetch_envelopes(mailbox, query.limit)
    return {
        "envelopes": [
            {
                "id": b64u_encode(d.id),
                "expires_at": d.expires_at,
                "envelope": b64u_encode(d.envelope),
            }
            for d in deliveries
        ],
        "more": more,
    }


@router.post("/mailboxes/{receive_id}/acks", response={200: AckOut, **ERRORS}, auth=session_auth)
def acknowledge_envelopes(request: HttpRequest, receive_id: str, body: AckIn) -> dict[str, int]:
    """Owner-signed: delete these envelopes (unknown ids are ignored)."""
    mailbox = _owned(request, receive_id)
    return {"deleted": services.acknowledge_envelopes([bytes(mailbox.pk)], list(body.ids))}
