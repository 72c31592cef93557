// Starting a ratchet session from PQXDH on either side (docs/protocol.md section 7.1).

import * as p from "./primitives.js";
import * as pqxdh from "./pqxdh.js";
import * as ratchet from "./ratchet.js";

// Initiator: PQXDH against a verified claimed bundle, then RatchetInitAliceHE. The PQXDH
// header stays in the state and goes with every message until the responder answers.
export async function startSession(identity, bundle, rng = p.systemRandom, encapsulate = p.mlkemEncapsulate) {
  const { keys, header } = await pqxdh.initiate(identity, bundle, rng, encapsulate);
  const state = await ratchet.initInitiator(keys.sk, bundle.signedPrekey.key, keys.hka, keys.nhkb, keys.ad, rng);
  state.pending_prekey_header = pqxdh.encodePrekeyHeader(header);
  return { session: new ratchet.Session(state, rng), keys };
}

// Responder: one-time prekeys are consumed only once the first message authenticates.
// The signed prekey private key must be bytes: it becomes the first ratchet key in the state.
export async function acceptSession(identity, secrets, header, firstMessage, rng = p.systemRandom) {
  const keys = await pqxdh.respond(identity, secrets, header);
  const spkPrivate = secrets.signed.get(header.signedPrekeyId);
  const state = ratchet.initResponder(keys.sk, spkPrivate, keys.hka, keys.nhkb, keys.ad);
  const [newState, plaintext] = await ratchet.decrypt(state, firstMessage, rng);
  pqxdh.consumePrekeys(secrets, header);
  return { session: new ratchet.Session(newState, rng), plaintext, keys };
}
