// Timed in the page by tests/browser/bench_web.py; returns milliseconds and rates.
async () => {
  const p = await import("/static/js/primitives.js");
  const keys = await import("/static/js/keys.js");
  const session = await import("/static/js/session.js");
  const envelope = await import("/static/js/envelope.js");
  const sealed = await import("/static/js/sealed.js");
  const pqxdh = await import("/static/js/pqxdh.js");
  const files = await import("/static/js/files.js");
  const safety = await import("/static/js/safety.js");
  const enc = await import("/static/js/encoding.js");
  const out = {};
  const time = async (fn) => { const t = performance.now(); await fn(); return performance.now() - t; };

  out.pbkdf2_ms = await time(async () => {
    const base = await crypto.subtle.importKey("raw", enc.utf8("a passphrase"), "PBKDF2", false, ["deriveKey"]);
    await crypto.subtle.deriveKey({ name: "PBKDF2", hash: "SHA-256", salt: p.randomBytes(16), iterations: 600000 },
      base, { name: "AES-GCM", length: 256 }, false, ["encrypt"]);
  });
  let alice, bob, bundle, secrets;
  out.identity_ms = await time(async () => {
    bob = await keys.generateIdentity();
    const ids = Array.from({ length: 10 }, (_, i) => i + 2);
    ({ bundle, secrets } = await keys.generateBundle(bob, p.systemRandom, { oneTimeIds: ids, pqOneTimeIds: ids }));
  });
  alice = await keys.generateIdentity();
  const introPrivate = p.randomBytes(32), introKey = await p.x25519Public(introPrivate);
  let sa, sb;
  out.first_contact_ms = await time(async () => {
    const claimed = await keys.verifyClaimedBundle(keys.claimedBundleToJson(keys.claimFromBundle(bundle, 0)));
    ({ session: sa } = await session.startSession(alice, claimed));
    const env = await sealed.sealIntroMessage(sa, introKey, enc.utf8("hello"));
    const { header, message } = sealed.decodeIntro(await sealed.unseal(introPrivate, env));
    ({ session: sb } = await session.acceptSession(bob, secrets, header, message));
  });
  const n = 300;
  const payload = enc.utf8("x".repeat(200));
  out.ratchet_ms = await time(async () => {
    for (let i = 0; i < n; i++) {
      const [from, to] = i % 2 ? [sa, sb] : [sb, sa];
      await envelope.openMessage(to, await envelope.sealMessage(from, payload));
    }
  });
  out.ratchet_per_s = n / (out.ratchet_ms / 1000);
  const data = p.randomBytes(65536);
  const big = new Uint8Array(5 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 65536) big.set(data, i);
  let ef;
  out.file_encrypt_ms = await time(async () => { ef = await files.encryptFile(big, 1048576); });
  out.file_decrypt_ms = await time(async () => {
    await files.decryptFile(ef.key, async (i) => ef.chunks[i], ef.size, ef.digest, 1048576);
  });
  out.safety_ms = await time(async () => {
    await safety.safetyNumber((await keys.publicIdentity(alice)).identityKey, (await keys.publicIdentity(bob)).identityKey);
  });
  return out;
}
