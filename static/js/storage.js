// Everything the client keeps lives in IndexedDB, encrypted under a key derived from the
// passphrase (PBKDF2-SHA-256, 600,000 iterations, into a non-extractable AES-256-GCM key).
//
// - "meta": the salt, the iteration count and a check value; nothing secret.
// - "records": JSON documents, each AES-GCM-encrypted with its name as associated data.
// - "keys": private keys wrapped (AES-GCM) under the same key. They are unwrapped at unlock
//   straight into non-extractable CryptoKeys, so their bytes never reach JavaScript again.
//   Keys the protocol must serialize (ratchet keys, the signed prekey that becomes the
//   first ratchet key) are records instead.

import { b64uDecode, b64uEncode, concat, utf8, fromUtf8 } from "./encoding.js";
import { randomBytes } from "./primitives.js";

const DB_NAME = "courier";
const DB_VERSION = 1;
export const PBKDF2_ITERATIONS = 600000;
const CHECK = utf8("courier-v1 vault check");
const subtle = crypto.subtle;

export class WrongPassphrase extends Error {
  constructor() { super("That passphrase does not open this browser's Courier data."); this.name = "WrongPassphrase"; }
}

function request(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function openDb() {
  const req = indexedDB.open(DB_NAME, DB_VERSION);
  req.onupgradeneeded = () => {
    const db = req.result;
    for (const name of ["meta", "records", "keys"]) if (!db.objectStoreNames.contains(name)) db.createObjectStore(name);
  };
  return request(req);
}

async function tx(store, mode, fn) {
  const db = await openDb();
  try {
    const t = db.transaction(store, mode);
    const result = await fn(t.objectStore(store));
    await new Promise((resolve, reject) => { t.oncomplete = resolve; t.onerror = () => reject(t.error); t.onabort = () => reject(t.error); });
    return result;
  } finally {
    db.close();
  }
}

// JSON with Uint8Array values written as {"$b": base64url}.
const replacer = (_k, v) => (v instanceof Uint8Array ? { $b: b64uEncode(v) } : v);
const reviver = (_k, v) => (v && typeof v === "object" && typeof v.$b === "string" && Object.keys(v).length === 1 ? b64uDecode(v.$b) : v);
export const toJson = (value) => JSON.stringify(value, replacer);
export const fromJson = (text) => JSON.parse(text, reviver);

export async function exists() {
  return (await tx("meta", "readonly", (s) => request(s.get("vault")))) !== undefined;
}

async function deriveKey(passphrase, salt, iterations) {
  const base = await subtle.importKey("raw", utf8(passphrase), "PBKDF2", false, ["deriveKey"]);
  return subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, base,
    { name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt", "wrapKey", "unwrapKey"]);
}

async function seal(key, name, plaintext) {
  const iv = randomBytes(12);
  const ct = new Uint8Array(await subtle.encrypt({ name: "AES-GCM", iv, additionalData: utf8(name) }, key, plaintext));
  return { iv, ct };
}

async function open(key, name, record) {
  return new Uint8Array(await subtle.decrypt({ name: "AES-GCM", iv: record.iv, additionalData: utf8(name) }, key, record.ct));
}

// Unwrapping parameters per key kind: format, algorithm, usages.
const KINDS = {
  x25519: ["pkcs8", { name: "X25519" }, ["deriveBits"]],
  ed25519: ["pkcs8", { name: "Ed25519" }, ["sign"]],
  mlkem: ["raw-seed", { name: "ML-KEM-768" }, ["decapsulateBits"]],
};
const PKCS8 = {
  x25519: Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20]),
  ed25519: Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]),
};

export class Vault {
  constructor(key) { this.key = key; }

  static async create(passphrase) {
    const salt = randomBytes(16);
    const key = await deriveKey(passphrase, salt, PBKDF2_ITERATIONS);
    const check = await seal(key, "check", CHECK);
    await tx("meta", "readwrite", (s) => request(s.put({ salt, iterations: PBKDF2_ITERATIONS, check }, "vault")));
    return new Vault(key);
  }

  static async unlock(passphrase) {
    const meta = await tx("meta", "readonly", (s) => request(s.get("vault")));
    if (!meta) throw new Error("nothing to unlock");
    const key = await deriveKey(passphrase, meta.salt, meta.iterations);
    try {
      await open(key, "check", meta.check);
    } catch {
      throw new WrongPassphrase();
    }
    return new Vault(key);
  }

  async put(name, value) {
    const sealed = await seal(this.key, name, utf8(toJson(value)));
    await tx("records", "readwrite", (s) => request(s.put(sealed, name)));
  }

  async get(name) {
    const record = await tx("records", "readonly", (s) => request(s.get(name)));
    return record === undefined ? undefined : fromJson(fromUtf8(await open(this.key, name, record)));
  }

  async delete(name) {
    await tx("records", "readwrite", (s) => request(s.delete(name)));
  }

  async names(prefix) {
    const all = await tx("records", "readonly", (s) => request(s.getAllKeys()));
    return all.filter((k) => k.startsWith(prefix));
  }

  // Store a private key given as bytes; returns it as a non-extractable CryptoKey.
  async putKey(name, kind, bytes) {
    const [format, algorithm, usages] = KINDS[kind];
    const material = format === "pkcs8" ? concat(PKCS8[kind], bytes) : bytes;
    const extractable = await subtle.importKey(format, material, algorithm, true, usages);
    const iv = randomBytes(12);
    const wrapped = new Uint8Array(await subtle.wrapKey(format, extractable, this.key, { name: "AES-GCM", iv, additionalData: utf8(name) }));
    await tx("keys", "readwrite", (s) => request(s.put({ kind, iv, wrapped }, name)));
    return this.unwrap(name, { kind, iv, wrapped });
  }

  async unwrap(name, record) {
    const [format, algorithm, usages] = KINDS[record.kind];
    return subtle.unwrapKey(format, record.wrapped, this.key, { name: "AES-GCM", iv: record.iv, additionalData: utf8(name) }, algorithm, false, usages);
  }

  async getKey(name) {
    const record = await tx("keys", "readonly", (s) => request(s.get(name)));
    return record === undefined ? undefined : this.unwrap(name, record);
  }

  async keyNames(prefix) {
    const all = await tx("keys", "readonly", (s) => request(s.getAllKeys()));
    return all.filter((k) => k.startsWith(prefix));
  }

  async deleteKey(name) {
    await tx("keys", "readwrite", (s) => request(s.delete(name)));
  }
}

// "Delete everything": the whole database, keys and all.
export async function wipe() {
  await request(indexedDB.deleteDatabase(DB_NAME));
}
