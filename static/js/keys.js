// Identity keys, prekeys and the prekey bundle (docs/protocol.md sections 2 and 3).

import { EncodingError, b64uDecode, b64uEncode, concat, equal, u8, u32be, utf8 } from "./encoding.js";
import * as p from "./primitives.js";

export const CTX_IDENTITY_DH = utf8("courier-v1 identity-dh\0");
export const CTX_SIGNED_PREKEY = utf8("courier-v1 signed-prekey\0");
export const CTX_PQ_PREKEY = utf8("courier-v1 pq-prekey\0");
export const CTX_FINGERPRINT = utf8("courier-v1 fingerprint\0");
export const PQ_KIND_LAST_RESORT = 0x01;
export const PQ_KIND_ONE_TIME = 0x02;
const U32_MAX = 2 ** 32 - 1;

export class InvalidBundle extends p.CryptoError {}

export const identityDhMessage = (key) => concat(CTX_IDENTITY_DH, key);
export const signedPrekeyMessage = (id, key) => concat(CTX_SIGNED_PREKEY, u32be(id), key);
export const pqPrekeyMessage = (kind, id, key) => concat(CTX_PQ_PREKEY, u8(kind), u32be(id), key);
export const fingerprint = (identityKey) => p.sha256(concat(CTX_FINGERPRINT, identityKey));

// --- Identity -------------------------------------------------------------------------------
// identity = {signing, dh}: Ed25519 seed and X25519 scalar, as bytes or CryptoKeys.

export async function generateIdentity(rng = p.systemRandom) {
  return { signing: await rng(32), dh: await rng(32) };
}

export async function publicIdentity(identity) {
  if (identity.public) return identity.public;
  const identityDhKey = await p.x25519Public(identity.dh);
  return {
    identityKey: await p.ed25519Public(identity.signing),
    identityDhKey,
    identityDhSignature: await p.ed25519Sign(identity.signing, identityDhMessage(identityDhKey)),
  };
}

export const encodePublicIdentity = (pub) => concat(pub.identityKey, pub.identityDhKey, pub.identityDhSignature);
export function decodePublicIdentity(data) {
  if (data.length !== 128) throw new EncodingError("public identity must be 128 bytes");
  return { identityKey: data.slice(0, 32), identityDhKey: data.slice(32, 64), identityDhSignature: data.slice(64, 128) };
}
export async function verifyPublicIdentity(pub) {
  await p.ed25519Verify(pub.identityKey, pub.identityDhSignature, identityDhMessage(pub.identityDhKey));
}

// --- Bundle ---------------------------------------------------------------------------------

// Randomness is drawn in the Python order (signed prekey, last-resort PQ, one-time X25519,
// one-time PQ) so the deterministic vectors reproduce.
export async function generateBundle(identity, rng = p.systemRandom, {
  signedPrekeyId = 1, pqLastResortId = 1, oneTimeIds = [], pqOneTimeIds = [],
} = {}) {
  const secrets = { signed: new Map(), oneTime: new Map(), pqLastResort: new Map(), pqOneTime: new Map() };
  const spkPrivate = await rng(32);
  secrets.signed.set(signedPrekeyId, spkPrivate);
  const spkKey = await p.x25519Public(spkPrivate);
  const signedPrekey = { id: signedPrekeyId, key: spkKey, signature: await p.ed25519Sign(identity.signing, signedPrekeyMessage(signedPrekeyId, spkKey)) };
  const lrSeed = await rng(64);
  secrets.pqLastResort.set(pqLastResortId, lrSeed);
  const pqLastResortPrekey = await makePqPrekey(identity, pqLastResortId, lrSeed, PQ_KIND_LAST_RESORT);
  const oneTimePrekeys = [];
  for (const id of oneTimeIds) {
    const priv = await rng(32);
    secrets.oneTime.set(id, priv);
    oneTimePrekeys.push({ id, key: await p.x25519Public(priv) });
  }
  const pqOneTimePrekeys = [];
  for (const id of pqOneTimeIds) {
    const seed = await rng(64);
    secrets.pqOneTime.set(id, seed);
    pqOneTimePrekeys.push(await makePqPrekey(identity, id, seed, PQ_KIND_ONE_TIME));
  }
  const bundle = { identity: await publicIdentity(identity), signedPrekey, pqLastResortPrekey, oneTimePrekeys, pqOneTimePrekeys };
  checkUniqueIds(oneTimePrekeys, [pqLastResortPrekey, ...pqOneTimePrekeys]);
  return { bundle, secrets };
}

export async function makePqPrekey(identity, id, seed, kind) {
  const key = await p.mlkemPublic(seed);
  return { id, key, kind, signature: await p.ed25519Sign(identity.signing, pqPrekeyMessage(kind, id, key)) };
}

function checkUniqueIds(oneTime, pq) {
  if (new Set(oneTime.map((k) => k.id)).size !== oneTime.length) throw new InvalidBundle("duplicate one-time prekey id");
  if (new Set(pq.map((k) => k.id)).size !== pq.length) throw new InvalidBundle("duplicate PQ prekey id");
}

const signedJson = (k) => ({ id: k.id, key: b64uEncode(k.key), signature: b64uEncode(k.signature) });
const oneTimeJson = (k) => ({ id: k.id, key: b64uEncode(k.key) });

function identityJson(pub) {
  return {
    identity_key: b64uEncode(pub.identityKey),
    identity_dh_key: b64uEncode(pub.identityDhKey),
    identity_dh_signature: b64uEncode(pub.identityDhSignature),
  };
}

export function bundleToJson(bundle) {
  return {
    ...identityJson(bundle.identity),
    signed_prekey: signedJson(bundle.signedPrekey),
    pq_last_resort_prekey: signedJson(bundle.pqLastResortPrekey),
    one_time_prekeys: bundle.oneTimePrekeys.map(oneTimeJson),
    pq_one_time_prekeys: bundle.pqOneTimePrekeys.map(signedJson),
  };
}

export function claimedBundleToJson(claimed) {
  return {
    ...identityJson(claimed.identity),
    signed_prekey: signedJson(claimed.signedPrekey),
    pq_last_resort_prekey: signedJson(claimed.pqLastResortPrekey),
    one_time_prekey: claimed.oneTimePrekey ? oneTimeJson(claimed.oneTimePrekey) : null,
    pq_one_time_prekey: claimed.pqOneTimePrekey ? signedJson(claimed.pqOneTimePrekey) : null,
  };
}

// --- Verification -----------------------------------------------------------------------------

function object(value, fields, what) {
  const ok = value !== null && typeof value === "object" && !Array.isArray(value)
    && Object.keys(value).length === fields.length && fields.every((f) => Object.hasOwn(value, f));
  if (!ok) throw new InvalidBundle(`${what}: expected exactly the fields ${[...fields].sort().join(", ")}`);
  return value;
}

function prekeyId(value) {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > U32_MAX) {
    throw new InvalidBundle("prekey id must be an integer in 0..2^32-1");
  }
  return value;
}

function bytes(value, length, what) {
  try { return b64uDecode(value, length); } catch (e) { throw new InvalidBundle(`${what}: ${e.message}`); }
}

async function checked(promise, message) {
  try { await promise; } catch { throw new InvalidBundle(message); }
}

async function parseIdentity(obj) {
  const pub = {
    identityKey: bytes(obj.identity_key, 32, "identity_key"),
    identityDhKey: bytes(obj.identity_dh_key, 32, "identity_dh_key"),
    identityDhSignature: bytes(obj.identity_dh_signature, 64, "identity_dh_signature"),
  };
  await checked(verifyPublicIdentity(pub), "identity_dh_signature does not verify");
  return pub;
}

async function parseSignedPrekey(value, identityKey) {
  const obj = object(value, ["id", "key", "signature"], "signed_prekey");
  const k = { id: prekeyId(obj.id), key: bytes(obj.key, 32, "signed_prekey.key"), signature: bytes(obj.signature, 64, "signed_prekey.signature") };
  await checked(p.ed25519Verify(identityKey, k.signature, signedPrekeyMessage(k.id, k.key)), "signed_prekey signature does not verify");
  return k;
}

async function parsePqPrekey(value, identityKey, kind) {
  const obj = object(value, ["id", "key", "signature"], "pq prekey");
  const k = { id: prekeyId(obj.id), key: bytes(obj.key, p.MLKEM_PUBLIC_LEN, "pq prekey key"), signature: bytes(obj.signature, 64, "pq prekey signature"), kind };
  await checked(p.ed25519Verify(identityKey, k.signature, pqPrekeyMessage(kind, k.id, k.key)), "pq prekey signature does not verify");
  await checked(p.mlkemCheckPublic(k.key), "pq prekey is not a valid ML-KEM-768 key");
  return k;
}

function parseOneTimePrekey(value) {
  const obj = object(value, ["id", "key"], "one_time_prekey");
  return { id: prekeyId(obj.id), key: bytes(obj.key, 32, "one_time_prekey.key") };
}

const PUBLISHED = ["identity_key", "identity_dh_key", "identity_dh_signature", "signed_prekey", "pq_last_resort_prekey", "one_time_prekeys", "pq_one_time_prekeys"];
const CLAIMED = ["identity_key", "identity_dh_key", "identity_dh_signature", "signed_prekey", "pq_last_resort_prekey", "one_time_prekey", "pq_one_time_prekey"];

export async function verifyBundle(value) {
  const obj = object(value, PUBLISHED, "bundle");
  const identity = await parseIdentity(obj);
  const signedPrekey = await parseSignedPrekey(obj.signed_prekey, identity.identityKey);
  const pqLastResortPrekey = await parsePqPrekey(obj.pq_last_resort_prekey, identity.identityKey, PQ_KIND_LAST_RESORT);
  if (!Array.isArray(obj.one_time_prekeys) || !Array.isArray(obj.pq_one_time_prekeys)) throw new InvalidBundle("one-time prekeys must be lists");
  const oneTimePrekeys = obj.one_time_prekeys.map(parseOneTimePrekey);
  const pqOneTimePrekeys = [];
  for (const v of obj.pq_one_time_prekeys) pqOneTimePrekeys.push(await parsePqPrekey(v, identity.identityKey, PQ_KIND_ONE_TIME));
  checkUniqueIds(oneTimePrekeys, [pqLastResortPrekey, ...pqOneTimePrekeys]);
  return { identity, signedPrekey, pqLastResortPrekey, oneTimePrekeys, pqOneTimePrekeys };
}

export async function verifyClaimedBundle(value, expectedFingerprint = null) {
  const obj = object(value, CLAIMED, "claimed bundle");
  const identity = await parseIdentity(obj);
  if (expectedFingerprint !== null && !equal(await fingerprint(identity.identityKey), expectedFingerprint)) {
    throw new InvalidBundle("identity does not match the contact's fingerprint");
  }
  const signedPrekey = await parseSignedPrekey(obj.signed_prekey, identity.identityKey);
  const pqLastResortPrekey = await parsePqPrekey(obj.pq_last_resort_prekey, identity.identityKey, PQ_KIND_LAST_RESORT);
  const oneTimePrekey = obj.one_time_prekey === null ? null : parseOneTimePrekey(obj.one_time_prekey);
  const pqOneTimePrekey = obj.pq_one_time_prekey === null ? null : await parsePqPrekey(obj.pq_one_time_prekey, identity.identityKey, PQ_KIND_ONE_TIME);
  if (pqOneTimePrekey && pqOneTimePrekey.id === pqLastResortPrekey.id) throw new InvalidBundle("duplicate PQ prekey id");
  return { identity, signedPrekey, pqLastResortPrekey, oneTimePrekey, pqOneTimePrekey };
}

// What a claim of the index-th one-time prekeys would return (for tests and vectors).
export function claimFromBundle(bundle, index = 0) {
  return {
    identity: bundle.identity,
    signedPrekey: bundle.signedPrekey,
    pqLastResortPrekey: bundle.pqLastResortPrekey,
    oneTimePrekey: bundle.oneTimePrekeys[index] ?? null,
    pqOneTimePrekey: bundle.pqOneTimePrekeys[index] ?? null,
  };
}
