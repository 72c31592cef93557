// The vectors' deterministic random source (courier/crypto/drbg.py). Test vectors only:
// output = SHA-256(seed || u64be(0)) || SHA-256(seed || u64be(1)) || ... consumed in order.

import { concat, u64be, utf8 } from "./encoding.js";
import { sha256 } from "./primitives.js";

export function deterministicRandom(seed) {
  let counter = 0;
  let buffer = new Uint8Array(0);
  const rng = async (n) => {
    while (buffer.length < n) {
      buffer = concat(buffer, await sha256(concat(seed, u64be(counter))));
      counter += 1;
    }
    const out = buffer.slice(0, n);
    buffer = buffer.slice(n);
    rng.draws.push(out);
    return out;
  };
  rng.draws = [];
  return rng;
}

export async function labelRandom(master, label) {
  return deterministicRandom(await sha256(concat(master, utf8(label))));
}
