// Padding and envelopes (docs/protocol.md section 9): one version byte, then bytes that look
// random, exactly one of the server's bucket sizes long; the padding is inside the encryption.

import { EncodingError, concat, readU32, u32be, u8 } from "./encoding.js";
import * as p from "./primitives.js";
import * as ratchet from "./ratchet.js";

export const ENVELOPE_VERSION = 0x01;
export const DEFAULT_BUCKETS = [1024, 4096, 16384, 65536];
export const PAD_LENGTH_PREFIX = 4;

export function pad(payload, size) {
  if (payload.length + PAD_LENGTH_PREFIX > size) throw new EncodingError("payload does not fit");
  const out = new Uint8Array(size);
  out.set(u32be(payload.length), 0);
  out.set(payload, PAD_LENGTH_PREFIX);
  return out;
}

export function unpad(padded) {
  if (padded.length < PAD_LENGTH_PREFIX) throw new EncodingError("padded data too short");
  const n = readU32(padded, 0);
  if (n > padded.length - PAD_LENGTH_PREFIX) throw new EncodingError("bad padding length");
  for (let i = PAD_LENGTH_PREFIX + n; i < padded.length; i++) if (padded[i]) throw new EncodingError("non-zero padding");
  return padded.slice(PAD_LENGTH_PREFIX, PAD_LENGTH_PREFIX + n);
}

export function chooseBucket(needed, buckets = DEFAULT_BUCKETS) {
  for (const size of [...buckets].sort((a, b) => a - b)) if (size >= needed) return size;
  throw new EncodingError("payload too large for the largest bucket");
}

export const messageCapacity = (bucket) => bucket - 1 - ratchet.MESSAGE_OVERHEAD - PAD_LENGTH_PREFIX;

// 0x01 || ratchet message of the padded payload, for a pairwise mailbox.
export async function sealMessage(session, payload, buckets = DEFAULT_BUCKETS) {
  const overhead = 1 + ratchet.MESSAGE_OVERHEAD;
  const bucket = chooseBucket(overhead + PAD_LENGTH_PREFIX + payload.length, buckets);
  return concat(u8(ENVELOPE_VERSION), await session.encrypt(pad(payload, bucket - overhead)));
}

export function checkEnvelope(envelope, buckets = DEFAULT_BUCKETS) {
  if (!buckets.includes(envelope.length)) throw new p.DecryptionError("envelope is not of a bucket size");
  if (envelope[0] !== ENVELOPE_VERSION) throw new p.DecryptionError("unknown envelope version");
  return envelope.slice(1);
}

// All-or-nothing, like Session.decrypt; padding is checked before the state is committed.
export async function openMessage(session, envelope, buckets = DEFAULT_BUCKETS) {
  const body = checkEnvelope(envelope, buckets);
  const [state, padded] = await ratchet.decrypt(session.state, body, session.rng);
  let payload;
  try { payload = unpad(padded); } catch { throw new p.DecryptionError("bad padding"); }
  session.state = state;
  return payload;
}
