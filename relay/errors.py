"""Stable error codes of the relay (documented in docs/api/relay.md).

HTTP answers carry them in the shared shape `{"error": {"code", "message"}}`; the
WebSocket sends the same code in an `error` frame and closes with the matching close
code (`WS_CLOSE_CODES`). Shared codes (`invalid_request`, `unauthorized`,
`bad_signature`, `stale_challenge`, `rate_limited`, `body_too_large`) come from messenger/.
"""

from __future__ import annotations

from messenger.errors import ApiError


class MailboxNotFound(ApiError):
    status = 404
    code = "mailbox_not_found"
    message = "No live mailbox has this id."


class InvalidOwnerKey(ApiError):
    status = 400
    code = "invalid_owner_key"
    message = "owner_key is an Ed25519 public key: 32 bytes in base64url."


class InvalidTtl(ApiError):
    status = 400
    code = "invalid_ttl"
    message = "The ttl is outside the range the policy allows."


class InvalidEnvelopeSize(ApiError):
    status = 400
    code = "invalid_envelope_size"
    message = "An envelope's length must be exactly one of the policy's bucket sizes."


class UnsupportedEnvelopeVersion(ApiError):
    status = 400
    code = "unsupported_envelope_version"
    message = "An envelope's first byte must be the protocol version 0x01."


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"
    message = "Envelopes are sent as application/octet-stream."


class MailboxFull(ApiError):
    status = 409
    code = "mailbox_full"
    message = "The mailbox holds as many envelopes or bytes as its quota allows."


class TooManyIds(ApiError):
    status = 400
    code = "too_many_ids"
    message = "At most 100 envelope ids per acknowledgement."


# WebSocket close codes (4000-4999 are for applications, RFC 6455 section 7.4.2). Each
# protocol error closes the socket after an `error` frame with the same code name, because
# daphne does not forward a close reason.
WS_CLOSE_CODES: dict[str, int] = {
    "bad_frame": 4400,
    "unauthorized": 4401,
    "bad_signature": 4403,
    "auth_timeout": 4408,
    "stale_challenge": 4409,
    "idle_timeout": 4410,
    "frame_too_large": 4413,
    "invalid_envelope": 4415,
    "rate_limited": 4429,
    "too_many_subscriptions": 4431,
    "unavailable": 4503,
}


class SocketError(Exception):
    """A protocol error on the relay socket: the consumer closes with its code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.close_code = WS_CLOSE_CODES[code]
        self.message = message
