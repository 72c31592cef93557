// Run inside a page of the real server by tests/browser/test_vectors.py (page.evaluate): it
// imports the web client's own modules and reproduces tests/vectors/protocol.json byte for byte,
// then checks the Wycheproof vectors the Python core uses. Returns {checked, failures}.
async ({ protocol: V, wycheproof: W }) => {
  const enc = await import("/static/js/encoding.js");
  const p = await import("/static/js/primitives.js");
  const { labelRandom } = await import("/static/js/drbg.js");
  const keys = await import("/static/js/keys.js");
  const pqxdh = await import("/static/js/pqxdh.js");
  const ratchet = await import("/static/js/ratchet.js");
  const session = await import("/static/js/session.js");
  const envelope = await import("/static/js/envelope.js");
  const sealed = await import("/static/js/sealed.js");
  const files = await import("/static/js/files.js");
  const messages = await import("/static/js/messages.js");
  const link = await import("/static/js/link.js");
  const safety = await import("/static/js/safety.js");
  const { toHex: hex, fromHex } = enc;
  const failures = [];
  let checked = 0;
  const check = (name, actual, expected) => {
    checked++;
    const a = actual instanceof Uint8Array ? hex(actual) : JSON.stringify(actual);
    const e = expected instanceof Uint8Array ? hex(expected) : typeof expected === "string" && actual instanceof Uint8Array ? expected : JSON.stringify(expected);
    if (a !== e) failures.push(`${name}: got ${a.slice(0, 80)} expected ${e.slice(0, 80)}`);
  };
  const rejects = async (name, fn) => {
    checked++;
    try { await fn(); failures.push(`${name}: accepted`); } catch (e) { if (!(e instanceof Error)) failures.push(`${name}: ${e}`); }
  };
  const master = fromHex(V.master);
  const rng = (label) => labelRandom(master, label);
  const SENT_AT = 1767225600;

  // --- Identities and bundle ----------------------------------------------------------------
  const ident = async (identity, name) => {
    const pub = await keys.publicIdentity(identity);
    const v = V.identities[name];
    check(`${name}.signing_seed`, identity.signing, v.signing_seed);
    check(`${name}.dh_private`, identity.dh, v.dh_private);
    check(`${name}.identity_key`, pub.identityKey, v.identity_key);
    check(`${name}.identity_dh_key`, pub.identityDhKey, v.identity_dh_key);
    check(`${name}.identity_dh_signature`, pub.identityDhSignature, v.identity_dh_signature);
    check(`${name}.fingerprint`, await keys.fingerprint(pub.identityKey), v.fingerprint);
  };
  const alice = await keys.generateIdentity(await rng("alice identity"));
  const bob = await keys.generateIdentity(await rng("bob identity"));
  await ident(alice, "alice");
  await ident(bob, "bob");
  const { bundle, secrets } = await keys.generateBundle(bob, await rng("bob prekeys"), { signedPrekeyId: 1, pqLastResortId: 1, oneTimeIds: [2], pqOneTimeIds: [3] });
  check("bundle.published", keys.bundleToJson(bundle), V.bundle.published);
  const claimedJson = keys.claimedBundleToJson(keys.claimFromBundle(bundle, 0));
  check("bundle.claimed", claimedJson, V.bundle.claimed);
  check("bundle.secrets.signed", secrets.signed.get(1), V.bundle.secrets.signed_prekey["1"]);
  check("bundle.secrets.pq_one_time", secrets.pqOneTime.get(3), V.bundle.secrets.pq_one_time_prekeys["3"]);
  await keys.verifyBundle(V.bundle.published);
  const bobFp = await keys.fingerprint((await keys.publicIdentity(bob)).identityKey);
  const claimed = await keys.verifyClaimedBundle(V.bundle.claimed, bobFp);
  await rejects("claimed bundle with a foreign fingerprint", () => keys.verifyClaimedBundle(V.bundle.claimed, new Uint8Array(32)));
  const tampered = structuredClone(V.bundle.published);
  tampered.signed_prekey.id = 9;
  await rejects("bundle with a re-numbered signed prekey", () => keys.verifyBundle(tampered));
  await rejects("bundle with an extra field", () => keys.verifyBundle({ ...V.bundle.published, extra: 1 }));
  await rejects("bundle with a boolean id", () => keys.verifyBundle({ ...V.bundle.published, signed_prekey: { ...V.bundle.published.signed_prekey, id: true } }));
  await rejects("bundle with padded base64url", () => keys.verifyBundle({ ...V.bundle.published, identity_key: V.bundle.published.identity_key + "=" }));

  // --- PQXDH ----------------------------------------------------------------------------------
  const ct = fromHex(V.pqxdh.kem_ciphertext), ss = fromHex(V.pqxdh.kem_shared_secret);
  check("kem decapsulation", await p.mlkemDecapsulate(secrets.pqOneTime.get(3), ct), ss);
  const arng = await rng("alice session");
  const brng = await rng("bob session");
  const { session: sa, keys: agreed } = await session.startSession(alice, claimed, arng, async () => ({ ciphertext: ct, sharedSecret: ss }));
  const X = V.pqxdh;
  check("pqxdh.ek", arng.draws[0], X.initiator_ephemeral_private);
  check("pqxdh.ikm", agreed.ikm, X.ikm);
  check("pqxdh.sk", agreed.sk, X.sk);
  check("pqxdh.hka", agreed.hka, X.hka);
  check("pqxdh.nhkb", agreed.nhkb, X.nhkb);
  check("pqxdh.ad", agreed.ad, X.ad);
  check("pqxdh.prekey_header", sa.state.pending_prekey_header, X.prekey_header);
  check("pqxdh.initiator_state", sa.toBytes(), X.initiator_state.serialized);

  // --- The conversation ------------------------------------------------------------------------
  const steps = V.ratchet.steps;
  let si = 0;
  const sent = {};
  const mrng = await rng("message ids");
  const text = async (body) => messages.encodeMessage({ type: "text", id: await messages.newMessageId(mrng), sent_at: SENT_AT, body });
  const send = async (name, s, plaintext) => {
    const trace = [];
    const msg = await s.encrypt(plaintext, trace);
    sent[name] = plaintext;
    const step = steps[si++];
    check(`${step.step}.plaintext`, plaintext, step.plaintext);
    check(`${step.step}.message`, msg, step.message);
    for (const [k, v] of Object.entries(step.keys)) check(`${step.step}.keys.${k}`, trace[0][k], v);
    check(`${step.step}.sender_state`, s.toBytes(), step.sender_state.serialized);
    return msg;
  };
  const receive = async (name, s, msg) => {
    check(`${name} decrypts`, await s.decrypt(msg), sent[name]);
    const step = steps[si++];
    check(`${step.step}.receiver_state`, s.toBytes(), step.receiver_state.serialized);
  };
  const replyHere = messages.encodeMessage({ type: "reply_here", id: await messages.newMessageId(mrng), sent_at: SENT_AT, mailbox: "mbx_alice_pairwise" });
  const a0 = await send("a0", sa, replyHere);
  const a1 = await send("a1", sa, await text("first"));
  const a2 = await send("a2", sa, await text("second, delivered before the first"));
  const irng = await rng("intro key");
  const introPrivate = await irng(32);
  const introKey = await p.x25519Public(introPrivate);
  const S = V.sealed;
  check("sealed.intro_key", introKey, S.intro_key);
  const { envelope: sealedEnv, trace: st } = await sealed.seal(introKey, sealed.encodeIntro(sa.state.pending_prekey_header, a0), envelope.DEFAULT_BUCKETS, await rng("seal"));
  for (const [k, name] of [["nonce", "nonce"], ["ephemeralKey", "ephemeral_key"], ["mask", "mask"], ["sharedSecret", "shared_secret"], ["key", "key"], ["aeadNonce", "aead_nonce"], ["intro", "intro"], ["padded", "padded"]]) {
    check(`sealed.${name}`, st[k], S[name]);
  }
  check("sealed.envelope", sealedEnv, S.envelope);
  // The responder holds its intro key and prekeys as non-extractable CryptoKeys, as the app does.
  const introCryptoKey = await p.importX25519Private(introPrivate);
  const { header, message: first } = sealed.decodeIntro(await sealed.unseal(introCryptoKey, sealedEnv));
  const bobKeys = { signing: await p.importEd25519Private(bob.signing), dh: await p.importX25519Private(bob.dh) };
  const bobSecrets = {
    signed: secrets.signed,
    oneTime: new Map([[2, await p.importX25519Private(secrets.oneTime.get(2))]]),
    pqLastResort: new Map([[1, await p.importMlkemPrivate(secrets.pqLastResort.get(1))]]),
    pqOneTime: new Map([[3, await p.importMlkemPrivate(secrets.pqOneTime.get(3))]]),
  };
  const accepted = await session.acceptSession(bobKeys, bobSecrets, header, first, brng);
  const sb = accepted.session;
  check("a0 decrypts", accepted.plaintext, replyHere);
  check("one-time prekeys consumed", [bobSecrets.oneTime.size, bobSecrets.pqOneTime.size], [0, 0]);
  let step = steps[si++];
  check(`${step.step}.new_ratchet_private`, brng.draws[0], step.new_ratchet_private);
  check(`${step.step}.receiver_state`, sb.toBytes(), step.receiver_state.serialized);
  await receive("a2", sb, a2);
  const b0Payload = await text("reply from bob");
  const padded = envelope.pad(b0Payload, envelope.messageCapacity(1024) + envelope.PAD_LENGTH_PREFIX);
  const trace = [];
  const b0 = enc.concat(Uint8Array.of(1), await sb.encrypt(padded, trace));
  step = steps[si++];
  check(`${step.step}.message`, b0, step.message);
  check(`${step.step}.sender_state`, sb.toBytes(), step.sender_state.serialized);
  check("envelope.envelope", b0, V.envelope.envelope);
  check("envelope.padded", padded, V.envelope.padded);
  // A tampered envelope changes nothing (all-or-nothing), then the real one opens.
  const before = sa.toBytes();
  const bad = b0.slice(); bad[500] ^= 1;
  await rejects("tampered envelope", () => envelope.openMessage(new ratchet.Session(sa.state, p.systemRandom), bad));
  check("state unchanged after a tampered envelope", sa.toBytes(), before);
  check("b0 opens", await envelope.openMessage(sa, b0), b0Payload);
  step = steps[si++];
  check(`${step.step}.receiver_state`, sa.toBytes(), step.receiver_state.serialized);
  await receive("a1", sb, a1);
  await rejects("replayed a1", () => sb.decrypt(a1));
  const a3 = await send("a3", sa, await text("after the ratchet turn"));
  await receive("a3", sb, a3);
  check("all steps covered", si, steps.length);
  const roundTrip = ratchet.stateToBytes(ratchet.stateFromBytes(sb.toBytes()));
  check("state serialization round trip", roundTrip, sb.toBytes());

  // --- Files ------------------------------------------------------------------------------------
  const F = V.files;
  const data = Uint8Array.from({ length: 150 }, (_, i) => i);
  const ef = await files.encryptFile(data, F.chunk_size, await rng("file"));
  check("files.key", ef.key, F.key);
  check("files.digest", ef.digest, F.digest);
  F.chunks.forEach((c, i) => check(`files.chunk${i}`, ef.chunks[i], c.ciphertext));
  check("files.decrypt", await files.decryptFile(ef.key, async (i) => ef.chunks[i], ef.size, ef.digest, F.chunk_size), data);
  await rejects("file chunks swapped", () => files.decryptFile(ef.key, async (i) => ef.chunks[i ^ 1], ef.size, ef.digest, F.chunk_size));
  const descriptor = messages.encodeMessage({
    type: "file", id: await messages.newMessageId(mrng), sent_at: SENT_AT, blob_id: "blob_example", download_capability: "cap_example",
    key: ef.key, digest: ef.digest, size: ef.size, chunk_size: ef.chunkSize, chunk_count: ef.chunkCount, name: "example.bin", mime_type: "application/octet-stream",
  });
  check("files.descriptor", descriptor, F.descriptor);

  // --- Payloads, safety number, link ----------------------------------------------------------
  const M = V.messages;
  check("messages.text", await text("hello"), M.text);
  check("messages.timer", messages.encodeMessage({ type: "timer", id: await messages.newMessageId(mrng), sent_at: SENT_AT, seconds: 86400 }), M.timer);
  check("messages.receipt", messages.encodeMessage({ type: "receipt", id: await messages.newMessageId(mrng), sent_at: SENT_AT, message_ids: [new Uint8Array(16)] }), M.receipt);
  check("messages.reply_here", replyHere, M.reply_here);
  for (const [name, h] of Object.entries(M)) check(`messages.${name} round trip`, messages.encodeMessage(messages.decodeMessage(fromHex(h))), h);
  await rejects("message with a boolean sent_at", async () => messages.decodeMessage(enc.utf8('{"v":1,"type":"text","id":"AAAAAAAAAAAAAAAAAAAAAA","sent_at":true,"body":""}')));
  const SF = V.safety;
  const ka = fromHex(SF.identity_key_a), kb = fromHex(SF.identity_key_b);
  check("safety.hash_a", await safety.partyHash(ka), SF.hash_a);
  check("safety.digits", await safety.safetyNumber(ka, kb), SF.digits);
  check("safety.digits symmetric", await safety.safetyNumber(kb, ka), SF.digits);
  check("safety.groups", safety.groups(SF.digits), SF.groups);
  check("safety.qr_payload", await safety.qrPayload(kb, ka), SF.qr_payload);
  const L = V.link;
  const lk = { host: L.host, handle: L.handle, introMailbox: L.intro_mailbox, fingerprint: fromHex(L.fingerprint), introKey: fromHex(L.intro_key) };
  check("link.payload", link.linkPayload(lk), L.payload);
  check("link.url", link.linkUrl(lk), L.url);
  const parsed = link.parseContactLink(L.url);
  check("link.parse", [parsed.host, parsed.handle, parsed.introMailbox, hex(parsed.fingerprint), hex(parsed.introKey)], [L.host, L.handle, L.intro_mailbox, L.fingerprint, L.intro_key]);
  await rejects("http contact link", async () => link.parseContactLink(L.url.replace("https", "http")));
  await rejects("base64url with padding", async () => enc.b64uDecode("AA=="));
  await rejects("non-canonical base64url", async () => enc.b64uDecode("AB"));

  // --- Wycheproof ---------------------------------------------------------------------------------
  const cases = (name, filter = () => true) => W[name].testGroups.filter(filter).flatMap((g) => g.tests.map((t) => [g, t]));
  let zeroRefused = 0;
  for (const [, t] of cases("x25519")) {
    const priv = fromHex(t.private), pub = fromHex(t.public);
    if (t.flags.includes("ZeroSharedSecret")) {
      zeroRefused++;
      await rejects(`x25519 ${t.tcId}`, () => p.x25519(priv, pub));
    } else {
      check(`x25519 ${t.tcId}`, await p.x25519(priv, pub).catch((e) => String(e)), t.shared);
    }
  }
  check("x25519 zero shared secrets refused", zeroRefused >= 30, true);
  const ed = cases("ed25519");
  check("ed25519 case count", ed.length, 151);
  for (const [g, t] of ed) {
    let accepted = true;
    try { await p.ed25519Verify(fromHex(g.publicKey.pk), fromHex(t.sig), fromHex(t.msg)); } catch { accepted = false; }
    check(`ed25519 ${t.tcId}`, accepted, t.result === "valid");
  }
  for (const [, t] of cases("aes_gcm", (g) => g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128)) {
    const key = fromHex(t.key), iv = fromHex(t.iv), aad = fromHex(t.aad), msg = fromHex(t.msg), ctTag = fromHex(t.ct + t.tag);
    if (t.result === "valid") {
      check(`aes-gcm ${t.tcId} encrypt`, await p.aeadEncrypt(key, iv, msg, aad), ctTag);
      check(`aes-gcm ${t.tcId} decrypt`, await p.aeadDecrypt(key, iv, ctTag, aad), msg);
    } else {
      await rejects(`aes-gcm ${t.tcId}`, () => p.aeadDecrypt(key, iv, ctTag, aad));
    }
  }
  for (const [, t] of cases("hkdf")) {
    const args = [fromHex(t.salt), fromHex(t.ikm), fromHex(t.info), t.size];
    if (t.result === "valid") check(`hkdf ${t.tcId}`, await p.hkdf(...args), t.okm);
    else await rejects(`hkdf ${t.tcId}`, () => p.hkdf(...args));
  }
  const kem = cases("mlkem");
  check("ml-kem case count", kem.length, 193);
  for (const [, t] of kem) {
    const seed = fromHex(t.seed), c = fromHex(t.c);
    if (t.result === "valid") {
      if (t.ek) check(`ml-kem ${t.tcId} ek`, await p.mlkemPublic(seed), t.ek);
      check(`ml-kem ${t.tcId} K`, await p.mlkemDecapsulate(seed, c), t.K);
    } else {
      await rejects(`ml-kem ${t.tcId}`, () => p.mlkemDecapsulate(seed, c));
    }
  }
  return { checked, failures };
}
