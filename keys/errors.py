"""Stable error codes of the prekey directory (documented in docs/api/keys.md).

Shared codes (`invalid_request`, `unauthorized`, `bad_signature`, `stale_challenge`,
`rate_limited`, `body_too_large`) come from messenger/; these are the directory's own.
"""

from __future__ import annotations

from messenger.errors import ApiError


class InvalidHandle(ApiError):
    status = 400
    code = "invalid_handle"
    message = "A handle is 16 bytes in base64url without padding (22 characters)."


class TooManyPrekeys(ApiError):
    status = 400
    code = "too_many_prekeys"
    message = "A batch holds more one-time prekeys than the policy allows."


class DuplicatePrekeyId(ApiError):
    status = 400
    code = "duplicate_prekey_id"
    message = "Two prekeys of the same kind in the bundle share an id."


class InvalidPqKey(ApiError):
    status = 400
    code = "invalid_pq_key"
    message = "An ML-KEM-768 encapsulation key is not well formed (FIPS 203 check)."


class BadBundleSignature(ApiError):
    status = 400
    code = "bad_bundle_signature"
    message = "A signature in the bundle does not verify under its identity key."


class IdentityMismatch(ApiError):
    status = 403
    code = "identity_mismatch"
    message = "This handle is bound to another identity key."


class UnknownHandle(ApiError):
    status = 404
    code = "unknown_handle"
    message = "No live bundle is published under this handle."


class PrekeyIdInUse(ApiError):
    status = 409
    code = "prekey_id_in_use"
    message = "A one-time prekey with this id is already stored under the handle."


class PrekeyStockFull(ApiError):
    status = 409
    code = "prekey_stock_full"
    message = "The batch would take the stored one-time prekeys above the policy's maximum."


class PublishConflict(ApiError):
    status = 409
    code = "publish_conflict"
    message = "Another publish for this handle happened at the same moment; retry."
