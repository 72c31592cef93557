// PQXDH key agreement (docs/protocol.md section 6): Signal's PQXDH with X25519, SHA-256 and
// ML-KEM-768; DH1 and DH2 use the X25519 identity key, AD = IKa || IKdh_a || IKb || IKdh_b.

import { EncodingError, Reader, concat, u8, u32be, utf8 } from "./encoding.js";
import * as p from "./primitives.js";
import { PQ_KIND_LAST_RESORT, PQ_KIND_ONE_TIME, decodePublicIdentity, encodePublicIdentity, publicIdentity, verifyPublicIdentity } from "./keys.js";

export const INFO_PQXDH = utf8("courier-v1 pqxdh X25519 SHA-256 ML-KEM-768");
export const F = new Uint8Array(32).fill(0xff);
export const SALT = new Uint8Array(32);
export const PREKEY_HEADER_VERSION = 0x01;
export const PREKEY_HEADER_LEN = 1 + 128 + 32 + 4 + 1 + 4 + 1 + 4 + p.MLKEM_CIPHERTEXT_LEN;

export function encodePrekeyHeader(h) {
  return concat(
    u8(PREKEY_HEADER_VERSION), encodePublicIdentity(h.initiator), h.ephemeralKey, u32be(h.signedPrekeyId),
    u8(h.oneTimePrekeyId === null ? 0 : 1), u32be(h.oneTimePrekeyId ?? 0),
    u8(h.pqPrekeyKind), u32be(h.pqPrekeyId), h.kemCiphertext,
  );
}

export function readPrekeyHeader(r) {
  if (r.u8() !== PREKEY_HEADER_VERSION) throw new EncodingError("unknown prekey header version");
  const initiator = decodePublicIdentity(r.take(128));
  const ephemeralKey = r.take(32);
  const signedPrekeyId = r.u32();
  const flag = r.u8(), opkId = r.u32();
  if ((flag !== 0 && flag !== 1) || (flag === 0 && opkId !== 0)) throw new EncodingError("bad one-time prekey flag");
  const kind = r.u8(), pqId = r.u32();
  if (kind !== PQ_KIND_LAST_RESORT && kind !== PQ_KIND_ONE_TIME) throw new EncodingError("bad PQ prekey kind");
  const kemCiphertext = r.take(p.MLKEM_CIPHERTEXT_LEN);
  return { initiator, ephemeralKey, signedPrekeyId, oneTimePrekeyId: flag ? opkId : null, pqPrekeyKind: kind, pqPrekeyId: pqId, kemCiphertext };
}

export function decodePrekeyHeader(data) {
  const r = new Reader(data);
  const h = readPrekeyHeader(r);
  r.end();
  return h;
}

export const associatedData = (a, b) => concat(a.identityKey, a.identityDhKey, b.identityKey, b.identityDhKey);

export async function derive(ikm) {
  const out = await p.hkdf(SALT, ikm, INFO_PQXDH, 96);
  return { sk: out.slice(0, 32), hka: out.slice(32, 64), nhkb: out.slice(64, 96) };
}

// encapsulate(publicKey) -> {ciphertext, sharedSecret}; a seam so vectors can replay a recorded one.
export async function initiate(identity, bundle, rng = p.systemRandom, encapsulate = p.mlkemEncapsulate) {
  const ek = await rng(32);
  const spk = bundle.signedPrekey.key;
  const responder = bundle.identity;
  const dh1 = await p.x25519(identity.dh, spk);
  const dh2 = await p.x25519(ek, responder.identityDhKey);
  const dh3 = await p.x25519(ek, spk);
  const dh4 = bundle.oneTimePrekey ? await p.x25519(ek, bundle.oneTimePrekey.key) : new Uint8Array(0);
  const pq = bundle.pqOneTimePrekey ?? bundle.pqLastResortPrekey;
  const { ciphertext, sharedSecret } = await encapsulate(pq.key);
  if (ciphertext.length !== p.MLKEM_CIPHERTEXT_LEN || sharedSecret.length !== 32) throw new p.InvalidKey("bad KEM output length");
  const ikm = concat(F, dh1, dh2, dh3, dh4, sharedSecret);
  const me = await publicIdentity(identity);
  const header = {
    initiator: me,
    ephemeralKey: await p.x25519Public(ek),
    signedPrekeyId: bundle.signedPrekey.id,
    oneTimePrekeyId: bundle.oneTimePrekey ? bundle.oneTimePrekey.id : null,
    pqPrekeyKind: bundle.pqOneTimePrekey ? PQ_KIND_ONE_TIME : PQ_KIND_LAST_RESORT,
    pqPrekeyId: pq.id,
    kemCiphertext: ciphertext,
  };
  return { keys: { ...(await derive(ikm)), ad: associatedData(me, responder), theirIdentity: responder, ikm }, header };
}

// secrets: {signed, oneTime, pqLastResort, pqOneTime}: Maps from id to private key.
// Pure: call consumePrekeys only once the first message has decrypted.
export async function respond(identity, secrets, header) {
  try { await verifyPublicIdentity(header.initiator); } catch { throw new p.DecryptionError("initiator identity signature does not verify"); }
  const spk = secrets.signed.get(header.signedPrekeyId);
  if (spk === undefined) throw new p.DecryptionError("unknown signed prekey");
  const pqSeed = header.pqPrekeyKind === PQ_KIND_ONE_TIME ? secrets.pqOneTime.get(header.pqPrekeyId) : secrets.pqLastResort.get(header.pqPrekeyId);
  if (pqSeed === undefined) throw new p.DecryptionError("unknown or already used PQ prekey");
  const ek = header.ephemeralKey;
  let dh1, dh2, dh3, dh4 = new Uint8Array(0);
  try {
    dh1 = await p.x25519(spk, header.initiator.identityDhKey);
    dh2 = await p.x25519(identity.dh, ek);
    dh3 = await p.x25519(spk, ek);
    if (header.oneTimePrekeyId !== null) {
      const opk = secrets.oneTime.get(header.oneTimePrekeyId);
      if (opk === undefined) throw new p.DecryptionError("unknown or already used one-time prekey");
      dh4 = await p.x25519(opk, ek);
    }
  } catch (e) {
    if (e instanceof p.DecryptionError) throw e;
    throw new p.DecryptionError("refused initiator key");
  }
  const ss = await p.mlkemDecapsulate(pqSeed, header.kemCiphertext);
  const ikm = concat(F, dh1, dh2, dh3, dh4, ss);
  const ad = associatedData(header.initiator, await publicIdentity(identity));
  return { ...(await derive(ikm)), ad, theirIdentity: header.initiator, ikm };
}

export function consumePrekeys(secrets, header) {
  if (header.oneTimePrekeyId !== null) secrets.oneTime.delete(header.oneTimePrekeyId);
  if (header.pqPrekeyKind === PQ_KIND_ONE_TIME) secrets.pqOneTime.delete(header.pqPrekeyId);
}
