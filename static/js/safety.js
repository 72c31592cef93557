// Safety numbers (docs/protocol.md section 14), modelled on Signal's numeric fingerprints:
// 5200 iterations of SHA-512 per party, 30 digits each, ordered so both parties agree.

import { concat, u16be, utf8 } from "./encoding.js";
import * as p from "./primitives.js";

export const ITERATIONS = 5200;
const STABLE_ID = utf8("courier-v1 safety-number");

export async function partyHash(identityKey) {
  let h = await p.sha512(concat(u16be(0), identityKey, STABLE_ID));
  for (let i = 0; i < ITERATIONS - 1; i++) h = await p.sha512(concat(h, identityKey));
  return h;
}

function digits(h) {
  let out = "";
  for (let i = 0; i < 30; i += 5) {
    let v = 0;
    for (let j = 0; j < 5; j++) v = v * 256 + h[i + j];
    out += String(v % 100000).padStart(5, "0");
  }
  return out;
}

function lessOrEqual(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] < b[i];
  return true;
}

async function ordered(keyA, keyB) {
  const ha = await partyHash(keyA), hb = await partyHash(keyB);
  return lessOrEqual(ha.subarray(0, 32), hb.subarray(0, 32)) ? [ha, hb] : [hb, ha];
}

export async function safetyNumber(keyA, keyB) {
  const [first, second] = await ordered(keyA, keyB);
  return digits(first) + digits(second);
}

export const groups = (number) => number.match(/.{5}/g);

export async function qrPayload(keyA, keyB) {
  const [first, second] = await ordered(keyA, keyB);
  return concat(Uint8Array.of(0x01), first.subarray(0, 32), second.subarray(0, 32));
}
