"""The client's transport: the server's HTTP API (httpx) and the relay socket (websockets).

Nothing here knows about contacts or the ratchet: it moves opaque bytes, mints anonymous
sessions and signs owner requests with keys it is handed (docs/api.md, docs/api/keys.md,
docs/api/relay.md, docs/api/files.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

# An owner or identity key's signing function: message -> 64-byte Ed25519 signature.
Signer = Callable[[bytes], bytes]

REQUEST_CONTEXT = b"courier-v1 request\x00"
POW_CONTEXT = b"courier-v1 pow\x00"
SUBSCRIBE_CONTEXT = b"courier-v1 relay-subscribe\x00"
# Relay binary frames (docs/api/relay.md): client -> server send, server -> client push.
FRAME_SEND = 0x02
SEND_HEADER = struct.Struct(">BI16sI")
FRAME_PUSH = 0x01
PUSH_HEADER = struct.Struct(">B16s16sQ")

USER_AGENT = "courier-python"
RATE_LIMIT_RETRIES = 3


def _retry_after(response: httpx.Response, attempt: int) -> float:
    try:
        return min(float(response.headers.get("Retry-After", "")), 30.0)
    except ValueError:
        return min(2.0**attempt, 30.0)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TransportError(Exception):
    """The server could not be reached, or the connection broke."""


class ApiError(Exception):
    """The server answered with an error (docs/api.md: one shape, a stable code)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{message} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.message = message


class Unauthorized(ApiError):
    """The session token is unknown or expired: mint a new one."""


def _leading_zero_bits(digest: bytes) -> int:
    count = 0
    for byte in digest:
        if byte == 0:
            count += 8
            continue
        return count + (8 - byte.bit_length())
    return count


def solve_proof_of_work(challenge: bytes, difficulty: int) -> bytes:
    counter = 0
    while True:
        nonce = counter.to_bytes(8, "big")
        digest = hashlib.sha256(POW_CONTEXT + challenge + nonce).digest()
        if _leading_zero_bits(digest) >= difficulty:
            return nonce
        counter += 1


def signed_request_bytes(challenge: bytes, method: str, path: str, body: bytes) -> bytes:
    return b"".join(
        [
            REQUEST_CONTEXT,
            challenge,
            method.upper().encode("ascii"),
            b"\x00",
            path.encode("utf-8"),
            b"\x00",
            hashlib.sha256(body).digest(),
        ]
    )


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: str


@dataclass(frozen=True)
class Push:
    """An envelope the relay pushed over the socket."""

    id: bytes
    receive_id: bytes
    expires_at: int
    envelope: bytes


class Api:
    """The HTTP API of one server."""

    def __init__(self, server: str, timeout: float = 30.0) -> None:
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not an http(s) server URL: {server!r}")
        self.server = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
        self.prefix = parts.path.rstrip("/")
        self.http = httpx.Client(
            base_url=self.server,
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    # --- plumbing -----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        content_type: str | None = None,
        signer: Signer | None = None,
        capability: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        headers: dict[str, str] = {}
        body = b""
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        elif content is not None:
            body = content
            headers["Content-Type"] = content_type or "application/octet-stream"
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if capability is not None:
            headers["Authorization"] = f"Capability {capability}"
        if signer is not None:
            challenge = self.challenge()
            full_path = self.prefix + path
            signature = signer(signed_request_bytes(challenge, method, full_path, body))
            headers["X-Courier-Challenge"] = b64u(challenge)
            headers["X-Courier-Signature"] = b64u(signature)
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                response = self.http.request(
                    method, path, content=body or None, headers=headers, params=params
                )
            except httpx.HTTPError as error:
                raise TransportError(f"cannot reach {self.server}: {error}") from None
            if response.status_code != 429 or attempt == RATE_LIMIT_RETRIES or signer:
                break
            # Rate limited: wait and try again (a signed request needs a new challenge, so
            # it is left to the caller).
            time.sleep(_retry_after(response, attempt))
        if response.status_code >= 400:
            code, message = "http_error", response.reason_phrase
            try:
                detail = response.json()["error"]
                code, message = str(detail["code"]), str(detail["message"])
            except (ValueError, KeyError, TypeError):
                pass
            kind = Unauthorized if response.status_code == 401 else ApiError
            raise kind(response.status_code, code, message)
        return response

    # --- core ---------------------------------------------------------------------------------

    def policy(self) -> dict[str, Any]:
        return self._request("GET", "/api/v1/policy").json()

    def challenge(self) -> bytes:
        answer = self._request("POST", "/api/v1/challenges").json()
        return unb64u(answer["challenge"])

    def mint_session(self) -> Session:
        """A new anonymous session, solving the proof of work when the server asks for one."""
        answer = self._request("POST", "/api/v1/challenges").json()
        difficulty = int(answer.get("pow_difficulty", 0))
        body: dict[str, str] = {}
        if difficulty > 0:
            challenge = unb64u(answer["challenge"])
            body = {
                "challenge": answer["challenge"],
                "nonce": b64u(solve_proof_of_work(challenge, difficulty)),
            }
        session = self._request("POST", "/api/v1/sessions", json_body=body).json()
        return Session(session["token"], session["expires_at"])

    def end_session(self, token: str) -> None:
        self._request("DELETE", "/api/v1/sessions", token=token)

    # --- prekey directory (docs/api/keys.md) --------------------------------------------------

    def publish_bundle(
        self, token: str, handle: str, bundle: dict[str, Any], signer: Signer
    ) -> dict[str, Any]:
        return self._request(
            "PUT", f"/api/v1/keys/{handle}", token=token, json_body=bundle, signer=signer
        ).json()

    def claim_bundle(self, token: str, handle: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/keys/{handle}", token=token).json()

    def count_prekeys(self, token: str, handle: str, signer: Signer) -> dict[str, Any]:
        return self._request(
            "GET", f"/api/v1/keys/{handle}/count", token=token, signer=signer
        ).json()

    # --- relay (docs/api/relay.md) ------------------------------------------------------------

    def create_mailbox(self, token: str, owner_key: bytes, ttl_seconds: int) -> dict[str, Any]:
        body = {"owner_key": b64u(owner_key), "ttl_seconds": ttl_seconds}
        return self._request("POST", "/api/v1/mailboxes", token=token, json_body=body).json()

    def extend_mailbox(
        self, token: str, receive_id: str, signer: Signer, ttl_seconds: int
    ) -> dict[str, Any]:
        return self._request(
            "PATCH",
            f"/api/v1/mailboxes/{receive_id}",
            token=token,
            json_body={"ttl_seconds": ttl_seconds},
            signer=signer,
        ).json()

    def send_envelope(
        self, token: str, send_id: str, envelope: bytes, ttl: int | None = None
    ) -> dict[str, Any]:
        params = {"ttl": ttl} if ttl is not None else None
        return self._request(
            "POST",
            f"/api/v1/mailboxes/{send_id}/envelopes",
            token=token,
            content=envelope,
            params=params,
        ).json()

    def fetch_envelopes(
        self, token: str, receive_id: str, signer: Signer, limit: int = 50
    ) -> dict[str, Any]:
        # The signature covers the path without the query string (docs/api.md).
        return self._request(
            "GET",
            f"/api/v1/mailboxes/{receive_id}/envelopes",
            token=token,
            signer=signer,
            params={"limit": limit},
        ).json()

    def acknowledge(
        self, token: str, receive_id: str, signer: Signer, ids: list[str]
    ) -> dict[str, Any]:
        return self._request(
            "POST",
            f"/api/v1/mailboxes/{receive_id}/acks",
            token=token,
            json_body={"ids": ids},
            signer=signer,
        ).json()

    # --- blobs (docs/api/files.md) ------------------------------------------------------------

    def create_blob(
        self, token: str, chunk_size: int, chunk_count: int, ttl: int | None, max_downloads: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "chunk_size": chunk_size,
            "chunk_count": chunk_count,
            "max_downloads": max_downloads,
        }
        if ttl is not None:
            body["ttl"] = ttl
        return self._request("POST", "/api/v1/blobs", token=token, json_body=body).json()

    def put_chunk(self, blob_id: str, capability: str, index: int, data: bytes) -> dict[str, Any]:
        return self._request(
            "PUT", f"/api/v1/blobs/{blob_id}/chunks/{index}", capability=capability, content=data
        ).json()

    def blob_status(self, blob_id: str, capability: str) -> dict[str, Any]:
        return self._request("GET", f"/api/v1/blobs/{blob_id}", capability=capability).json()

    def get_chunk(self, blob_id: str, capability: str, index: int) -> bytes:
        return self._request(
            "GET", f"/api/v1/blobs/{blob_id}/chunks/{index}", capability=capability
        ).content

    # --- relay socket -------------------------------------------------------------------------

    def relay_socket(self, token: str, timeout: float = 15.0) -> RelaySocket:
        return RelaySocket.open(self.server, token, timeout)


class SocketClosed(TransportError):
    """The relay closed the socket; ``code`` is its close code (docs/api/relay.md)."""

    def __init__(self, message: str, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class RelaySocket:
    """One authenticated relay socket (``/ws/v1/relay``): subscribe, receive pushes, ack."""

    def __init__(self, ws: ClientConnection, challenge: bytes) -> None:
        self.ws = ws
        self.challenge = challenge
        self.pending: list[dict[str, Any]] = []

    @classmethod
    def open(cls, server: str, token: str, timeout: float) -> RelaySocket:
        parts = urlsplit(server)
        scheme = "wss" if parts.scheme == "https" else "ws"
        url = f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/ws/v1/relay"
        origin = f"{parts.scheme}://{parts.netloc}"
        try:
            ws = connect(
                url,
                origin=Origin(origin),
                open_timeout=timeout,
                close_timeout=2,
                max_size=2**20,
                user_agent_header=USER_AGENT,
                legacy=True,
            )
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as error:
            raise TransportError(f"cannot open the relay socket: {error}") from None
        socket = cls(ws, b"")
        # The token goes in the first frame, never in the URL (it would reach logs).
        socket._send_json({"type": "auth", "token": token})
        ready = socket._control(timeout, "ready")
        socket.challenge = unb64u(ready["challenge"])
        return socket

    def close(self) -> None:
        self.ws.close()

    def __enter__(self) -> RelaySocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send_json(self, message: dict[str, Any]) -> None:
        try:
            self.ws.send(json.dumps(message))
        except (ConnectionClosed, OSError) as error:
            raise self._closed(error) from None

    def _closed(self, error: BaseException) -> SocketClosed:
        code = reason = None
        if isinstance(error, ConnectionClosed) and error.rcvd is not None:
            code, reason = error.rcvd.code, error.rcvd.reason
        return SocketClosed(f"relay socket closed ({code})", code, reason or "")

    def _recv(self, timeout: float | None) -> str | bytes | None:
        try:
            return self.ws.recv(timeout=timeout)
        except TimeoutError:
            return None
        except (ConnectionClosed, OSError) as error:
            raise self._closed(error) from None

    def _control(self, timeout: float, *kinds: str) -> dict[str, Any]:
        """Wait for one of the control frames ``kinds``, keeping pushes for ``receive``."""
        while True:
            frame = self._recv(timeout)
            if frame is None:
                raise SocketClosed("the relay did not answer in time")
            if isinstance(frame, bytes):
                self.pending.append({"type": "push", "frame": frame})
                continue
            message = json.loads(frame)
            if message.get("type") == "error":
                raise SocketClosed(
                    f"relay error: {message.get('code')}: {message.get('message')}",
                    None,
                    str(message.get("code")),
                )
            if message.get("type") in kinds:
                return message
            self.pending.append(message)

    def subscribe(self, receive_id: bytes, signer: Signer, timeout: float = 15.0) -> bool:
        """Subscribe with the owner key; False if the mailbox no longer exists."""
        message = {
            "type": "subscribe",
            "receive_id": b64u(receive_id),
            "challenge": b64u(self.challenge),
            "signature": b64u(signer(SUBSCRIBE_CONTEXT + self.challenge + receive_id)),
        }
        self._send_json(message)
        answer = self._control(timeout, "subscribed", "subscribe_refused")
        return answer["type"] == "subscribed"

    def refresh_challenge(self, timeout: float = 15.0) -> None:
        self._send_json({"type": "challenge"})
        self.challenge = unb64u(self._control(timeout, "challenge")["challenge"])

    def ping(self) -> None:
        self._send_json({"type": "ping"})

    def ack(self, ids: list[bytes]) -> None:
        for start in range(0, len(ids), 100):
            self._send_json({"type": "ack", "ids": [b64u(i) for i in ids[start : start + 100]]})

    def receive(self, timeout: float) -> Iterator[Push]:
        """Pushed envelopes that arrive within ``timeout`` seconds (at least those queued)."""
        while self.pending:
            item = self.pending.pop(0)
            if item.get("type") == "push":
                yield _parse_push(item["frame"])
        frame = self._recv(timeout)
        while frame is not None:
            if isinstance(frame, bytes):
                yield _parse_push(frame)
            else:
                message = json.loads(frame)
                if message.get("type") == "error":
                    raise SocketClosed(
                        f"relay error: {message.get('code')}: {message.get('message')}",
                        None,
                        str(message.get("code")),
                    )
            frame = self._recv(0.01)


def _parse_push(frame: bytes) -> Push:
    if len(frame) < PUSH_HEADER.size or frame[0] != FRAME_PUSH:
        raise SocketClosed("unknown binary frame from the relay")
    _, envelope_id, receive_id, expires = PUSH_HEADER.unpack_from(frame)
    return Push(envelope_id, receive_id, expires, frame[PUSH_HEADER.size :])
