// Byte encodings shared by every construction (docs/protocol.md section 1): base64url,
// big-endian integers, canonical JSON, hex, and a bounds-checked reader.

export class EncodingError extends Error {
  constructor(message) { super(message); this.name = "EncodingError"; }
}

const te = new TextEncoder();
const td = new TextDecoder("utf-8", { fatal: true });

export const utf8 = (text) => te.encode(text);
export function fromUtf8(bytes) {
  try { return td.decode(bytes); } catch { throw new EncodingError("not UTF-8"); }
}

export function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

export function equal(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export function toHex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

export function fromHex(hex) {
  if (hex.length % 2 || /[^0-9a-fA-F]/.test(hex)) throw new EncodingError("bad hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

const B64U = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64U_INDEX = new Map([...B64U].map((c, i) => [c, i]));

export function b64uEncode(bytes) {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64U[v >> 18] + B64U[(v >> 12) & 63] + B64U[(v >> 6) & 63] + B64U[v & 63];
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const v = bytes[i] << 16;
    out += B64U[v >> 18] + B64U[(v >> 12) & 63];
  } else if (rest === 2) {
    const v = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out += B64U[v >> 18] + B64U[(v >> 12) & 63] + B64U[(v >> 6) & 63];
  }
  return out;
}

// Strict: no padding, no foreign characters, canonical trailing bits, optional exact length.
export function b64uDecode(text, length = null) {
  if (typeof text !== "string" || text.length % 4 === 1) throw new EncodingError("malformed base64url");
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let o = 0, acc = 0, bits = 0;
  for (const c of text) {
    const v = B64U_INDEX.get(c);
    if (v === undefined) throw new EncodingError("malformed base64url");
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) { bits -= 8; out[o++] = (acc >> bits) & 0xff; acc &= (1 << bits) - 1; }
  }
  if (acc !== 0) throw new EncodingError("non-canonical base64url");
  if (length !== null && o !== length) throw new EncodingError(`expected ${length} bytes, got ${o}`);
  return out.subarray(0, o);
}

export const u8 = (x) => Uint8Array.of(x & 0xff);
export const u16be = (x) => Uint8Array.of((x >>> 8) & 0xff, x & 0xff);
export function u32be(x) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, x >>> 0);
  return out;
}
export function u64be(x) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(x));
  return out;
}
export function readU32(bytes, offset = 0) {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(offset);
}

// Sorted keys, no whitespace, non-ASCII written as itself: the byte form both clients emit.
export function canonicalJson(value) {
  return utf8(canonicalText(value));
}
function canonicalText(value) {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isSafeInteger(value)) throw new EncodingError("only integers");
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return "[" + value.map(canonicalText).join(",") + "]";
  const keys = Object.keys(value).filter((k) => value[k] !== undefined).sort();
  return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonicalText(value[k])).join(",") + "}";
}

export class Reader {
  constructor(data) { this.data = data; this.pos = 0; }
  take(n) {
    if (n < 0 || this.pos + n > this.data.length) throw new EncodingError("truncated");
    const out = this.data.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  u8() { return this.take(1)[0]; }
  u16() { const b = this.take(2); return (b[0] << 8) | b[1]; }
  u32() { return readU32(this.take(4)); }
  rest() { return this.take(this.data.length - this.pos); }
  end() { if (this.pos !== this.data.length) throw new EncodingError("trailing bytes"); }
}
