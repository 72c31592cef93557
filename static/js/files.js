// File-chunk encryption (docs/protocol.md section 12). Every encrypted chunk is exactly
// chunk_size bytes; nonce = u64be(index) || u32be(last); AD = "courier-v1 file-chunk\0".

import { EncodingError, concat, u32be, u64be, utf8 } from "./encoding.js";
import * as p from "./primitives.js";

export const AD_FILE_CHUNK = utf8("courier-v1 file-chunk\0");
export const DEFAULT_CHUNK_SIZE = 1048576;

export const chunkCapacity = (chunkSize) => chunkSize - p.GCM_TAG_LEN;
export const chunkCount = (size, chunkSize) => Math.max(1, Math.ceil(size / chunkCapacity(chunkSize)));
export const chunkNonce = (index, last) => concat(u64be(index), u32be(last ? 1 : 0));

export async function encryptChunk(key, index, data, last, chunkSize) {
  const capacity = chunkCapacity(chunkSize);
  if (data.length > capacity || (!last && data.length !== capacity)) throw new EncodingError("only the last chunk may be short");
  const padded = new Uint8Array(capacity);
  padded.set(data);
  return p.aeadEncrypt(key, chunkNonce(index, last), padded, AD_FILE_CHUNK);
}

// Returns the chunk's full capacity; the caller trims the last chunk by size.
export async function decryptChunk(key, index, ciphertext, last, chunkSize) {
  if (ciphertext.length !== chunkSize) throw new p.DecryptionError("chunk has the wrong size");
  return p.aeadDecrypt(key, chunkNonce(index, last), ciphertext, AD_FILE_CHUNK);
}

// Whole-file helpers. onChunk(index, ciphertext) lets the caller upload as it goes.
export async function encryptFile(data, chunkSize = DEFAULT_CHUNK_SIZE, rng = p.systemRandom, onChunk = null) {
  const key = await rng(32);
  const capacity = chunkCapacity(chunkSize);
  const count = chunkCount(data.length, chunkSize);
  const chunks = [];
  for (let i = 0; i < count; i++) {
    const c = await encryptChunk(key, i, data.subarray(i * capacity, (i + 1) * capacity), i === count - 1, chunkSize);
    if (onChunk) await onChunk(i, c, count); else chunks.push(c);
  }
  return { key, digest: await p.sha256(data), size: data.length, chunkSize, chunkCount: count, chunks };
}

// getChunk(index) -> ciphertext; checks the size, the tail padding and the digest.
export async function decryptFile(key, getChunk, size, digest, chunkSize, onProgress = null) {
  const count = chunkCount(size, chunkSize);
  const capacity = chunkCapacity(chunkSize);
  const out = new Uint8Array(size);
  for (let i = 0; i < count; i++) {
    const last = i === count - 1;
    const part = await decryptChunk(key, i, await getChunk(i), last, chunkSize);
    if (last) {
      const tail = size - (count - 1) * capacity;
      for (let j = tail; j < part.length; j++) if (part[j]) throw new p.DecryptionError("non-zero padding in the last chunk");
      out.set(part.subarray(0, tail), i * capacity);
    } else {
      out.set(part, i * capacity);
    }
    if (onProgress) onProgress(i + 1, count);
  }
  if (!p.constantTimeEqual(await p.sha256(out), digest)) throw new p.DecryptionError("file digest does not match");
  return out;
}
