"""The prekey directory's HTTP API (docs/api/keys.md): parse, call one service, respond."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from keys import services
from keys.schemas import BundleIn, ClaimedBundleOut, CountsOut, claimed_out, counts_out
from messenger.api import session_auth
from messenger.errors import RateLimited
from messenger.ratelimits import limit_by_session, limit_by_value
from messenger.signing import verify_signed_request
from messenger.views import ErrorOut

router = Router(tags=["keys"])


def _signed_by(request: HttpRequest) -> services.Authorize:
    body = request.body
    return lambda public_key: verify_signed_request(request, public_key, body)


ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 429: ErrorOut}


@router.put(
    "/{handle}",
    response={200: CountsOut, 201: CountsOut, 409: ErrorOut, 413: ErrorOut, **ERRORS},
    auth=session_auth,
)
def publish_bundle(request: HttpRequest, handle: str, bundle: BundleIn) -> Status:
    """Publish a bundle under a new handle, or refresh it and append one-time prekeys.

    Signed by the bundle's identity key (X-Courier-Challenge, X-Courier-Signature). The
    first publish binds the handle to that key; later ones must carry the same key.
    """
    limit_by_session(request, "keys-publish", settings.RATELIMIT_PREKEY_PUBLISH)
    created, counts = services.publish_bundle(handle, bundle.to_service(), _signed_by(request))
    return Status(201 if created else 200, counts_out(counts))


@router.get("/{handle}", response={200: ClaimedBundleOut, **ERRORS}, auth=session_auth)
def claim_bundle(request: HttpRequest, handle: str) -> Status:
    """Fetch the bundle, claiming one one-time prekey of each kind (each handed out once)."""
    limit_by_session(request, "keys-claim", settings.RATELIMIT_PREKEY_CLAIM_PER_SESSION)
    try:
        # Over the handle's rate the bundle is still served, with last-resort keys only:
        # the stock drains no faster than the rate, and nobody can lock contacts out.
        limit_by_value(
            request, "keys-claim-handle", handle, settings.RATELIMIT_PREKEY_CLAIM_PER_HANDLE
        )
        hand_out_one_time = True
    except RateLimited:
        hand_out_one_time = False
    bundle = services.claim_bundle(handle, hand_out_one_time=hand_out_one_time)
    return Status(200, claimed_out(bundle))


@router.get("/{handle}/count", response={200: CountsOut, **ERRORS}, auth=session_auth)
def count_prekeys(request: HttpRequest, handle: str) -> Status:
    """How many one-time prekeys are left, and whether the signed prekey is due for
    rotation. Signed by the identity key: counts reveal claim activity.
    """
    counts = services.count_prekeys(handle, _signed_by(request))
    return Status(200, counts_out(counts))


@router.delete("/{handle}", response={204: None, **ERRORS}, auth=session_auth)
def delete_bundle(request: HttpRequest, handle: str) -> HttpResponse:
    """Delete the bundle and all its prekeys. Signed by the identity key."""
    limit_by_session(request, "keys-publish", settings.RATELIMIT_PREKEY_PUBLISH)
    services.delete_bundle(handle, _signed_by(request))
    return HttpResponse(status=204)
