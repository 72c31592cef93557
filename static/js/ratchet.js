// The Double Ratchet with header encryption (docs/protocol.md sections 7 and 8), as in
// Signal's specification section 4, with the same parameters as courier/crypto/ratchet.py.
// Decryption is all-or-nothing: it works on a copy and returns the new state.

import { EncodingError, Reader, concat, readU32, toHex, u8, u16be, u32be, utf8 } from "./encoding.js";
import * as p from "./primitives.js";

export const INFO_ROOT = utf8("courier-v1 ratchet root");
export const INFO_MESSAGE_KEYS = utf8("courier-v1 ratchet message");
export const LABEL_MESSAGE_KEY = utf8("courier-v1 ratchet message-key");
export const LABEL_CHAIN_KEY = utf8("courier-v1 ratchet chain-key");
export const HEADER_LEN = 40;
export const ENCRYPTED_HEADER_LEN = 12 + HEADER_LEN + 16;
export const MESSAGE_OVERHEAD = ENCRYPTED_HEADER_LEN + 16;
export const MAX_SKIPPED_KEYS = 1000;
export const MAX_FORWARD_JUMP = 2000;
const MAX_COUNTER = 2 ** 32 - 1;
const STATE_VERSION = 0x01;

export async function kdfRk(rk, dhOut) {
  const out = await p.hkdf(rk, dhOut, INFO_ROOT, 96);
  return [out.slice(0, 32), out.slice(32, 64), out.slice(64, 96)];
}

// Returns [next chain key, message key].
export async function kdfCk(ck) {
  return [await p.hmacSha256(ck, LABEL_CHAIN_KEY), await p.hmacSha256(ck, LABEL_MESSAGE_KEY)];
}

// Returns [body key, body nonce, header nonce].
export async function messageKeys(mk) {
  const out = await p.hkdf(new Uint8Array(0), mk, INFO_MESSAGE_KEYS, 56);
  return [out.slice(0, 32), out.slice(32, 44), out.slice(44, 56)];
}

export const encodeHeader = (dh, pn, n) => concat(dh, u32be(pn), u32be(n));
export function decodeHeader(h) {
  if (h.length !== HEADER_LEN) throw new EncodingError("bad header length");
  return [h.slice(0, 32), readU32(h, 32), readU32(h, 36)];
}

const skippedKey = (hk, n) => `${toHex(hk)}:${n}`;

export function copyState(s) {
  return { ...s, skipped: new Map(s.skipped) };
}

async function dh(priv, pub) {
  try { return await p.x25519(priv, pub); } catch { throw new p.DecryptionError("refused ratchet public key"); }
}

export async function initInitiator(sk, theirRatchetKey, hka, nhkb, ad, rng = p.systemRandom) {
  const dhsPrivate = await rng(32);
  const [rk, cks, nhks] = await kdfRk(sk, await p.x25519(dhsPrivate, theirRatchetKey));
  return {
    dhs_private: dhsPrivate, dhr: theirRatchetKey, rk, cks, ckr: null, hks: hka, hkr: null,
    nhks, nhkr: nhkb, ns: 0, nr: 0, pn: 0, ad, pending_prekey_header: null, skipped: new Map(),
  };
}

export function initResponder(sk, ratchetPrivate, hka, nhkb, ad) {
  return {
    dhs_private: ratchetPrivate, dhr: null, rk: sk, cks: null, ckr: null, hks: null, hkr: null,
    nhks: nhkb, nhkr: hka, ns: 0, nr: 0, pn: 0, ad, pending_prekey_header: null, skipped: new Map(),
  };
}

// Mutates state; persist it before sending the result.
export async function encrypt(state, plaintext, trace = null) {
  if (state.cks === null || state.hks === null) throw new p.DecryptionError("no sending chain yet: the responder must receive first");
  if (state.ns >= MAX_COUNTER) throw new p.LimitExceeded("sending chain exhausted");
  const [ck, mk] = await kdfCk(state.cks);
  const [bodyKey, bodyNonce, headerNonce] = await messageKeys(mk);
  const header = encodeHeader(await p.x25519Public(state.dhs_private), state.pn, state.ns);
  const encHeader = concat(headerNonce, await p.aeadEncrypt(state.hks, headerNonce, header, state.ad));
  const body = await p.aeadEncrypt(bodyKey, bodyNonce, plaintext, concat(state.ad, encHeader));
  if (trace) {
    trace.push({ chain_key: state.cks, next_chain_key: ck, message_key: mk, body_key: bodyKey, body_nonce: bodyNonce, header_nonce: headerNonce, header_key: state.hks, header, encrypted_header: encHeader, body });
  }
  state.cks = ck;
  state.ns += 1;
  return concat(encHeader, body);
}

async function tryHeader(hk, encHeader, ad) {
  if (hk === null) return null;
  let header;
  try { header = await p.aeadDecrypt(hk, encHeader.slice(0, 12), encHeader.slice(12), ad); } catch { return null; }
  return decodeHeader(header);
}

async function skip(state, until) {
  if (state.ckr === null || state.hkr === null) return;
  if (until - state.nr > MAX_FORWARD_JUMP) throw new p.LimitExceeded("message is too far ahead in its chain");
  while (state.nr < until) {
    const [ck, mk] = await kdfCk(state.ckr);
    state.ckr = ck;
    state.skipped.set(skippedKey(state.hkr, state.nr), { hk: state.hkr, n: state.nr, mk });
    state.nr += 1;
  }
  while (state.skipped.size > MAX_SKIPPED_KEYS) state.skipped.delete(state.skipped.keys().next().value);
}

async function dhRatchet(state, theirKey, rng) {
  state.pn = state.ns;
  state.ns = 0;
  state.nr = 0;
  state.hks = state.nhks;
  state.hkr = state.nhkr;
  state.dhr = theirKey;
  [state.rk, state.ckr, state.nhkr] = await kdfRk(state.rk, await dh(state.dhs_private, theirKey));
  state.dhs_private = await rng(32);
  [state.rk, state.cks, state.nhks] = await kdfRk(state.rk, await dh(state.dhs_private, theirKey));
}

async function openBody(mk, encHeader, body, ad) {
  const [bodyKey, bodyNonce] = await messageKeys(mk);
  return p.aeadDecrypt(bodyKey, bodyNonce, body, concat(ad, encHeader));
}

// Returns [new state, plaintext] or throws; the given state is never modified.
export async function decrypt(state, message, rng = p.systemRandom) {
  if (message.length < MESSAGE_OVERHEAD) throw new p.DecryptionError("message too short");
  const encHeader = message.slice(0, ENCRYPTED_HEADER_LEN);
  const body = message.slice(ENCRYPTED_HEADER_LEN);
  const work = copyState(state);

  const seen = new Set();
  for (const { hk } of work.skipped.values()) {
    const hex = toHex(hk);
    if (seen.has(hex)) continue;
    seen.add(hex);
    const found = await tryHeader(hk, encHeader, work.ad);
    if (found === null) continue;
    const key = skippedKey(hk, found[2]);
    const entry = work.skipped.get(key);
    if (entry !== undefined) {
      work.skipped.delete(key);
      const plaintext = await openBody(entry.mk, encHeader, body, work.ad);
      work.pending_prekey_header = null;
      return [work, plaintext];
    }
    if (work.hkr === null || hex !== toHex(work.hkr)) throw new p.DecryptionError("replayed or evicted message");
    break;
  }

  let found = await tryHeader(work.hkr, encHeader, work.ad);
  if (found !== null) {
    if (found[2] < work.nr) throw new p.DecryptionError("replayed or evicted message");
  } else {
    found = await tryHeader(work.nhkr, encHeader, work.ad);
    if (found === null) throw new p.DecryptionError("header does not decrypt");
    const [theirKey, pn] = found;
    await skip(work, pn);
    await dhRatchet(work, theirKey, rng);
  }
  await skip(work, found[2]);
  const [ck, mk] = await kdfCk(work.ckr);
  work.ckr = ck;
  work.nr += 1;
  const plaintext = await openBody(mk, encHeader, body, work.ad);
  work.pending_prekey_header = null;
  return [work, plaintext];
}

// --- Serialization (section 8) --------------------------------------------------------------

const opt32 = (v) => (v === null ? u8(0) : concat(u8(1), v));
function readOpt32(r) {
  const flag = r.u8();
  if (flag === 0) return null;
  if (flag !== 1) throw new EncodingError("bad presence flag");
  return r.take(32);
}

export function stateToBytes(s) {
  const parts = [u8(STATE_VERSION), s.dhs_private, opt32(s.dhr), s.rk, opt32(s.cks), opt32(s.ckr),
    opt32(s.hks), opt32(s.hkr), s.nhks, s.nhkr, u32be(s.ns), u32be(s.nr), u32be(s.pn), u16be(s.ad.length), s.ad];
  const pending = s.pending_prekey_header;
  parts.push(pending === null ? u8(0) : concat(u8(1), u16be(pending.length), pending));
  parts.push(u32be(s.skipped.size));
  for (const { hk, n, mk } of s.skipped.values()) parts.push(hk, u32be(n), mk);
  return concat(...parts);
}

export function stateFromBytes(data) {
  const r = new Reader(data);
  if (r.u8() !== STATE_VERSION) throw new EncodingError("unknown session state version");
  const s = { dhs_private: r.take(32) };
  s.dhr = readOpt32(r); s.rk = r.take(32); s.cks = readOpt32(r); s.ckr = readOpt32(r);
  s.hks = readOpt32(r); s.hkr = readOpt32(r); s.nhks = r.take(32); s.nhkr = r.take(32);
  s.ns = r.u32(); s.nr = r.u32(); s.pn = r.u32();
  s.ad = r.take(r.u16());
  const flag = r.u8();
  if (flag !== 0 && flag !== 1) throw new EncodingError("bad presence flag");
  s.pending_prekey_header = flag ? r.take(r.u16()) : null;
  s.skipped = new Map();
  const count = r.u32();
  for (let i = 0; i < count; i++) {
    const hk = r.take(32), n = r.u32(), mk = r.take(32);
    s.skipped.set(skippedKey(hk, n), { hk, n, mk });
  }
  r.end();
  return s;
}

// A session: state plus the random source for new ratchet keys.
export class Session {
  constructor(state, rng = p.systemRandom) { this.state = state; this.rng = rng; }
  encrypt(plaintext, trace = null) { return encrypt(this.state, plaintext, trace); }
  async decrypt(message) {
    const [state, plaintext] = await decrypt(this.state, message, this.rng);
    this.state = state;
    return plaintext;
  }
  get canSend() { return this.state.cks !== null; }
  toBytes() { return stateToBytes(this.state); }
  static fromBytes(data, rng = p.systemRandom) { return new Session(stateFromBytes(data), rng); }
}
