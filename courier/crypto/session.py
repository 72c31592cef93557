"""Starting a ratchet session from PQXDH, on either side (docs/protocol.md section 7.1)."""

from __future__ import annotations

from . import pqxdh, ratchet
from .encoding import Random, system_random
from .identity import ClaimedBundle, Identity, PrekeySecrets
from .pqxdh import AgreedKeys, Encapsulate, PrekeyHeader
from .ratchet import Session


def start_session(
    identity: Identity,
    bundle: ClaimedBundle,
    rng: Random = system_random,
    encapsulate: Encapsulate = pqxdh.default_encapsulate,
) -> tuple[Session, AgreedKeys]:
    """Initiator: PQXDH against a verified claimed bundle, then RatchetInitAliceHE.

    The responder's signed prekey is its first ratchet public key, as in Signal. The PQXDH header
    is kept in the state and sent with every message until the responder answers.
    """
    keys, header = pqxdh.initiate(identity, bundle, rng, encapsulate)
    state = ratchet.init_initiator(
        keys.sk, bundle.signed_prekey.key, keys.hka, keys.nhkb, keys.ad, rng
    )
    state.pending_prekey_header = header.encode()
    return Session(state, rng), keys


def accept_session(
    identity: Identity,
    secrets: PrekeySecrets,
    header: PrekeyHeader,
    first_message: bytes,
    rng: Random = system_random,
) -> tuple[Session, bytes, AgreedKeys]:
    """Responder: PQXDH from the header, RatchetInitBobHE, decrypt the first message.

    Only when that message authenticates are the one-time prekeys deleted, so a forged header
    cannot burn them. Returns (session, plaintext, agreed keys).
    """
    keys = pqxdh.respond(identity, secrets, header)
    spk_private = secrets.signed[header.signed_prekey_id]
    state = ratchet.init_responder(keys.sk, spk_private, keys.hka, keys.nhkb, keys.ad)
    new_state, plaintext = ratchet.decrypt(state, first_message, rng)
    pqxdh.consume_prekeys(secrets, header)
    return Session(new_state, rng), plaintext, keys
