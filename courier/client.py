"""The Courier client library: contacts, sessions and messages on top of the crypto core.

State lives in an encrypted ``Store`` (``courier/store.py``). Every change runs as a store
transaction (lock, load, change, write), so several processes of one user can share a home
directory, and so the ratchet state is on disk *before* anything it produced leaves the machine
(docs/protocol.md section 7.3): outgoing envelopes are written to an outbox in the same
transaction that advances the session, and sent from there. A crash resends the same bytes; a
session is never rolled back.

Who talks to the server with which token (so the server cannot link things):
- a *directory* session publishes my prekey bundle and reads its counts, and nothing else;
- the *home* (relay) session creates my mailboxes (the intro one and one per contact), opens
  the relay socket and fetches; the server sees which mailboxes one socket subscribes to anyway;
- each contact gets its own session, used only to send to it and upload files for it, so sends
  to two contacts cannot be linked by token, nor a send to the mailbox its replies come to;
- each claim of a bundle uses a throwaway session, ended at once.

First contact (docs/protocol.md section 10): Alice adds Bob's link, claims his bundle, runs
PQXDH, creates a mailbox for Bob's replies and sends a sealed intro carrying ``reply_here`` to
Bob's intro mailbox. Bob accepts the session, remembers its ``(IK, EK)`` so a replayed intro is
recognised (section 6.4), creates a mailbox for Alice and answers ``reply_here`` to hers. From
then on both send plain envelopes to each other's pairwise mailbox.

Receiving is at-least-once on the server side; here an envelope is stored (and its id recorded)
before it is acknowledged, and an envelope id seen before is acknowledged again and dropped.
"""

from __future__ import annotations

import contextlib
import logging
import mimetypes
import os
import random
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from hashlib import sha256
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from courier import api as transport
from courier.api import Api, ApiError, Push, RelaySocket, TransportError, Unauthorized
from courier.crypto import envelope as env
from courier.crypto import files as filecrypt
from courier.crypto import messages as msgs
from courier.crypto import primitives as p
from courier.crypto import safety
from courier.crypto.errors import CryptoError, EncodingError
from courier.crypto.identity import (
    PQ_KIND_LAST_RESORT,
    PQ_KIND_ONE_TIME,
    Bundle,
    Identity,
    OneTimePrekey,
    PrekeySecrets,
    PublicIdentity,
    bundle_to_json,
    make_pq_prekey,
    make_signed_prekey,
    verify_claimed_bundle,
)
from courier.crypto.link import ContactLink, parse_contact_link
from courier.crypto.ratchet import Session
from courier.crypto.sealed import decode_intro, seal_intro_message, unseal
from courier.crypto.session import accept_session, start_session
from courier.store import Store

logger = logging.getLogger("courier")

STATE_VERSION = 1
INITIAL_ONE_TIME_PREKEYS = 20
# Keep a rotated signed prekey's private half this long, for intros already on their way.
RETIRED_PREKEY_GRACE_SECONDS = 14 * 24 * 3600
# Refresh a session a minute before the server would expire it.
SESSION_MARGIN_SECONDS = 60
MAX_BACKOFF_SECONDS = 30.0
PING_SECONDS = 60.0
MAINTAIN_SECONDS = 600.0
FILE_MAX_DOWNLOADS = 2
OUTBOX_LOCK_FILE = "outbox.lock"
# The key of the prekey-directory session among session keys (contact names cannot hold \0).
DIRECTORY = "\0directory"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")

Progress = Callable[[int, int], None]


class ClientError(Exception):
    """A mistake the user can fix (unknown contact, bad link, ...): shown without a traceback."""


class Queued(ClientError):
    """The message is encrypted and saved in the outbox, but the server could not take it now;
    it goes out with the next command (or ``listen``) that reaches the server."""


@dataclass
class Event:
    """Something that happened while receiving, for the command line to print."""

    kind: str  # "message", "file", "timer", "contact", "dropped", "download"
    contact: str
    message: dict[str, Any] = field(default_factory=dict)
    text: str = ""


def _now() -> int:
    return int(time.time())


def _parse_time(value: str) -> int:
    return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())


def _b(text: str) -> bytes:
    return transport.unb64u(text)


def _s(data: bytes) -> str:
    return transport.b64u(data)


def _signer(seed: bytes) -> Callable[[bytes], bytes]:
    return lambda message: p.ed25519_sign(seed, message)


def check_contact_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ClientError(
            "a contact name is 1-40 letters, digits, '.', '_' or '-', starting with a letter"
            " or digit"
        )
    return name


class Courier:
    """One identity's client, bound to a home directory and a passphrase."""

    def __init__(
        self,
        home: Path | str,
        passphrase: str,
        server: str | None = None,
        *,
        downloads: Path | str | None = None,
    ) -> None:
        self.home = Path(home)
        self.store = Store(self.home, passphrase)
        self._server_override = server
        self._api: Api | None = None
        self.downloads = Path(downloads) if downloads else self.home / "downloads"

    # --- setup --------------------------------------------------------------------------------

    @classmethod
    def create(cls, home: Path | str, passphrase: str, server: str) -> Courier:
        """Create an identity, publish its prekeys and create the intro mailbox."""
        client = cls(home, passphrase, server)
        if client.store.exists():
            raise ClientError(f"an identity already exists in {client.home}")
        identity = Identity.generate()
        state: dict[str, Any] = {
            "version": STATE_VERSION,
            "server": Api(server).server,
            "identity": _s(identity.encode()),
            # The handle is random and says nothing about the identity (docs/api/keys.md).
            "handle": _s(os.urandom(16)),
            "prekeys": {
                "signed": {},
                "signed_current": None,
                "signed_since": 0,
                "retired": {},
                "one_time": {},
                "pq_last_resort": {},
                "pq_one_time": {},
                "next_id": 1,
                "published": False,
            },
            "home_session": None,
            "directory_session": None,
            "intro": None,
            "contacts": {},
            "intros_seen": {},
            "seen": {},
            "outbox": [],
            "policy": None,
        }
        client.store.create(state)
        try:
            client.setup_server()
        except BaseException:
            # Half an identity (say the server was unreachable) is worth nothing; remove it so
            # that `init` can simply be run again. Whatever reached the server expires there.
            client.close()
            with contextlib.suppress(FileNotFoundError):
                client.store.path.unlink()
            raise
        return client

    def setup_server(self) -> None:
        """Publish the bundle and create the intro mailbox if not done yet (idempotent)."""
        self._refresh_policy()
        with self.store.transaction() as state:
            if not state["prekeys"]["published"]:
                self._new_signed_prekey(state)
                self._new_last_resort(state)
        if not self._state()["prekeys"]["published"]:
            self._publish(one_time=INITIAL_ONE_TIME_PREKEYS)
        if self._state()["intro"] is None:
            policy = self.policy()
            owner = os.urandom(32)
            ttl = int(policy["mailboxes"]["max_ttl_seconds"])
            answer = self._with_home(
                lambda token: self.api.create_mailbox(token, p.ed25519_public(owner), ttl)
            )
            with self.store.transaction() as state:
                state["intro"] = {
                    "send_id": answer["send_id"],
                    "receive_id": answer["receive_id"],
                    "owner": _s(owner),
                    "key": _s(os.urandom(32)),
                    "expires_at": _parse_time(answer["expires_at"]),
                }

    # --- plumbing -----------------------------------------------------------------------------

    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api(self._server_override or self._state()["server"])
        return self._api

    def close(self) -> None:
        if self._api is not None:
            self._api.close()

    def _state(self) -> dict[str, Any]:
        with self.store.locked():
            state = self.store.load()
        return state

    def _identity(self, state: dict[str, Any]) -> Identity:
        return Identity.decode(_b(state["identity"]))

    def policy(self) -> dict[str, Any]:
        state = self._state()
        if state.get("policy") is None:
            return self._refresh_policy()
        return state["policy"]

    def _refresh_policy(self) -> dict[str, Any]:
        policy = self.api.policy()
        with self.store.transaction() as state:
            state["policy"] = policy
        return policy

    def _buckets(self) -> list[int]:
        return [int(b) for b in self.policy()["envelopes"]["bucket_sizes"]]

    def _session_record(self, state: dict[str, Any], key: str | None) -> Any:
        if key is None:
            return state["home_session"]
        if key == DIRECTORY:
            return state.get("directory_session")
        return state["contacts"][key]["session_api"]

    def _store_session(self, state: dict[str, Any], key: str | None, value: Any) -> None:
        if key is None:
            state["home_session"] = value
        elif key == DIRECTORY:
            state["directory_session"] = value
        elif key in state["contacts"]:
            state["contacts"][key]["session_api"] = value

    def _session_token(self, key: str | None) -> str:
        """A live token of the relay session (key None), the prekey-directory session
        (``DIRECTORY``) or a contact's session (its name)."""
        record = self._session_record(self._state(), key)
        if (
            record is not None
            and _parse_time(record["expires_at"]) > _now() + SESSION_MARGIN_SECONDS
        ):
            return record["token"]
        minted = self.api.mint_session()
        with self.store.transaction() as state:
            self._store_session(
                state, key, {"token": minted.token, "expires_at": minted.expires_at}
            )
        return minted.token

    def _forget_token(self, key: str | None) -> None:
        with self.store.transaction() as state:
            self._store_session(state, key, None)

    def _with_session(self, key: str | None, call: Callable[[str], Any]) -> Any:
        """Run ``call(token)``; on 401 (session expired or purged) mint a new one and retry."""
        try:
            return call(self._session_token(key))
        except Unauthorized:
            self._forget_token(key)
            return call(self._session_token(key))

    def _with_directory(self, call: Callable[[str], Any]) -> Any:
        return self._with_session(DIRECTORY, call)

    def _claim_bundle(self, handle: str) -> dict[str, Any]:
        """Claim with a session used for nothing else and ended at once: the same token
        claiming a handle and later sending to a mailbox would tell the server whose mailbox
        that is."""
        session = self.api.mint_session()
        try:
            return self.api.claim_bundle(session.token, handle)
        finally:
            with contextlib.suppress(TransportError, ApiError):
                self.api.end_session(session.token)

    def _with_home(self, call: Callable[[str], Any]) -> Any:
        return self._with_session(None, call)

    # --- prekeys ------------------------------------------------------------------------------

    def _next_id(self, state: dict[str, Any]) -> int:
        prekeys = state["prekeys"]
        value = prekeys["next_id"]
        prekeys["next_id"] = value + 1
        return value

    def _new_signed_prekey(self, state: dict[str, Any]) -> None:
        prekeys = state["prekeys"]
        old = prekeys["signed_current"]
        if old is not None:
            prekeys["retired"][str(old)] = _now() + RETIRED_PREKEY_GRACE_SECONDS
        new_id = self._next_id(state)
        prekeys["signed"][str(new_id)] = _s(os.urandom(32))
        prekeys["signed_current"] = new_id
        prekeys["signed_since"] = _now()

    def _new_last_resort(self, state: dict[str, Any]) -> None:
        new_id = self._next_id(state)
        state["prekeys"]["pq_last_resort"] = {str(new_id): _s(os.urandom(64))}

    def _publish(self, one_time: int) -> dict[str, Any]:
        """Publish the current signed and last-resort prekeys plus ``one_time`` new one-time
        prekeys of each kind. The new private halves are saved before the upload."""
        with self.store.transaction() as state:
            identity = self._identity(state)
            prekeys = state["prekeys"]
            spk_id = prekeys["signed_current"]
            spk = make_signed_prekey(identity, spk_id, _b(prekeys["signed"][str(spk_id)]))
            ((lr_id, lr_seed),) = prekeys["pq_last_resort"].items()
            last_resort = make_pq_prekey(identity, int(lr_id), _b(lr_seed), PQ_KIND_LAST_RESORT)
            opks, pqopks = [], []
            for _ in range(one_time):
                key_id, private = self._next_id(state), os.urandom(32)
                prekeys["one_time"][str(key_id)] = _s(private)
                opks.append(OneTimePrekey(key_id, p.x25519_public(private)))
                key_id, seed = self._next_id(state), os.urandom(64)
                prekeys["pq_one_time"][str(key_id)] = _s(seed)
                pqopks.append(make_pq_prekey(identity, key_id, seed, PQ_KIND_ONE_TIME))
            bundle = Bundle(identity.public, spk, last_resort, tuple(opks), tuple(pqopks))
            handle = state["handle"]
        signer = _signer(identity.signing_seed)
        counts = self._with_directory(
            lambda token: self.api.publish_bundle(token, handle, bundle_to_json(bundle), signer)
        )
        with self.store.transaction() as state:
            state["prekeys"]["published"] = True
        return counts

    def maintain_prekeys(self) -> dict[str, Any]:
        """Top up one-time prekeys and rotate the signed prekey when the server says so."""
        state = self._state()
        identity = self._identity(state)
        handle = state["handle"]
        signer = _signer(identity.signing_seed)
        counts = self._with_directory(lambda token: self.api.count_prekeys(token, handle, signer))
        policy = self.policy()["prekeys"]
        maximum = int(counts.get("max_one_time_prekeys", policy["max_one_time_prekeys"]))
        batch = int(policy["max_batch"])
        left = min(int(counts["one_time_prekeys"]), int(counts["pq_one_time_prekeys"]))
        rotate = bool(counts.get("signed_prekey_stale"))
        top_up = 0
        if left < min(INITIAL_ONE_TIME_PREKEYS, maximum) // 2:
            top_up = max(0, min(batch, maximum - max(counts["one_time_prekeys"], left)))
        if rotate:
            with self.store.transaction() as state:
                self._new_signed_prekey(state)
        if rotate or top_up:
            counts = self._publish(one_time=top_up)
        with self.store.transaction() as state:
            # Forget signed prekeys whose grace period is over.
            prekeys = state["prekeys"]
            for key_id, until in list(prekeys["retired"].items()):
                if until < _now():
                    prekeys["retired"].pop(key_id)
                    prekeys["signed"].pop(key_id, None)
        return counts

    def _secrets(self, state: dict[str, Any]) -> PrekeySecrets:
        prekeys = state["prekeys"]

        def table(name: str) -> dict[int, bytes]:
            return {int(k): _b(v) for k, v in prekeys[name].items()}

        return PrekeySecrets(
            signed=table("signed"),
            one_time=table("one_time"),
            pq_last_resort=table("pq_last_resort"),
            pq_one_time=table("pq_one_time"),
        )

    def _store_secrets(self, state: dict[str, Any], secrets: PrekeySecrets) -> None:
        prekeys = state["prekeys"]
        prekeys["one_time"] = {str(k): _s(v) for k, v in secrets.one_time.items()}
        prekeys["pq_one_time"] = {str(k): _s(v) for k, v in secrets.pq_one_time.items()}

    # --- link, contacts, safety ---------------------------------------------------------------

    def contact_link(self) -> str:
        state = self._state()
        intro = state["intro"]
        if intro is None:
            raise ClientError("the intro mailbox is not set up yet; is the server reachable?")
        identity = self._identity(state)
        host = urlsplit(state["server"]).netloc
        link = ContactLink(
            host=host,
            handle=state["handle"],
            intro_mailbox=intro["send_id"],
            fingerprint=identity.public.fingerprint,
            intro_key=p.x25519_public(_b(intro["key"])),
        )
        return link.url()

    def whoami(self) -> dict[str, Any]:
        state = self._state()
        identity = self._identity(state)
        return {
            "server": state["server"],
            "fingerprint": identity.public.fingerprint.hex(),
            "contacts": len(state["contacts"]),
        }

    def contacts(self) -> list[dict[str, Any]]:
        state = self._purge_expired()
        out = []
        for name, contact in sorted(state["contacts"].items()):
            if contact.get("pending"):
                continue
            out.append(
                {
                    "name": name,
                    "verified": contact["verified"],
                    "timer": contact["timer"],
                    "connected": contact["their_mailbox"] is not None,
                    "messages": len(contact["messages"]),
                    "fingerprint": PublicIdentity.decode(_b(contact["identity"])).fingerprint.hex()[
                        :16
                    ],
                }
            )
        return out

    def _contact(self, state: dict[str, Any], name: str) -> dict[str, Any]:
        try:
            return state["contacts"][name]
        except KeyError:
            raise ClientError(f"no contact named {name!r} (see `courier contacts`)") from None

    def safety_number(self, name: str) -> tuple[list[str], bytes]:
        state = self._state()
        contact = self._contact(state, name)
        mine = self._identity(state).public.identity_key
        theirs = PublicIdentity.decode(_b(contact["identity"])).identity_key
        return safety.safety_number_groups(mine, theirs), safety.qr_payload(mine, theirs)

    def verify(self, name: str) -> None:
        with self.store.transaction() as state:
            self._contact(state, name)["verified"] = True

    def rename(self, old: str, new: str) -> None:
        check_contact_name(new)
        with self.store.transaction() as state:
            contact = self._contact(state, old)
            if new in state["contacts"]:
                raise ClientError(f"a contact named {new!r} already exists")
            state["contacts"][new] = state["contacts"].pop(old)
            contact["name"] = new
            for key, value in state["intros_seen"].items():
                if value == old:
                    state["intros_seen"][key] = new
            for item in state["outbox"]:
                if item["contact"] == old:
                    item["contact"] = new

    def _new_contact(self, name: str, peer: PublicIdentity, session: Session) -> dict[str, Any]:
        return {
            "name": name,
            "identity": _s(peer.encode()),
            "verified": False,
            "ratchet": _s(session.to_bytes()),
            "mailbox": None,
            "their_mailbox": None,
            "their_intro": None,
            "session_api": None,
            "timer": 0,
            "messages": [],
            "created": _now(),
        }

    def add_contact(self, link_text: str, name: str) -> str:
        """First contact through a link: claim the bundle, PQXDH, send a sealed intro."""
        check_contact_name(name)
        try:
            link = parse_contact_link(link_text.strip())
        except (EncodingError, ValueError) as error:
            raise ClientError(f"this is not a valid contact link: {error}") from None
        state = self._state()
        if name in state["contacts"] and not state["contacts"][name].get("pending"):
            raise ClientError(f"a contact named {name!r} already exists")
        identity = self._identity(state)
        if link.fingerprint == identity.public.fingerprint:
            raise ClientError("this is your own contact link")
        for other, contact in state["contacts"].items():
            if contact.get("pending"):
                continue  # an add that was interrupted; this one takes its place
            if PublicIdentity.decode(_b(contact["identity"])).fingerprint == link.fingerprint:
                raise ClientError(f"this link belongs to your contact {other!r}")
        # A reserved placeholder so the contact's own session can be stored under its name.
        with self.store.transaction() as state:
            state["contacts"][name] = {"session_api": None, "pending": True}
        try:
            claimed = self._claim_bundle(link.handle)
            try:
                bundle = verify_claimed_bundle(claimed, expected_fingerprint=link.fingerprint)
            except CryptoError as error:
                raise ClientError(
                    f"the server returned a bundle that does not match the link: {error}"
                ) from None
            session, _keys = start_session(identity, bundle)
            mailbox = self._create_contact_mailbox(name)
        except BaseException:
            with self.store.transaction() as state:
                if state["contacts"].get(name, {}).get("pending"):
                    del state["contacts"][name]
            raise
        with self.store.transaction() as state:
            contact = self._new_contact(name, bundle.identity, session)
            contact["session_api"] = state["contacts"][name]["session_api"]
            contact["mailbox"] = mailbox
            contact["initiator"] = True
            contact["their_intro"] = {
                "mailbox": link.intro_mailbox,
                "key": _s(link.intro_key),
            }
            state["contacts"][name] = contact
            self._queue(state, name, msgs.ReplyHereMessage(self._mid(), _now(), mailbox["send_id"]))
        self._send_queued()
        return name

    def _create_contact_mailbox(self, name: str) -> dict[str, Any]:
        owner = os.urandom(32)
        ttl = int(self.policy()["mailboxes"]["max_ttl_seconds"])
        # Created on the relay session, which subscribes to it anyway: created on the contact's
        # session, the one that sends to the contact, it would tie the two directions together.
        answer = self._with_home(
            lambda token: self.api.create_mailbox(token, p.ed25519_public(owner), ttl)
        )
        return {
            "send_id": answer["send_id"],
            "receive_id": answer["receive_id"],
            "owner": _s(owner),
            "expires_at": _parse_time(answer["expires_at"]),
        }

    # --- sending ------------------------------------------------------------------------------

    @staticmethod
    def _mid() -> bytes:
        return msgs.new_message_id()

    def _envelope_ttl(self, state: dict[str, Any], contact: dict[str, Any]) -> int:
        maximum = int(state["policy"]["envelopes"]["max_ttl_seconds"])
        timer = int(contact["timer"])
        # A disappearing message must not outlive its timer on the server either.
        return min(maximum, timer) if timer > 0 else maximum

    def _queue(self, state: dict[str, Any], name: str, message: msgs.Message) -> dict[str, Any]:
        """Encrypt ``message`` for ``name`` and put the envelope in the outbox.

        Runs inside a store transaction: the advanced ratchet state and the envelope are written
        together, before anything is sent (docs/protocol.md section 7.3).
        """
        contact = self._contact(state, name)
        session = Session.from_bytes(_b(contact["ratchet"]))
        buckets = [int(b) for b in state["policy"]["envelopes"]["bucket_sizes"]]
        payload = msgs.encode_message(message)
        try:
            if contact["their_mailbox"] is not None:
                envelope = env.seal_message(session, payload, buckets)
                destination = contact["their_mailbox"]
            elif contact["their_intro"] is not None:
                intro = contact["their_intro"]
                envelope = seal_intro_message(session, _b(intro["key"]), payload, buckets)
                destination = intro["mailbox"]
            else:
                raise ClientError(f"{name!r} has not told us where to send yet")
        except EncodingError as error:
            raise ClientError(f"cannot send this message: {error}") from None
        contact["ratchet"] = _s(session.to_bytes())
        record = self._record(contact, message, "out")
        state["outbox"].append(
            {
                "contact": name,
                "mailbox": destination,
                "envelope": _s(envelope),
                "ttl": self._envelope_ttl(state, contact),
                "message_id": _s(message.id),
            }
        )
        return record

    def _record(
        self, contact: dict[str, Any], message: msgs.Message, direction: str
    ) -> dict[str, Any]:
        """Keep a message in the conversation (receipts and reply_here are not shown)."""
        record: dict[str, Any] = {
            "id": _s(message.id),
            "dir": direction,
            "at": _now(),
            "sent_at": message.sent_at,
            "status": "queued" if direction == "out" else "received",
        }
        if isinstance(message, msgs.TextMessage):
            record.update(type="text", body=message.body)
        elif isinstance(message, msgs.FileMessage):
            record.update(
                type="file",
                name=message.name,
                size=message.size,
                mime_type=message.mime_type,
                descriptor=_s(msgs.encode_message(message)),
                path=None,
            )
        elif isinstance(message, msgs.TimerMessage):
            record.update(type="timer", seconds=message.seconds)
        else:
            return record
        timer = int(contact["timer"])
        record["expires_at"] = record["at"] + timer if timer > 0 else None
        contact["messages"].append(record)
        return record

    def flush_outbox(self) -> int:
        """Send what the outbox holds, oldest first; return how many were sent.

        An envelope leaves the outbox only once the server accepted it (201). A mailbox that no
        longer exists drops the envelope; a network error leaves the rest for later.
        """
        # One sender at a time per home: two processes posting the same envelope would make
        # the peer drop the second copy as a replay (harmless, but noise).
        with self.store.locked(OUTBOX_LOCK_FILE):
            return self._flush_outbox()

    def _flush_outbox(self) -> int:
        sent = 0
        while True:
            state = self._state()
            if not state["outbox"]:
                return sent
            item = state["outbox"][0]
            name = item["contact"]
            status = "sent"
            if name not in state["contacts"]:
                status = "dropped"
            else:
                try:
                    self._with_session(
                        name,
                        partial(
                            self.api.send_envelope,
                            send_id=item["mailbox"],
                            envelope=_b(item["envelope"]),
                            ttl=item["ttl"],
                        ),
                    )
                except ApiError as error:
                    if error.status == 429 or error.status >= 500:
                        raise  # transient: the envelope stays first in line
                    # Refused for good (the mailbox is gone, say): a retry cannot help, and
                    # keeping it would hold back every later message.
                    logger.info("an envelope was refused: %s", error.code)
                    status = "failed"
            with self.store.transaction() as state:
                if state["outbox"] and state["outbox"][0]["envelope"] == item["envelope"]:
                    state["outbox"].pop(0)
                contact = state["contacts"].get(name)
                for record in contact["messages"] if contact else []:
                    if record["id"] == item["message_id"]:
                        record["status"] = status
            sent += status == "sent"

    def _send_queued(self) -> None:
        try:
            self.flush_outbox()
        except (TransportError, ApiError) as error:
            raise Queued(
                f"{error}. The message is saved and will be sent by the next courier command"
                " that reaches the server (or by `courier listen`)."
            ) from None

    def send_text(self, name: str, body: str) -> dict[str, Any]:
        if not body:
            raise ClientError("the message is empty")
        self._refresh_policy_if_missing()
        with self.store.transaction() as state:
            record = self._queue(state, name, msgs.TextMessage(self._mid(), _now(), body))
        self._send_queued()
        return record

    def set_timer(self, name: str, seconds: int) -> None:
        if not 0 <= seconds <= msgs.MAX_TIMER_SECONDS:
            raise ClientError(f"the timer is 0 (off) to {msgs.MAX_TIMER_SECONDS} seconds")
        self._refresh_policy_if_missing()
        with self.store.transaction() as state:
            contact = self._contact(state, name)
            # The timer applies from this message on, for both sides (protocol.md section 11).
            contact["timer"] = seconds
            self._queue(state, name, msgs.TimerMessage(self._mid(), _now(), seconds))
        self._send_queued()

    def send_file(self, name: str, path: Path | str, progress: Progress | None = None) -> dict:
        path = Path(path)
        if not path.is_file():
            raise ClientError(f"no such file: {path}")
        policy = self.policy()
        state = self._state()
        self._contact(state, name)
        sizes = [int(s) for s in policy["blobs"]["chunk_sizes"]]
        chunk_size = (
            filecrypt.DEFAULT_CHUNK_SIZE if filecrypt.DEFAULT_CHUNK_SIZE in sizes else sizes[0]
        )
        size = path.stat().st_size
        if size > int(policy["blobs"]["max_bytes"]):
            raise ClientError(
                f"the server takes files of at most {policy['blobs']['max_bytes']} bytes"
            )
        count = filecrypt.chunk_count(size, chunk_size)
        capacity = filecrypt.chunk_capacity(chunk_size)
        key = os.urandom(filecrypt.FILE_KEY_LEN)
        contact = state["contacts"][name]
        ttl = int(contact["timer"]) or None
        if ttl is not None:
            # The blob must not outlive the disappearing timer (the server's minimum is 60 s).
            ttl = max(60, min(ttl, int(policy["blobs"]["max_ttl_seconds"])))
        blob = self._with_session(
            name,
            lambda token: self.api.create_blob(token, chunk_size, count, ttl, FILE_MAX_DOWNLOADS),
        )
        digest = sha256()
        with path.open("rb") as handle:
            for index in range(count):
                data = handle.read(capacity)
                digest.update(data)
                chunk = filecrypt.encrypt_chunk(key, index, data, index == count - 1, chunk_size)
                self.api.put_chunk(blob["blob_id"], blob["upload_capability"], index, chunk)
                if progress:
                    progress(min(size, (index + 1) * capacity), size)
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        message = msgs.FileMessage(
            self._mid(),
            _now(),
            blob_id=blob["blob_id"],
            download_capability=blob["download_capability"],
            key=key,
            digest=digest.digest(),
            size=size,
            chunk_size=chunk_size,
            chunk_count=count,
            name=path.name,
            mime_type=mime,
        )
        with self.store.transaction() as state:
            record = self._queue(state, name, message)
            record["path"] = str(path.resolve())
        self._send_queued()
        return record

    def _refresh_policy_if_missing(self) -> None:
        if self._state().get("policy") is None:
            self._refresh_policy()

    # --- receiving ----------------------------------------------------------------------------

    def _mailboxes(self, state: dict[str, Any]) -> dict[str, tuple[str | None, bytes]]:
        """receive id -> (contact name or None for the intro mailbox, owner seed)."""
        out: dict[str, tuple[str | None, bytes]] = {}
        if state["intro"] is not None:
            out[state["intro"]["receive_id"]] = (None, _b(state["intro"]["owner"]))
        for name, contact in state["contacts"].items():
            if contact.get("pending") or contact["mailbox"] is None:
                continue
            out[contact["mailbox"]["receive_id"]] = (name, _b(contact["mailbox"]["owner"]))
        return out

    def _handle(self, push: Push) -> tuple[list[Event], bool]:
        """Decrypt and store one envelope; return (events, whether to acknowledge it).

        One transaction: the session, the message and the envelope id are written together, and
        only then is the envelope acknowledged.
        """
        envelope_id = _s(push.id)
        events: list[Event] = []
        with self.store.transaction() as state:
            if envelope_id in state["seen"]:
                return [], True
            boxes = self._mailboxes(state)
            owner = boxes.get(_s(push.receive_id))
            if owner is None:
                return [], False
            name = owner[0]
            try:
                if name is None:
                    events = self._open_intro(state, push.envelope)
                else:
                    events = self._open_pairwise(state, name, push.envelope)
            except (CryptoError, ClientError, ValueError) as error:
                # Tampered, replayed, or not for us: nothing changed; drop it for good.
                logger.info("dropped an envelope that does not open: %s", error)
                events = [Event("dropped", name or "?", text=str(error))]
            state["seen"][envelope_id] = max(push.expires_at, _now()) + 3600
        return events, True

    def _open_intro(self, state: dict[str, Any], envelope: bytes) -> list[Event]:
        buckets = [int(b) for b in state["policy"]["envelopes"]["bucket_sizes"]]
        intro = unseal(_b(state["intro"]["key"]), envelope, buckets)
        header, ratchet_message = decode_intro(intro)
        seen_key = _s(header.initiator.identity_key + header.ephemeral_key)
        known = state["intros_seen"].get(seen_key)
        if known is not None and known in state["contacts"]:
            # A session we accepted already (a later intro, or a replay): protocol.md 6.4.
            contact = state["contacts"][known]
            session = Session.from_bytes(_b(contact["ratchet"]))
            plaintext = session.decrypt(ratchet_message)
            contact["ratchet"] = _s(session.to_bytes())
            return self._apply(state, known, plaintext)
        identity = self._identity(state)
        existing = next(
            (
                other
                for other, contact in state["contacts"].items()
                if contact.get("identity") == _s(header.initiator.encode())
            ),
            None,
        )
        if existing is not None:
            contact = state["contacts"][existing]
            started_by_us = contact.get("initiator", False)
            if started_by_us and identity.public.identity_key < header.initiator.identity_key:
                # Both added each other at once: each holds a session it started. The session
                # started by the smaller identity key wins on both sides (the other side accepts
                # our intro and drops its own session), whatever order envelopes arrive in.
                raise ClientError("simultaneous first contact: the session we started is kept")
        secrets = self._secrets(state)
        session, plaintext, keys = accept_session(identity, secrets, header, ratchet_message)
        self._store_secrets(state, secrets)
        peer = keys.their_identity
        if existing is None:
            base = "contact-" + peer.fingerprint.hex()[:8]
            name, n = base, 1
            while name in state["contacts"]:
                n += 1
                name = f"{base}-{n}"
            state["contacts"][name] = self._new_contact(name, peer, session)
            state["intros_seen"][seen_key] = name
            events = [Event("contact", name, text=f"new contact {name}")]
            return events + self._apply(state, name, plaintext)
        # A contact we know started a new session (simultaneous first contact, or it lost its
        # state): it replaces ours, and it needs to learn our mailbox again.
        name = existing
        contact["ratchet"] = _s(session.to_bytes())
        contact["their_intro"] = None
        contact["initiator"] = False
        state["intros_seen"][seen_key] = name
        events = self._apply(state, name, plaintext)
        if contact["mailbox"] is not None:
            reply = msgs.ReplyHereMessage(self._mid(), _now(), contact["mailbox"]["send_id"])
            self._queue(state, name, reply)
            return [Event("reset", name, text=f"{name} started a new session"), *events]
        return [Event("contact", name, text=f"{name} started a new session"), *events]

    def _open_pairwise(self, state: dict[str, Any], name: str, envelope: bytes) -> list[Event]:
        contact = state["contacts"][name]
        buckets = [int(b) for b in state["policy"]["envelopes"]["bucket_sizes"]]
        session = Session.from_bytes(_b(contact["ratchet"]))
        plaintext = env.open_message(session, envelope, buckets)
        contact["ratchet"] = _s(session.to_bytes())
        return self._apply(state, name, plaintext)

    def _apply(self, state: dict[str, Any], name: str, plaintext: bytes) -> list[Event]:
        contact = state["contacts"][name]
        message = msgs.decode_message(plaintext)
        if any(m["id"] == _s(message.id) for m in contact["messages"]):
            return []
        if isinstance(message, msgs.ReplyHereMessage):
            contact["their_mailbox"] = message.mailbox
            contact["their_intro"] = None
            return []
        if isinstance(message, msgs.ReceiptMessage):
            delivered = {_s(i) for i in message.message_ids}
            for record in contact["messages"]:
                if record["dir"] == "out" and record["id"] in delivered:
                    record["status"] = "delivered"
            return []
        if isinstance(message, msgs.TimerMessage):
            contact["timer"] = message.seconds
            record = self._record(contact, message, "in")
            return [Event("timer", name, record)]
        record = self._record(contact, message, "in")
        self._queue_receipt(state, name, message.id)
        kind = "file" if isinstance(message, msgs.FileMessage) else "message"
        return [Event(kind, name, record)]

    def _queue_receipt(self, state: dict[str, Any], name: str, message_id: bytes) -> None:
        """Tell the sender its message arrived (both clients show delivery). Before we have
        answered a new contact, the receipt waits until reply_here has been queued."""
        contact = state["contacts"][name]
        if contact["mailbox"] is None:
            contact.setdefault("pending_receipts", []).append(_s(message_id))
        elif contact["their_mailbox"] is not None or contact["their_intro"] is not None:
            self._queue(state, name, msgs.ReceiptMessage(self._mid(), _now(), (message_id,)))

    def _after_receive(
        self, events: list[Event], download: bool, progress: Progress | None
    ) -> list[Event]:
        """Work that needs the network after a receive: answer new contacts, fetch files."""
        more: list[Event] = []
        if any(e.kind in ("message", "file") for e in events):
            # Receipts; if the server is busy they go out with the next flush.
            with contextlib.suppress(TransportError, ApiError):
                self.flush_outbox()
        for event in events:
            if event.kind == "contact":
                self._answer_new_contact(event.contact)
            if event.kind == "reset":
                self.flush_outbox()
            if event.kind == "file" and download:
                try:
                    path = self.download(event.contact, event.message["id"], progress)
                except (ClientError, ApiError) as error:
                    # The message is stored; the file can be fetched again with `download`.
                    more.append(Event("download_failed", event.contact, event.message, str(error)))
                else:
                    more.append(Event("download", event.contact, event.message, str(path)))
        return more

    def _answer_new_contact(self, name: str) -> None:
        """Give a new contact its own mailbox and tell it with reply_here."""
        state = self._state()
        contact = state["contacts"].get(name)
        if contact is None or contact["mailbox"] is not None:
            return
        mailbox = self._create_contact_mailbox(name)
        with self.store.transaction() as state:
            contact = state["contacts"][name]
            if contact["mailbox"] is not None:
                return
            contact["mailbox"] = mailbox
            self._queue(state, name, msgs.ReplyHereMessage(self._mid(), _now(), mailbox["send_id"]))
            pending = tuple(_b(i) for i in contact.pop("pending_receipts", []))
            for start in range(0, len(pending), 100):
                receipt = msgs.ReceiptMessage(self._mid(), _now(), pending[start : start + 100])
                self._queue(state, name, receipt)
        self.flush_outbox()

    def finish_pending(self) -> None:
        """Complete work a crash interrupted: contacts without a mailbox, unsent envelopes."""
        state = self._state()
        for name, contact in state["contacts"].items():
            if not contact.get("pending") and contact["mailbox"] is None:
                self._answer_new_contact(name)
        self.flush_outbox()

    def receive(self, *, download: bool = True, progress: Progress | None = None) -> list[Event]:
        """Fetch pending envelopes of every mailbox over HTTP (owner-signed), store, ack."""
        self._refresh_policy_if_missing()
        self.finish_pending()
        events: list[Event] = []
        for receive_id, (_name, owner) in self._mailboxes(self._state()).items():
            signer = _signer(owner)
            while True:
                try:
                    answer = self._with_home(
                        partial(self.api.fetch_envelopes, receive_id=receive_id, signer=signer)
                    )
                except ApiError as error:
                    if error.code == "mailbox_not_found":
                        break
                    raise
                acks: list[str] = []
                for item in answer["envelopes"]:
                    push = Push(
                        _b(item["id"]),
                        _b(receive_id),
                        _parse_time(item["expires_at"]),
                        _b(item["envelope"]),
                    )
                    new, ack = self._handle(push)
                    events += new
                    if ack:
                        acks.append(item["id"])
                if acks:
                    self._with_home(
                        partial(
                            self.api.acknowledge, receive_id=receive_id, signer=signer, ids=acks
                        )
                    )
                if not answer["more"] or not acks:
                    break
        events += self._after_receive(events, download, progress)
        self._purge_expired()
        return events

    def listen(
        self,
        on_event: Callable[[Event], None],
        *,
        stop: Callable[[], bool] = lambda: False,
        download: bool = True,
        progress: Progress | None = None,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        """Receive over the relay socket until ``stop()``; reconnect with backoff."""
        backoff = 1.0
        last_maintain = 0.0
        while not stop():
            try:
                self._refresh_policy_if_missing()
                self.finish_pending()
                if time.monotonic() - last_maintain > MAINTAIN_SECONDS:
                    self.maintain()
                    last_maintain = time.monotonic()
                token = self._session_token(None)
                with self.api.relay_socket(token) as socket:
                    subscribed = self._subscribe_all(socket, set())
                    if on_status:
                        on_status("connected")
                    backoff = 1.0
                    self._pump(socket, subscribed, on_event, stop, download, progress)
            except transport.SocketClosed as error:
                if error.code == 4401 or error.reason == "unauthorized":
                    self._forget_token(None)
                if on_status:
                    on_status(f"disconnected: {error}")
            except (TransportError, ApiError) as error:
                if isinstance(error, Unauthorized):
                    self._forget_token(None)
                if on_status:
                    on_status(f"disconnected: {error}")
            if stop():
                return
            # Exponential backoff with jitter, so many clients do not reconnect in lockstep.
            delay = backoff * (0.5 + random.random() / 2)  # noqa: S311 - not a secret
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and not stop():
                time.sleep(0.1)
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _subscribe_all(self, socket: RelaySocket, subscribed: set[str]) -> set[str]:
        boxes = self._mailboxes(self._state())
        todo = [r for r in boxes if r not in subscribed]
        if todo and subscribed:
            socket.refresh_challenge()
        for receive_id in todo:
            socket.subscribe(_b(receive_id), _signer(boxes[receive_id][1]))
            subscribed.add(receive_id)
        return subscribed

    def _pump(
        self,
        socket: RelaySocket,
        subscribed: set[str],
        on_event: Callable[[Event], None],
        stop: Callable[[], bool],
        download: bool,
        progress: Progress | None,
    ) -> None:
        last_frame = time.monotonic()
        last_purge = time.monotonic()
        while not stop():
            got = False
            for push in socket.receive(timeout=0.5):
                got = True
                events, ack = self._handle(push)
                if ack:
                    socket.ack([push.id])
                events += self._after_receive(events, download, progress)
                for event in events:
                    on_event(event)
                if any(e.kind == "contact" for e in events):
                    self._subscribe_all(socket, subscribed)
                last_frame = time.monotonic()
            if not got:
                # A contact added from another process gets a new mailbox: subscribe to it.
                if set(self._mailboxes(self._state())) - subscribed:
                    self._subscribe_all(socket, subscribed)
                if self._state()["outbox"]:
                    self.flush_outbox()
            now = time.monotonic()
            if now - last_frame > PING_SECONDS:
                socket.ping()
                last_frame = now
            if now - last_purge > 1.0:
                for expired in self._purge_expired(report=True):
                    on_event(expired)
                last_purge = now

    # --- files --------------------------------------------------------------------------------

    def download(self, name: str, message_id: str, progress: Progress | None = None) -> Path:
        """Fetch, decrypt and check a received file; save it under the downloads directory."""
        state = self._state()
        contact = self._contact(state, name)
        record = next((m for m in contact["messages"] if m["id"] == message_id), None)
        if record is None or record.get("type") != "file":
            raise ClientError(f"no file message {message_id!r} from {name!r}")
        if record.get("path") and record["dir"] == "in" and Path(record["path"]).exists():
            return Path(record["path"])
        descriptor = msgs.decode_message(_b(record["descriptor"]))
        assert isinstance(descriptor, msgs.FileMessage)
        if descriptor.chunk_count != filecrypt.chunk_count(descriptor.size, descriptor.chunk_size):
            raise ClientError("the file descriptor is inconsistent")
        folder = self.downloads / name
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        capacity = filecrypt.chunk_capacity(descriptor.chunk_size)
        count = descriptor.chunk_count
        digest = sha256()
        fd, tmp = tempfile.mkstemp(prefix=".download-", dir=folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                for index in range(count):
                    chunk = self.api.get_chunk(
                        descriptor.blob_id, descriptor.download_capability, index
                    )
                    last = index == count - 1
                    try:
                        data = filecrypt.decrypt_chunk(
                            descriptor.key, index, chunk, last, descriptor.chunk_size
                        )
                    except CryptoError as error:
                        raise ClientError(f"chunk {index} does not decrypt: {error}") from None
                    if last:
                        tail = descriptor.size - (count - 1) * capacity
                        if tail < 0 or any(data[tail:]):
                            raise ClientError("the last chunk's padding is not zero")
                        data = data[:tail]
                    digest.update(data)
                    handle.write(data)
                    if progress:
                        progress(min(descriptor.size, (index + 1) * capacity), descriptor.size)
                handle.flush()
                os.fsync(handle.fileno())
            if not p.constant_time_equal(digest.digest(), descriptor.digest):
                raise ClientError("the file's digest does not match: refused")
            target = _unique_path(folder, descriptor.name)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        with self.store.transaction() as state:
            for m in state["contacts"][name]["messages"]:
                if m["id"] == message_id:
                    m["path"] = str(target)
        return target

    # --- history, timers, maintenance ---------------------------------------------------------

    def messages(self, name: str) -> list[dict[str, Any]]:
        state = self._purge_expired()
        return list(self._contact(state, name)["messages"])

    def _purge_expired(self, report: bool = False) -> Any:
        """Delete disappearing messages (and received files) whose time is up."""
        now = _now()
        state = self._state()
        due = any(
            m.get("expires_at") is not None and m["expires_at"] <= now
            for c in state["contacts"].values()
            for m in c.get("messages", [])
        )
        stale_seen = any(until < now for until in state["seen"].values())
        if not due and not stale_seen:
            return [] if report else state
        gone: list[Event] = []
        with self.store.transaction() as state:
            for name, contact in state["contacts"].items():
                keep = []
                for m in contact.get("messages", []):
                    if m.get("expires_at") is not None and m["expires_at"] <= now:
                        if m.get("type") == "file" and m["dir"] == "in" and m.get("path"):
                            with contextlib.suppress(OSError):
                                os.unlink(m["path"])
                        gone.append(Event("expired", name, {"id": m["id"]}))
                    else:
                        keep.append(m)
                contact["messages"] = keep
            state["seen"] = {k: v for k, v in state["seen"].items() if v >= now}
        return gone if report else state

    def maintain(self) -> None:
        """Prekeys (top up, rotate) and mailbox lifetimes; cheap enough to run on every start."""
        self._refresh_policy()
        self.maintain_prekeys()
        state = self._state()
        ttl = int(state["policy"]["mailboxes"]["max_ttl_seconds"])
        boxes: list[tuple[str | None, dict[str, Any]]] = []
        if state["intro"] is not None:
            boxes.append((None, state["intro"]))
        boxes += [
            (n, c["mailbox"]) for n, c in state["contacts"].items() if c.get("mailbox") is not None
        ]
        for name, box in boxes:
            if box["expires_at"] - _now() > ttl // 2:
                continue
            signer = _signer(_b(box["owner"]))
            answer = self._with_session(
                name,
                partial(
                    self.api.extend_mailbox,
                    receive_id=box["receive_id"],
                    signer=signer,
                    ttl_seconds=ttl,
                ),
            )
            with self.store.transaction() as state:
                target = state["intro"] if name is None else state["contacts"][name]["mailbox"]
                target["expires_at"] = _parse_time(answer["expires_at"])


def _unique_path(folder: Path, name: str) -> Path:
    """A file name from a peer, made safe: no directories, no hidden files, no overwrite."""
    safe = re.sub(r"[^A-Za-z0-9._ -]", "_", Path(name).name).strip(" .") or "file"
    target = folder / safe
    stem, suffix = target.stem, target.suffix
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{stem} ({n}){suffix}"
    return target


@contextlib.contextmanager
def opened(
    home: Path | str, passphrase: str, server: str | None = None, **kwargs: Any
) -> Iterator[Courier]:
    client = Courier(home, passphrase, server, **kwargs)
    try:
        yield client
    finally:
        client.close()
