// Checked wrappers around the WebCrypto primitives the protocol uses (docs/protocol.md
// section 1). Nothing here implements a primitive: the wrappers fix parameters, turn
// WebCrypto's exceptions into ours, and refuse an all-zero X25519 output.
//
// A private key is either its raw bytes (seed or scalar) or a CryptoKey made by one of the
// import functions below; the stored identity and prekeys are non-extractable CryptoKeys.

import { concat, equal } from "./encoding.js";

const subtle = crypto.subtle;

export class CryptoError extends Error {
  constructor(message) { super(message); this.name = this.constructor.name; }
}
export class InvalidKey extends CryptoError {}
export class InvalidSignature extends CryptoError {}
export class DecryptionError extends CryptoError {}
export class LimitExceeded extends DecryptionError {}

export const GCM_TAG_LEN = 16;
export const MLKEM_PUBLIC_LEN = 1184;
export const MLKEM_CIPHERTEXT_LEN = 1088;

export function randomBytes(n) {
  const out = new Uint8Array(n);
  crypto.getRandomValues(out);
  return out;
}
// The protocol's random source is async so that the vectors' SHA-256 DRBG can stand in for it.
export const systemRandom = async (n) => randomBytes(n);

// PKCS #8 wrappers for a raw 32-byte private key (RFC 8410): WebCrypto imports no raw form.
const PKCS8_X25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]);
const PKCS8_ED25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

const isKey = (k) => typeof CryptoKey !== "undefined" && k instanceof CryptoKey;

function need(bytes, n, what) {
  if (!(bytes instanceof Uint8Array) || bytes.length !== n) throw new InvalidKey(`${what} must be ${n} bytes`);
}

// --- X25519 ---------------------------------------------------------------------------------

export async function importX25519Private(scalar, extractable = false) {
  need(scalar, 32, "X25519 private key");
  return subtle.importKey("pkcs8", concat(PKCS8_X25519, scalar), { name: "X25519" }, extractable, ["deriveBits"]);
}

async function x25519Key(priv) {
  return isKey(priv) ? priv : importX25519Private(priv, false);
}

export async function x25519Public(priv) {
  const key = await x25519Key(priv);
  const pub = await subtle.getPublicKey(key, []);
  return new Uint8Array(await subtle.exportKey("raw", pub));
}

export async function x25519(priv, pub) {
  need(pub, 32, "X25519 public key");
  const key = await x25519Key(priv);
  let shared;
  try {
    const peer = await subtle.importKey("raw", pub, { name: "X25519" }, true, []);
    shared = new Uint8Array(await subtle.deriveBits({ name: "X25519", public: peer }, key, 256));
  } catch {
    // WebCrypto refuses low-order points itself (an all-zero result, RFC 7748 section 6.1).
    throw new InvalidKey("X25519 exchange refused: low-order public key");
  }
  if (equal(shared, new Uint8Array(32))) throw new InvalidKey("X25519 exchange refused: all-zero shared secret");
  return shared;
}

// --- Ed25519 --------------------------------------------------------------------------------

export async function importEd25519Private(seed, extractable = false) {
  need(seed, 32, "Ed25519 seed");
  return subtle.importKey("pkcs8", concat(PKCS8_ED25519, seed), { name: "Ed25519" }, extractable, ["sign"]);
}

async function ed25519Key(priv) {
  return isKey(priv) ? priv : importEd25519Private(priv, false);
}

export async function ed25519Public(priv) {
  const pub = await subtle.getPublicKey(await ed25519Key(priv), ["verify"]);
  return new Uint8Array(await subtle.exportKey("raw", pub));
}

export async function ed25519Sign(priv, message) {
  return new Uint8Array(await subtle.sign({ name: "Ed25519" }, await ed25519Key(priv), message));
}

export async function ed25519Verify(pub, signature, message) {
  if (pub.length !== 32 || signature.length !== 64) throw new InvalidSignature("bad Ed25519 key or signature length");
  let ok = false;
  try {
    const key = await subtle.importKey("raw", pub, { name: "Ed25519" }, true, ["verify"]);
    ok = await subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    ok = false;
  }
  if (!ok) throw new InvalidSignature("Ed25519 signature does not verify");
}

// --- ML-KEM-768 -----------------------------------------------------------------------------

export async function importMlkemPrivate(seed, extractable = false) {
  need(seed, 64, "ML-KEM-768 seed");
  return subtle.importKey("raw-seed", seed, { name: "ML-KEM-768" }, extractable, ["decapsulateBits"]);
}

async function mlkemKey(priv) {
  return isKey(priv) ? priv : importMlkemPrivate(priv, false);
}

export async function mlkemPublic(priv) {
  const pub = await subtle.getPublicKey(await mlkemKey(priv), ["encapsulateBits"]);
  return new Uint8Array(await subtle.exportKey("raw-public", pub));
}

// FIPS 203 encapsulation-key checks (length, every coefficient reduced mod q): WebCrypto
// applies them on import.
export async function mlkemCheckPublic(pub) {
  need(pub, MLKEM_PUBLIC_LEN, "ML-KEM-768 public key");
  try {
    await subtle.importKey("raw-public", pub, { name: "ML-KEM-768" }, true, ["encapsulateBits"]);
  } catch {
    throw new InvalidKey("invalid ML-KEM-768 public key");
  }
}

export async function mlkemEncapsulate(pub) {
  need(pub, MLKEM_PUBLIC_LEN, "ML-KEM-768 public key");
  let key;
  try {
    key = await subtle.importKey("raw-public", pub, { name: "ML-KEM-768" }, true, ["encapsulateBits"]);
  } catch {
    throw new InvalidKey("invalid ML-KEM-768 public key");
  }
  const r = await subtle.encapsulateBits({ name: "ML-KEM-768" }, key);
  return { ciphertext: new Uint8Array(r.ciphertext), sharedSecret: new Uint8Array(r.sharedKey) };
}

export async function mlkemDecapsulate(priv, ciphertext) {
  if (ciphertext.length !== MLKEM_CIPHERTEXT_LEN) throw new DecryptionError("ML-KEM-768 ciphertext must be 1088 bytes");
  const key = await mlkemKey(priv);
  try {
    return new Uint8Array(await subtle.decapsulateBits({ name: "ML-KEM-768" }, key, ciphertext));
  } catch {
    throw new DecryptionError("ML-KEM-768 decapsulation failed");
  }
}

// --- Symmetric ------------------------------------------------------------------------------

async function aesKey(key, usage) {
  if (isKey(key)) return key;
  need(key, 32, "AES-256-GCM key");
  return subtle.importKey("raw", key, { name: "AES-GCM" }, false, [usage]);
}

export async function aeadEncrypt(key, nonce, plaintext, ad) {
  if (nonce.length !== 12) throw new InvalidKey("AES-256-GCM needs a 12-byte nonce");
  const k = await aesKey(key, "encrypt");
  return new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: ad, tagLength: 128 }, k, plaintext));
}

export async function aeadDecrypt(key, nonce, ciphertext, ad) {
  if (nonce.length !== 12) throw new InvalidKey("AES-256-GCM needs a 12-byte nonce");
  if (ciphertext.length < GCM_TAG_LEN) throw new DecryptionError("ciphertext shorter than the tag");
  const k = await aesKey(key, "decrypt");
  try {
    return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: nonce, additionalData: ad, tagLength: 128 }, k, ciphertext));
  } catch {
    throw new DecryptionError("authentication failed");
  }
}

// HKDF-SHA-256. An empty salt is an all-zero HMAC key, which is what RFC 5869 says.
export async function hkdf(salt, ikm, info, length) {
  if (length > 255 * 32) throw new CryptoError("HKDF output too long");
  if (length === 0) return new Uint8Array(0);
  const key = await subtle.importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, key, length * 8));
}

export async function hmacSha256(key, data) {
  const k = await subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle.sign("HMAC", k, data));
}

export const sha256 = async (data) => new Uint8Array(await subtle.digest("SHA-256", data));
export const sha512 = async (data) => new Uint8Array(await subtle.digest("SHA-512", data));
export const constantTimeEqual = equal;
