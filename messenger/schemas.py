"""Field types shared by the apps' API schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, WithJsonSchema

from messenger.codec import b64u_decode


def b64u_bytes(length: int) -> object:
    """A base64url field that must decode to exactly `length` bytes; parsed to bytes."""

    def decode(value: object) -> bytes:
        if not isinstance(value, str):
            raise ValueError("must be a base64url string")
        try:
            return b64u_decode(value, length=length)
        except ValueError as error:
            raise ValueError(f"must be base64url without padding of {length} bytes") from error

    chars = -(-length * 4 // 3)
    return Annotated[
        bytes,
        BeforeValidator(decode),
        WithJsonSchema(
            {
                "type": "string",
                "format": "base64url",
                "minLength": chars,
                "maxLength": chars,
                "description": f"{length} bytes, base64url without padding",
            }
        ),
    ]
