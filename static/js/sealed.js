// The sealed first message to an intro mailbox (docs/protocol.md section 10).
// envelope = 0x01 || nonce (16) || masked ephemeral key (32) || AES-256-GCM(padded INTRO)
// INTRO = 0x01 || PQXDH prekey header || first ratchet message.

import { EncodingError, Reader, concat, u8, utf8 } from "./encoding.js";
import { DEFAULT_BUCKETS, ENVELOPE_VERSION, checkEnvelope, chooseBucket, pad, unpad } from "./envelope.js";
import * as p from "./primitives.js";
import { readPrekeyHeader } from "./pqxdh.js";
import { MESSAGE_OVERHEAD } from "./ratchet.js";

export const INFO_SEALED = utf8("courier-v1 sealed");
export const INFO_SEALED_MASK = utf8("courier-v1 sealed mask");
export const INTRO_VERSION = 0x01;
export const SEAL_NONCE_LEN = 16;
export const SEAL_OVERHEAD = 1 + SEAL_NONCE_LEN + 32 + 16;

// The ephemeral public key is XORed with a pad only holders of the link can derive, so it
// does not mark the envelope (an X25519 public key is not uniformly random).
const mask = (nonce, introKey) => p.hkdf(nonce, introKey, INFO_SEALED_MASK, 32);
const xor = (a, b) => a.map((x, i) => x ^ b[i]);

async function sealKeys(dh, ephemeralKey, introKey) {
  const out = await p.hkdf(concat(ephemeralKey, introKey), dh, INFO_SEALED, 44);
  return [out.slice(0, 32), out.slice(32, 44)];
}

export async function seal(introKey, intro, buckets = DEFAULT_BUCKETS, rng = p.systemRandom) {
  const bucket = chooseBucket(SEAL_OVERHEAD + 4 + intro.length, buckets);
  const nonce = await rng(SEAL_NONCE_LEN);
  const ephemeralPrivate = await rng(32);
  const ephemeralKey = await p.x25519Public(ephemeralPrivate);
  const dh = await p.x25519(ephemeralPrivate, introKey);
  const [key, aeadNonce] = await sealKeys(dh, ephemeralKey, introKey);
  const m = await mask(nonce, introKey);
  const padded = pad(intro, bucket - SEAL_OVERHEAD);
  const ct = await p.aeadEncrypt(key, aeadNonce, padded, new Uint8Array(0));
  const envelope = concat(u8(ENVELOPE_VERSION), nonce, xor(ephemeralKey, m), ct);
  return { envelope, trace: { nonce, ephemeralPrivate, ephemeralKey, mask: m, sharedSecret: dh, key, aeadNonce, intro, padded } };
}

// introPrivate: bytes or a CryptoKey; introKey: its public key (saves a derivation).
export async function unseal(introPrivate, envelope, buckets = DEFAULT_BUCKETS, introKey = null) {
  const body = checkEnvelope(envelope, buckets);
  const nonce = body.slice(0, SEAL_NONCE_LEN);
  const masked = body.slice(SEAL_NONCE_LEN, SEAL_NONCE_LEN + 32);
  const ct = body.slice(SEAL_NONCE_LEN + 32);
  introKey = introKey ?? await p.x25519Public(introPrivate);
  const ephemeralKey = xor(masked, await mask(nonce, introKey));
  let dh;
  try { dh = await p.x25519(introPrivate, ephemeralKey); } catch { throw new p.DecryptionError("refused ephemeral key"); }
  const [key, aeadNonce] = await sealKeys(dh, ephemeralKey, introKey);
  const padded = await p.aeadDecrypt(key, aeadNonce, ct, new Uint8Array(0));
  try { return unpad(padded); } catch { throw new p.DecryptionError("bad padding"); }
}

export const encodeIntro = (prekeyHeader, ratchetMessage) => concat(u8(INTRO_VERSION), prekeyHeader, ratchetMessage);

export function decodeIntro(intro) {
  const r = new Reader(intro);
  try {
    if (r.u8() !== INTRO_VERSION) throw new EncodingError("unknown intro version");
    const header = readPrekeyHeader(r);
    return { header, message: r.rest() };
  } catch (e) {
    throw new p.DecryptionError("malformed intro");
  }
}

// Initiator, before the first reply: ratchet-encrypt the payload and seal it with the header.
export async function sealIntroMessage(session, introKey, payload, buckets = DEFAULT_BUCKETS, rng = p.systemRandom) {
  const header = session.state.pending_prekey_header;
  if (header === null) throw new EncodingError("the peer has answered: send to its pairwise mailbox instead");
  chooseBucket(SEAL_OVERHEAD + 4 + 1 + header.length + MESSAGE_OVERHEAD + payload.length, buckets);
  const { envelope } = await seal(introKey, encodeIntro(header, await session.encrypt(payload)), buckets, rng);
  return envelope;
}
