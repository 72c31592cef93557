// The web client's controller: unlock, contacts, conversations, files, timers, safety
// numbers. Protocol work is in the other modules; this one decides what happens when.

import { b64uDecode, b64uEncode, concat, toHex, utf8 } from "./encoding.js";
import * as p from "./primitives.js";
import * as keys from "./keys.js";
import { Session } from "./ratchet.js";
import { acceptSession, startSession } from "./session.js";
import { openMessage, sealMessage, DEFAULT_BUCKETS } from "./envelope.js";
import { decodeIntro, sealIntroMessage, unseal } from "./sealed.js";
import * as files from "./files.js";
import { decodeMessage, encodeMessage, newMessageId, nowSeconds } from "./messages.js";
import { linkUrl, parseContactLink } from "./link.js";
import { groups, qrPayload, safetyNumber } from "./safety.js";
import * as qr from "./qr.js";
import { Vault, exists, wipe } from "./storage.js";
import * as api from "./transport.js";
import { $, $$, UserError, el, explain, formatCountdown, formatSize, formatTime, watchCsp } from "./ui.js";

const ONE_TIME_BATCH = 10;
const PREVIEW_LIMIT = 10 * 1024 * 1024;
const PREVIEWABLE = /^image\/(png|jpeg|gif|webp)$/;

const app = {
  vault: null, profile: null, identity: null, intro: null, secrets: null, policy: null,
  buckets: DEFAULT_BUCKETS, contacts: new Map(), messages: new Map(), owners: new Map(),
  relay: null, tokens: {}, current: null, pendingLink: null, fileUrls: new Map(),
  serial: Promise.resolve(), lockTimer: null, flushing: new Set(), answering: new Map(),
};

// All state changes (ratchet steps above all) happen one at a time.
function serially(fn) {
  const run = app.serial.then(fn, fn);
  app.serial = run.catch(() => {});
  return run;
}

// --- Feedback ---------------------------------------------------------------------------

function showError(error) {
  const box = $("#error");
  box.textContent = typeof error === "string" ? error : explain(error);
  box.hidden = false;
  if (error instanceof Error && !(error instanceof UserError)) console.warn(error);
}
function clearError() { $("#error").hidden = true; }
function status(text) { $("#status").textContent = text; }

async function busy(button, fn) {
  button.disabled = true;
  clearError();
  try { return await fn(); } catch (e) { showError(e); } finally { button.disabled = false; }
}

// --- Screens and routes -----------------------------------------------------------------

function show(screen) {
  for (const s of $$(".screen")) s.hidden = s.id !== `screen-${screen}`;
  for (const a of $$(".appbar a")) {
    if (a.dataset.route === screen) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
}

function route() {
  if (!app.vault) return;
  clearError();
  const [, name, id] = (location.hash || "#/chats").split("/");
  app.current = null;
  let screen;
  if (name === "chat" && app.contacts.has(id)) { app.current = id; renderConversation(); screen = "conversation"; }
  else if (name === "contact" && app.contacts.has(id)) { renderContact(id); screen = "contact"; }
  else if (name === "add") { renderInvite(); screen = "add"; }
  else if (name === "settings") { $("#autolock").value = String(app.profile.autoLock ?? 5); screen = "settings"; }
  else { renderChats(); screen = "chats"; }
  show(screen);
  // Move the focus into the new screen, so keyboard and screen-reader users land there.
  const target = screen === "conversation" ? $("#compose-input") : $(`#screen-${screen} h1`);
  if (target) { if (target.tagName === "H1") target.tabIndex = -1; target.focus({ preventScroll: true }); }
}

// --- Create, unlock, lock, wipe ----------------------------------------------------------

async function boot() {
  watchCsp();
  if (location.pathname === "/c") {
    // Opened from a contact link: keep it (in its canonical https form) for "Add contact".
    app.pendingLink = `https://${location.host}/c${location.hash}`;
    history.replaceState(null, "", "/app#/add");
  }
  const appEl = $("#app");
  app.buckets = appEl.dataset.buckets.split(",").map(Number);
  // One tab at a time: two tabs advancing the same ratchets would corrupt each other's state.
  const held = await new Promise((resolve) => {
    navigator.locks.request("courier-app", { ifAvailable: true }, (lock) => {
      resolve(lock !== null);
      return lock ? new Promise(() => {}) : undefined;
    });
  });
  if (!held) {
    appEl.dataset.state = "elsewhere";
    $("#loading").textContent = "Courier is already open in another tab or window of this browser. Use that one, or close it and reload this page.";
    return;
  }
  const hasVault = await exists();
  appEl.dataset.state = hasVault ? "locked" : "new";
  show(hasVault ? "unlock" : "create");
  (hasVault ? $("#unlock-passphrase") : $("#create-passphrase")).focus();
  $("#create-form").addEventListener("submit", (e) => { e.preventDefault(); busy(e.submitter ?? $("[data-testid=create-identity]"), createIdentity); });
  $("#unlock-form").addEventListener("submit", (e) => { e.preventDefault(); busy(e.submitter ?? $("[data-testid=unlock]"), unlock); });
  $("#lock").addEventListener("click", lock);
  for (const b of $$("[data-action=wipe]")) b.addEventListener("click", () => confirmWipe(b));
  $("#add-form").addEventListener("submit", (e) => { e.preventDefault(); busy($("[data-testid=add-contact-submit]"), addContact); });
  $("#copy-invite").addEventListener("click", copyInvite);
  $("#compose").addEventListener("submit", (e) => { e.preventDefault(); sendText(); });
  $("#compose-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); sendText(); }
  });
  $("#file-input").addEventListener("change", sendFile);
  $("#disappear").addEventListener("change", setTimer);
  $("#mark-verified").addEventListener("click", toggleVerified);
  $("#rename-form").addEventListener("submit", (e) => { e.preventDefault(); renameContact(); });
  $("#remove-contact").addEventListener("click", removeContact);
  $("#settings-form").addEventListener("submit", (e) => { e.preventDefault(); saveSettings(); });
  window.addEventListener("hashchange", route);
  window.addEventListener("online", () => { if (app.vault) flushOutboxes(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && app.current) renderConversation();
  });
  for (const ev of ["pointerdown", "keydown"]) document.addEventListener(ev, armAutoLock, { passive: true });
  setInterval(tick, 1000);
}

async function createIdentity() {
  const pass = $("#create-passphrase").value;
  if (pass.length < 8) throw new UserError("Choose a passphrase of at least 8 characters.");
  if (pass !== $("#create-confirm").value) throw new UserError("The two passphrases are not the same.");
  status("Making your keys…");
  app.policy = await api.getPolicy();
  const vault = await Vault.create(pass);
  const idBytes = await keys.generateIdentity();
  const pub = await keys.publicIdentity(idBytes);
  const introBytes = p.randomBytes(32);
  const introPublic = await p.x25519Public(introBytes);
  const identity = {
    signing: await vault.putKey("identity.signing", "ed25519", idBytes.signing),
    dh: await vault.putKey("identity.dh", "x25519", idBytes.dh),
    public: pub,
  };
  const intro = { key: await vault.putKey("intro", "x25519", introBytes), public: introPublic };
  app.vault = vault;
  app.identity = identity;
  app.intro = intro;
  app.profile = { handle: b64uEncode(p.randomBytes(16)), introPublic, nextPrekeyId: 2, autoLock: 5, seen: [], createdAt: nowSeconds() };
  app.secrets = { signed: new Map(), oneTime: new Map(), pqLastResort: new Map(), pqOneTime: new Map() };
  try {
    status("Publishing your public keys…");
    await publishBundle(idBytes, true);
    status("Opening your mailbox…");
    const mailbox = await newMailbox();
    app.profile.introMailbox = mailbox;
    await saveProfile();
  } catch (e) {
    // A half-made identity is no use to anyone: remove it, so "Create" can simply be retried.
    Object.assign(app, { vault: null, identity: null, intro: null, profile: null, secrets: null, tokens: {} });
    await wipe();
    status("");
    throw e;
  }
  status("");
  await enter();
}

// Publish the bundle with a fresh batch of one-time prekeys (and, first time, new signed
// and last-resort prekeys). Private halves go into the vault before the public halves leave.
async function publishBundle(idBytes, first) {
  const ids = Array.from({ length: ONE_TIME_BATCH }, (_, i) => app.profile.nextPrekeyId + i);
  app.profile.nextPrekeyId += ONE_TIME_BATCH;
  const signer = { signing: idBytes ? idBytes.signing : app.identity.signing, dh: app.identity.dh, public: app.identity.public };
  let bundle, secrets;
  if (first) {
    ({ bundle, secrets } = await keys.generateBundle(signer, p.systemRandom, { signedPrekeyId: 1, pqLastResortId: 1, oneTimeIds: ids, pqOneTimeIds: ids }));
    await app.vault.put("spk", [...secrets.signed]);
    app.secrets.signed = secrets.signed;
    app.profile.signedPrekey = keys.bundleToJson(bundle).signed_prekey;
    app.profile.pqLastResort = keys.bundleToJson(bundle).pq_last_resort_prekey;
    app.secrets.pqLastResort.set(1, await app.vault.putKey("pqlr.1", "mlkem", secrets.pqLastResort.get(1)));
  } else {
    secrets = { oneTime: new Map(), pqOneTime: new Map() };
    const oneTimePrekeys = [], pqOneTimePrekeys = [];
    for (const id of ids) {
      const x = p.randomBytes(32), s = p.randomBytes(64);
      secrets.oneTime.set(id, x);
      secrets.pqOneTime.set(id, s);
      oneTimePrekeys.push({ id, key: await p.x25519Public(x) });
      pqOneTimePrekeys.push(await keys.makePqPrekey(signer, id, s, keys.PQ_KIND_ONE_TIME));
    }
    bundle = { oneTimePrekeys, pqOneTimePrekeys };
  }
  for (const [id, x] of secrets.oneTime) app.secrets.oneTime.set(id, await app.vault.putKey(`otpk.${id}`, "x25519", x));
  for (const [id, s] of secrets.pqOneTime) app.secrets.pqOneTime.set(id, await app.vault.putKey(`pqotpk.${id}`, "mlkem", s));
  await saveProfile();
  const pub = app.identity.public;
  const body = {
    identity_key: b64uEncode(pub.identityKey),
    identity_dh_key: b64uEncode(pub.identityDhKey),
    identity_dh_signature: b64uEncode(pub.identityDhSignature),
    signed_prekey: app.profile.signedPrekey,
    pq_last_resort_prekey: app.profile.pqLastResort,
    one_time_prekeys: bundle.oneTimePrekeys.map((k) => ({ id: k.id, key: b64uEncode(k.key) })),
    pq_one_time_prekeys: bundle.pqOneTimePrekeys.map((k) => ({ id: k.id, key: b64uEncode(k.key), signature: b64uEncode(k.signature) })),
  };
  await api.publishBundle(await token("keys"), app.profile.handle, body, app.identity.signing);
  app.profile.publishedAt = nowSeconds();
  await saveProfile();
}

async function unlock() {
  status("Unlocking…");
  const vault = await Vault.unlock($("#unlock-passphrase").value);
  const profile = await vault.get("profile");
  if (!profile || !profile.introMailbox) {
    throw new UserError("The Courier data in this browser is incomplete: making it was interrupted. Delete everything and create a new identity.");
  }
  app.vault = vault;
  app.profile = profile;
  app.identity = {
    signing: await vault.getKey("identity.signing"),
    dh: await vault.getKey("identity.dh"),
    public: app.profile.identity,
  };
  app.intro = { key: await vault.getKey("intro"), public: app.profile.introPublic };
  app.secrets = { signed: new Map(await vault.get("spk")), oneTime: new Map(), pqLastResort: new Map(), pqOneTime: new Map() };
  for (const [prefix, map] of [["otpk.", app.secrets.oneTime], ["pqotpk.", app.secrets.pqOneTime], ["pqlr.", app.secrets.pqLastResort]]) {
    for (const name of await vault.keyNames(prefix)) map.set(Number(name.slice(prefix.length)), await vault.getKey(name));
  }
  for (const name of await vault.names("contact.")) {
    const c = await vault.get(name);
    app.contacts.set(c.id, c);
    app.messages.set(c.id, (await vault.get(`msgs.${c.id}`)) ?? []);
  }
  try { app.policy = await api.getPolicy(); } catch { app.policy = null; }
  status("");
  await enter();
}

async function enter() {
  $("#app").dataset.state = "ready";
  $("#appbar").hidden = false;
  $("#unlock-passphrase").value = "";
  $("#create-passphrase").value = "";
  $("#create-confirm").value = "";
  app.tokens = (await app.vault.get("tokens")) ?? {};
  app.relay = new api.Relay({
    getToken: token,
    renewToken: async () => { delete app.tokens.relay; await token(); },
    onEnvelope: (rid, eid, env) => serially(() => receiveEnvelope(rid, eid, env)),
    onState: (s) => { const c = $("#connection"); c.dataset.state = s; c.textContent = s; if (s === "online") flushOutboxes(); },
  });
  await watchMailbox(app.profile.introMailbox.receive_id);
  for (const c of app.contacts.values()) if (c.myMailbox) await watchMailbox(c.myMailbox.receive_id);
  app.relay.connect();
  armAutoLock();
  if (app.pendingLink) { location.hash = "#/add"; $("#add-link").value = app.pendingLink; app.pendingLink = null; }
  route();
  maintain().catch((e) => console.warn("maintenance will be retried:", e.message));
}

// Keep what lives on the server alive: mailboxes are extended (owner-signed) once a week,
// the bundle is topped up and re-published, a stale signed prekey is replaced.
async function maintain() {
  await topUpPrekeys();
  const week = 7 * 86400;
  if (nowSeconds() - (app.profile.mailboxesExtendedAt ?? app.profile.createdAt) < week) return;
  const ttl = app.policy?.mailboxes?.max_ttl_seconds ?? 7776000;
  const boxes = [app.profile.introMailbox, ...[...app.contacts.values()].map((c) => c.myMailbox)].filter(Boolean);
  for (const box of boxes) await api.extendMailbox(await token(), box.receive_id, ttl, app.owners.get(box.receive_id));
  app.profile.mailboxesExtendedAt = nowSeconds();
  await serially(saveProfile);
}

async function watchMailbox(receiveId) {
  let key = app.owners.get(receiveId);
  if (!key) { key = await app.vault.getKey(`owner.${receiveId}`); app.owners.set(receiveId, key); }
  app.relay.add(receiveId, key);
}

function lock() {
  if (app.relay) app.relay.stop();
  // A reload is the one sure way to drop every key and plaintext held by this page.
  location.replace("/app");
}

function armAutoLock() {
  clearTimeout(app.lockTimer);
  const minutes = app.profile?.autoLock ?? 5;
  if (app.vault && minutes > 0) app.lockTimer = setTimeout(lock, minutes * 60000);
}

function confirmWipe(button) {
  if (button.dataset.armed !== "yes") {
    button.dataset.armed = "yes";
    button.textContent = "Click again to delete everything for good";
    return;
  }
  if (app.relay) app.relay.stop();
  button.disabled = true;
  status("Deleting…");
  // When unlocked, first withdraw what the server holds for us (bundle, mailboxes), so
  // nobody can start a conversation with a person who is gone; a few seconds at most.
  const server = app.vault ? withdrawFromServer() : Promise.resolve();
  const timeout = new Promise((resolve) => setTimeout(resolve, 4000));
  Promise.race([server.catch(() => {}), timeout])
    .then(wipe)
    .then(() => location.replace("/app"), showError);
}

async function withdrawFromServer() {
  await api.deleteBundle(await token("keys"), app.profile.handle, app.identity.signing).catch(() => {});
  const t = await token();
  const boxes = [app.profile.introMailbox, ...[...app.contacts.values()].map((c) => c.myMailbox)].filter(Boolean);
  for (const box of boxes) await api.deleteMailbox(t, box.receive_id, app.owners.get(box.receive_id)).catch(() => {});
}

async function saveSettings() {
  app.profile.autoLock = Number($("#autolock").value);
  await saveProfile();
  armAutoLock();
  status("Settings saved.");
}

// --- Persistence ------------------------------------------------------------------------

async function saveProfile() {
  app.profile.identity = app.identity.public;
  await app.vault.put("profile", app.profile);
}
const saveContact = (c) => app.vault.put(`contact.${c.id}`, c);
const saveMessages = (id) => app.vault.put(`msgs.${id}`, app.messages.get(id) ?? []);

// Sessions by purpose, so the server cannot join what one session does with another's:
// "relay" for the socket and our own mailboxes, "keys" for our bundle. Claiming someone
// else's bundle uses a fresh session each time (see addContact), and sending to a contact
// its own one (sendToken).
async function token(purpose = "relay") {
  const held = app.tokens[purpose];
  if (held && held.expiresAt > Date.now() + 60000) return held.token;
  app.tokens[purpose] = await api.mintSession();
  await app.vault.put("tokens", app.tokens);
  return app.tokens[purpose].token;
}

// A separate session per contact we send to, so the server cannot link our sends.
async function sendToken(c) {
  if (c.sendToken && c.sendToken.expiresAt > Date.now() + 60000) return c.sendToken.token;
  c.sendToken = await api.mintSession();
  await saveContact(c);
  return c.sendToken.token;
}

async function newMailbox() {
  const owner = p.randomBytes(32);
  const ttl = app.policy?.mailboxes?.max_ttl_seconds ?? 7776000;
  const m = await api.createMailbox(await token(), await p.ed25519Public(owner), ttl);
  app.owners.set(m.receive_id, await app.vault.putKey(`owner.${m.receive_id}`, "ed25519", owner));
  return { send_id: m.send_id, receive_id: m.receive_id };
}

async function topUpPrekeys() {
  const count = await api.prekeyCount(await token("keys"), app.profile.handle, app.identity.signing);
  if (count.signed_prekey_stale) await serially(rotateSignedPrekey);
  if (count.signed_prekey_stale || count.one_time_prekeys < ONE_TIME_BATCH / 2 || count.pq_one_time_prekeys < ONE_TIME_BATCH / 2 || nowSeconds() - (app.profile.publishedAt ?? 0) > 7 * 86400) {
    await serially(() => publishBundle(null, false));
  }
}

// A new signed prekey; the previous two stay, for intros already on their way.
async function rotateSignedPrekey() {
  const id = app.profile.nextPrekeyId++;
  const priv = p.randomBytes(32);
  const key = await p.x25519Public(priv);
  const signature = await p.ed25519Sign(app.identity.signing, keys.signedPrekeyMessage(id, key));
  app.secrets.signed.set(id, priv);
  while (app.secrets.signed.size > 3) app.secrets.signed.delete(app.secrets.signed.keys().next().value);
  await app.vault.put("spk", [...app.secrets.signed]);
  app.profile.signedPrekey = { id, key: b64uEncode(key), signature: b64uEncode(signature) };
  await saveProfile();
}

// --- Contact link and adding a contact --------------------------------------------------

async function myLink() {
  return linkUrl({
    host: location.host, handle: app.profile.handle, introMailbox: app.profile.introMailbox.send_id,
    fingerprint: await keys.fingerprint(app.identity.public.identityKey), introKey: app.profile.introPublic,
  });
}

async function renderInvite() {
  const url = await myLink();
  $("#invite-link").textContent = url;
  qr.draw($("#invite-qr"), url);
}

async function copyInvite() {
  try {
    await navigator.clipboard.writeText(await myLink());
    status("Your contact link is copied.");
  } catch {
    const range = document.createRange();
    range.selectNodeContents($("#invite-link"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    status("Press Ctrl+C (or ⌘C) to copy the selected link.");
  }
}

async function addContact() {
  const link = parseContactLink($("#add-link").value);
  if (link.host !== location.host) throw new UserError(`This link is for another server (${link.host}). This app talks only to ${location.host}.`);
  if (link.handle === app.profile.handle) throw new UserError("That is your own contact link. Send it to someone else.");
  for (const c of app.contacts.values()) {
    if (toHex(c.fingerprint) === toHex(link.fingerprint)) { location.hash = `#/chat/${c.id}`; return; }
  }
  status("Fetching their keys…");
  const c = await serially(async () => {
    const once = await api.mintSession();
    const bundle = await keys.verifyClaimedBundle(await api.claimBundle(once.token, link.handle), link.fingerprint);
    const mailbox = await newMailbox();
    const { session } = await startSession(app.identity, bundle);
    const c = {
      id: b64uEncode(p.randomBytes(9)), name: $("#add-name").value.trim() || "New contact",
      identityKey: bundle.identity.identityKey, fingerprint: link.fingerprint, verified: false,
      role: "initiator", myMailbox: mailbox, theirMailbox: null,
      theirIntro: { mailbox: link.introMailbox, key: link.introKey },
      session: session.toBytes(), timer: 0, unread: 0, lastText: "", lastAt: nowSeconds(), createdAt: nowSeconds(),
    };
    app.contacts.set(c.id, c);
    app.messages.set(c.id, []);
    await saveContact(c);
    await saveMessages(c.id);
    await watchMailbox(mailbox.receive_id);
    // The first message tells them where to answer: our new pairwise mailbox.
    await sendPayload(c, { type: "reply_here", mailbox: mailbox.send_id });
    return c;
  });
  status("");
  $("#add-link").value = "";
  $("#add-name").value = "";
  location.hash = `#/chat/${c.id}`;
}

// --- Sending ----------------------------------------------------------------------------

// Encrypt and queue one payload for a contact; returns the message record fields.
async function sendPayload(c, fields) {
  const message = { id: await newMessageId(), sent_at: nowSeconds(), ...fields };
  const payload = encodeMessage(message);
  const session = Session.fromBytes(c.session);
  let envelope, target;
  if (session.state.pending_prekey_header !== null) {
    // They have not answered yet: seal to their intro mailbox, PQXDH header inside.
    envelope = await sealIntroMessage(session, c.theirIntro.key, payload, app.buckets);
    target = c.theirIntro.mailbox;
  } else {
    envelope = await sealMessage(session, payload, app.buckets);
    target = c.theirMailbox;
  }
  // The ratchet state is saved before the envelope leaves (protocol section 7.5).
  c.session = session.toBytes();
  c.outbox = [...(c.outbox ?? []), { id: b64uEncode(message.id), target, envelope }];
  await saveContact(c);
  deliverOutbox(c);
  return message;
}

async function deliverOutbox(c) {
  if (app.flushing.has(c.id)) return;
  app.flushing.add(c.id);
  try {
    while (c.outbox && c.outbox.length) {
      const item = c.outbox[0];
      item.target = item.target ?? c.theirMailbox;
      if (!item.target) break; // they have not told us where to send yet
      // A disappearing message must not outlive its timer on the server either.
      const max = app.policy?.envelopes?.max_ttl_seconds ?? 604800;
      await api.sendEnvelope(await sendToken(c), item.target, item.envelope, c.timer > 0 ? Math.min(max, c.timer) : max);
      c.outbox.shift();
      const m = (app.messages.get(c.id) ?? []).find((x) => x.id === item.id);
      if (m && m.state === "sending") { m.state = "sent"; await saveMessages(c.id); rerender(c.id); }
      await saveContact(c);
    }
  } catch (e) {
    if (!(e instanceof api.NetworkError)) {
      if (e instanceof api.ApiError && e.status < 500 && e.code !== "rate_limited") {
        const item = c.outbox.shift();
        const m = (app.messages.get(c.id) ?? []).find((x) => x.id === item.id);
        if (m) { m.state = "failed"; await saveMessages(c.id); rerender(c.id); }
        await saveContact(c);
        showError(e);
      }
    }
  } finally {
    app.flushing.delete(c.id);
  }
}

function flushOutboxes() {
  for (const c of app.contacts.values()) if (c.outbox && c.outbox.length) deliverOutbox(c);
}

function addMessage(c, m) {
  const list = app.messages.get(c.id);
  if (c.timer > 0 && m.dir !== "system") m.expiresAt = Date.now() + c.timer * 1000;
  list.push(m);
  if (m.dir !== "system") {
    c.lastText = m.type === "file" ? `File: ${m.name}` : m.body;
    c.lastAt = m.sent_at;
  }
}

async function sendText() {
  const input = $("#compose-input");
  const body = input.value.trim();
  const c = app.contacts.get(app.current);
  if (!body || !c) return;
  const max = Math.floor(app.buckets[app.buckets.length - 1] / 2);
  if (utf8(body).length > max) { showError(new UserError("That message is too long. Split it, or send it as a file.")); return; }
  input.value = "";
  clearError();
  try {
    await answerContact(c);
    await serially(async () => {
      const m = await sendPayload(c, { type: "text", body });
      addMessage(c, { id: b64uEncode(m.id), dir: "out", type: "text", body, sent_at: m.sent_at, state: c.outbox?.some((x) => x.id === b64uEncode(m.id)) ? "sending" : "sent" });
      await saveContact(c);
      await saveMessages(c.id);
    });
    renderConversation();
  } catch (e) {
    input.value = body;
    showError(e);
  }
}

function chooseChunkSize(size) {
  const sizes = app.policy?.blobs?.chunk_sizes ?? [65536, 1048576, 4194304];
  const wanted = size > 256 * 1024 ? 1048576 : 65536;
  return sizes.includes(wanted) ? wanted : sizes[0];
}

function progress(label, done, total) {
  const box = $("#file-progress-box");
  box.hidden = false;
  $("#file-progress-label").textContent = label;
  const bar = $("#file-progress");
  bar.value = Math.round((done / total) * 100);
  bar.setAttribute("value", String(bar.value));
  if (done >= total) setTimeout(() => { if (bar.value >= 100) box.hidden = true; }, 4000);
}

async function sendFile(event) {
  const input = event.target;
  const file = input.files[0];
  input.value = "";
  const c = app.contacts.get(app.current);
  if (!file || !c) return;
  clearError();
  try {
    const max = app.policy?.blobs?.max_bytes ?? 1 << 30;
    if (file.size > Math.min(max, 200 * 1024 * 1024)) throw new UserError("That file is too large to send from a browser.");
    await answerContact(c);
    const data = new Uint8Array(await file.arrayBuffer());
    const chunkSize = chooseChunkSize(data.length);
    const count = files.chunkCount(data.length, chunkSize);
    const maxDownloads = Math.min(app.policy?.blobs?.max_downloads ?? 5, 5);
    progress(`Sending ${file.name}`, 0, count);
    const blob = await api.createBlob(await sendToken(c), chunkSize, count, maxDownloads);
    const enc = await files.encryptFile(data, chunkSize, p.systemRandom, async (i, chunk) => {
      for (let attempt = 0; ; attempt++) {
        try { await api.uploadChunk(blob.blob_id, blob.upload_capability, i, chunk); break; } catch (e) {
          if (attempt >= 4 || !(e instanceof api.NetworkError)) throw e;
          await new Promise((r) => setTimeout(r, 1000 * (attempt + 1)));
        }
      }
      progress(`Sending ${file.name}`, i + 1, count);
    });
    const mime = file.type || "application/octet-stream";
    await serially(async () => {
      const m = await sendPayload(c, {
        type: "file", blob_id: blob.blob_id, download_capability: blob.download_capability, key: enc.key,
        digest: enc.digest, size: enc.size, chunk_size: chunkSize, chunk_count: count, name: file.name, mime_type: mime,
      });
      const id = b64uEncode(m.id);
      app.fileUrls.set(id, URL.createObjectURL(new Blob([data], { type: mime })));
      addMessage(c, { id, dir: "out", type: "file", name: file.name, size: enc.size, mime_type: mime, sent_at: m.sent_at, state: "sending" });
      await app.vault.put(`file.${id}`, data);
      await saveContact(c);
      await saveMessages(c.id);
    });
    renderConversation();
  } catch (e) {
    $("#file-progress-box").hidden = true;
    showError(e);
  }
}

async function downloadFile(c, m, save) {
  let url = app.fileUrls.get(m.id);
  if (!url) {
    let data = await app.vault.get(`file.${m.id}`);
    if (!data) {
      const d = m.descriptor;
      if (d.chunk_count !== files.chunkCount(d.size, d.chunk_size)) throw new UserError("This file's description is damaged.");
      const sizes = app.policy?.blobs?.chunk_sizes ?? [65536, 1048576, 4194304];
      if (!sizes.includes(d.chunk_size) || d.size > Math.min(app.policy?.blobs?.max_bytes ?? 2 ** 30, 2 ** 31)) {
        throw new UserError("This file is larger than this browser can receive.");
      }
      progress(`Downloading ${m.name}`, 0, d.chunk_count);
      data = await files.decryptFile(d.key, (i) => api.downloadChunk(d.blob_id, d.download_capability, i), d.size, d.digest, d.chunk_size,
        (done, total) => progress(`Downloading ${m.name}`, done, total));
      await app.vault.put(`file.${m.id}`, data);
    }
    url = URL.createObjectURL(new Blob([data], { type: m.mime_type }));
    app.fileUrls.set(m.id, url);
    if (app.current === c.id) renderConversation();
  }
  if (save) {
    const a = el("a", { href: url, download: m.name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
  }
}

async function setTimer() {
  const c = app.contacts.get(app.current);
  const seconds = Number($("#disappear").value);
  try {
    await answerContact(c);
    await serially(async () => {
      await sendPayload(c, { type: "timer", seconds });
      c.timer = seconds;
      addMessage(c, { id: b64uEncode(p.randomBytes(16)), dir: "system", body: timerText("You", seconds), sent_at: nowSeconds() });
      await saveContact(c);
      await saveMessages(c.id);
    });
    renderConversation();
  } catch (e) { showError(e); }
}

function timerText(who, seconds) {
  const opt = $(`#disappear option[value="${seconds}"]`);
  return seconds === 0 ? `${who} turned off disappearing messages.` : `${who} set messages to disappear after ${opt ? opt.textContent : seconds + " seconds"}.`;
}

// --- Receiving --------------------------------------------------------------------------

async function receiveEnvelope(receiveId, envelopeId, envelope) {
  if (app.profile.seen.includes(envelopeId)) return; // at-least-once delivery: drop duplicates
  let c, payload;
  try {
    if (receiveId === app.profile.introMailbox.receive_id) [c, payload] = await openIntro(envelope);
    else {
      c = [...app.contacts.values()].find((x) => x.myMailbox?.receive_id === receiveId);
      if (!c) return;
      const session = Session.fromBytes(c.session);
      payload = await openMessage(session, envelope, app.buckets);
      c.session = session.toBytes();
    }
  } catch (e) {
    if (e instanceof p.CryptoError || e.name === "EncodingError") { console.warn("unreadable envelope dropped:", e.message); return; }
    throw e;
  }
  let message;
  try { message = decodeMessage(payload); } catch { await saveContact(c); return; }
  await handleMessage(c, message);
  app.profile.seen = [...app.profile.seen.slice(-499), envelopeId];
  await saveContact(c);
  await saveMessages(c.id);
  await saveProfile();
  rerender(c.id);
  if (c.needsAnswer) answerContact(c).catch(() => {});
}

// The responder's answer to a new contact: its own pairwise mailbox, told with reply_here.
// Retried (from tick) until it succeeds; it must precede anything else we send them.
function answerContact(c) {
  if (!c.needsAnswer) return Promise.resolve();
  // Callers wait for an answer already under way: nothing may overtake the reply_here.
  if (!app.answering.has(c.id)) {
    app.answering.set(c.id, answerNow(c).finally(() => app.answering.delete(c.id)));
  }
  return app.answering.get(c.id);
}

async function answerNow(c) {
  if (!c.myMailbox) {
    const mailbox = await newMailbox();
    await serially(async () => { c.myMailbox = mailbox; await saveContact(c); });
    await watchMailbox(mailbox.receive_id);
  }
  await serially(async () => {
    if (!c.needsAnswer) return;
    await sendPayload(c, { type: "reply_here", mailbox: c.myMailbox.send_id });
    if (c.pendingReceipts?.length) {
      await sendPayload(c, { type: "receipt", message_ids: c.pendingReceipts.map((x) => b64uDecode(x, 16)) });
    }
    c.pendingReceipts = [];
    c.needsAnswer = false;
    await saveContact(c);
  });
}

async function openIntro(envelope) {
  const { header, message } = decodeIntro(await unseal(app.intro.key, envelope, app.buckets, app.intro.public));
  const tag = toHex(await p.sha256(concat(header.initiator.identityKey, header.ephemeralKey)));
  const known = [...app.contacts.values()].find((x) => x.introTag === tag);
  if (known) {
    // A later message sent before we answered: same session, same PQXDH header.
    const session = Session.fromBytes(known.session);
    const payload = await session.decrypt(message);
    known.session = session.toBytes();
    return [known, payload];
  }
  const { session, plaintext } = await acceptSession(app.identity, app.secrets, header, message);
  // The one-time prekeys are used up: delete their private halves for good.
  if (header.oneTimePrekeyId !== null) await app.vault.deleteKey(`otpk.${header.oneTimePrekeyId}`);
  if (header.pqPrekeyKind === keys.PQ_KIND_ONE_TIME) await app.vault.deleteKey(`pqotpk.${header.pqPrekeyId}`);
  const c = {
    id: b64uEncode(p.randomBytes(9)), name: `New contact ${toHex(await keys.fingerprint(header.initiator.identityKey)).slice(0, 6)}`, identityKey: header.initiator.identityKey,
    fingerprint: await keys.fingerprint(header.initiator.identityKey), verified: false, role: "responder",
    introTag: tag, myMailbox: null, theirMailbox: null, session: session.toBytes(), timer: 0, unread: 0,
    lastText: "", lastAt: nowSeconds(), createdAt: nowSeconds(),
  };
  // Saved before anything touches the network: a retry after a failure finds the session by
  // its (IK, EK) tag instead of running PQXDH again with prekeys that are gone.
  c.needsAnswer = true;
  app.contacts.set(c.id, c);
  app.messages.set(c.id, []);
  await saveContact(c);
  topUpPrekeys().catch(() => {});
  return [c, plaintext];
}

async function handleMessage(c, m) {
  const id = b64uEncode(m.id);
  const list = app.messages.get(c.id);
  if (list.some((x) => x.id === id)) return;
  switch (m.type) {
    case "reply_here":
      c.theirMailbox = m.mailbox;
      flushOutboxes();
      break;
    case "text":
    case "file": {
      const record = m.type === "text"
        ? { id, dir: "in", type: "text", body: m.body, sent_at: m.sent_at }
        : { id, dir: "in", type: "file", name: m.name, size: m.size, mime_type: m.mime_type, sent_at: m.sent_at, descriptor: m };
      addMessage(c, record);
      if (app.current !== c.id || document.visibilityState !== "visible") c.unread += 1;
      if (c.needsAnswer) c.pendingReceipts = [...(c.pendingReceipts ?? []), id];
      else await sendPayload(c, { type: "receipt", message_ids: [m.id] });
      if (m.type === "file" && PREVIEWABLE.test(m.mime_type) && m.size <= PREVIEW_LIMIT) {
        setTimeout(() => downloadFile(c, record, false).catch(() => {}), 0);
      }
      break;
    }
    case "timer":
      c.timer = m.seconds;
      addMessage(c, { id, dir: "system", body: timerText(c.name, m.seconds), sent_at: m.sent_at });
      break;
    case "receipt": {
      const ids = new Set(m.message_ids.map(b64uEncode));
      for (const x of list) if (x.dir === "out" && ids.has(x.id)) x.state = "delivered";
      break;
    }
  }
}

// --- Disappearing messages --------------------------------------------------------------

function tick() {
  if (!app.vault) return;
  const now = Date.now();
  // Envelopes that could not leave (offline, server down) are retried every few seconds.
  if (now - (app.lastFlush ?? 0) > 5000) {
    app.lastFlush = now;
    flushOutboxes();
    for (const c of app.contacts.values()) if (c.needsAnswer) answerContact(c).catch(() => {});
  }
  for (const [id, list] of app.messages) {
    const keep = list.filter((m) => !m.expiresAt || m.expiresAt > now);
    if (keep.length !== list.length) {
      for (const m of list) {
        if (m.expiresAt && m.expiresAt <= now && m.type === "file") {
          app.vault.delete(`file.${m.id}`);
          const url = app.fileUrls.get(m.id);
          if (url) { URL.revokeObjectURL(url); app.fileUrls.delete(m.id); }
        }
      }
      app.messages.set(id, keep);
      serially(() => saveMessages(id));
      rerender(id);
    }
  }
  for (const node of $$(".countdown")) node.textContent = `disappears in ${formatCountdown((Number(node.dataset.expires) - now) / 1000)}`;
}

// --- Rendering --------------------------------------------------------------------------

function rerender(contactId) {
  if (app.current === contactId) {
    const c = app.contacts.get(contactId);
    if (c && c.unread && document.visibilityState === "visible") { c.unread = 0; serially(() => saveContact(c)); }
    renderConversation();
  }
  renderChats();
}

function renderChats() {
  const list = $("#contact-list");
  const contacts = [...app.contacts.values()].sort((a, b) => b.lastAt - a.lastAt);
  list.replaceChildren(...contacts.map((c) => el("li", {},
    el("a", { href: `#/chat/${c.id}`, "data-testid": "contact-item", "data-contact": c.id },
      el("span", { class: "name", text: c.name }),
      c.verified ? el("span", { class: "verified", text: "✓" }) : null,
      el("span", { class: "preview", text: c.lastText || (c.theirMailbox ? "" : "Waiting for an answer…") }),
      c.unread ? el("span", { class: "badge", "data-testid": "unread-count", text: String(c.unread) }) : null))));
  const total = contacts.reduce((n, c) => n + c.unread, 0);
  const badge = $("#total-unread");
  badge.hidden = total === 0;
  badge.textContent = String(total);
  document.title = total ? `(${total}) Courier` : "Courier";
}

function renderConversation() {
  const c = app.contacts.get(app.current);
  if (!c) return;
  if (c.unread && document.visibilityState === "visible") { c.unread = 0; serially(() => saveContact(c)); renderChats(); }
  $("#conv-name").textContent = c.name;
  $("#conv-verified").hidden = !c.verified;
  $("#conv-details").href = `#/contact/${c.id}`;
  $("#conv-pending").hidden = !(c.role === "initiator" && c.theirMailbox === null);
  const select = $("#disappear");
  if (![...select.options].some((o) => o.value === String(c.timer))) {
    // A timer set by another client may be one this menu does not offer.
    select.append(el("option", { value: String(c.timer), text: `${formatCountdown(c.timer)}` }));
  }
  select.value = String(c.timer);
  const list = $("#messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...(app.messages.get(c.id) ?? []).map((m) => renderMessage(c, m)));
  if (atBottom) window.scrollTo(0, document.body.scrollHeight);
}

function renderMessage(c, m) {
  if (m.dir === "system") return el("li", { class: "message", "data-direction": "system", text: m.body });
  const meta = el("span", { class: "meta" }, formatTime(m.sent_at));
  if (m.dir === "out") meta.append(` · ${m.state ?? "sent"}`);
  if (m.expiresAt) meta.append(" ", el("span", { class: "countdown", "data-expires": String(m.expiresAt), text: `disappears in ${formatCountdown((m.expiresAt - Date.now()) / 1000)}` }));
  const li = el("li", { class: "message", "data-testid": "message", "data-direction": m.dir, "data-id": m.id, "data-state": m.state ?? "" });
  if (m.type === "file") {
    const url = app.fileUrls.get(m.id);
    if (url && PREVIEWABLE.test(m.mime_type)) li.append(el("img", { src: url, alt: `Image: ${m.name}` }));
    const button = el("button", { type: "button", "data-testid": "file-download", text: "Download" });
    button.addEventListener("click", () => busy(button, () => downloadFile(c, m, true)));
    li.append(el("span", { class: "file" }, el("span", { text: `${m.name} (${formatSize(m.size)})` }), button));
  } else {
    li.append(el("span", { class: "body", text: m.body }));
  }
  li.append(meta);
  return li;
}

async function renderContact(id) {
  const c = app.contacts.get(id);
  $("#contact-name").value = c.name;
  $("#contact-name").dataset.contact = id;
  const number = await safetyNumber(app.identity.public.identityKey, c.identityKey);
  const box = $("#safety-number");
  box.replaceChildren(...groups(number).map((g) => el("span", { text: g })));
  box.dataset.digits = number;
  qr.draw($("#safety-qr"), await qrPayload(app.identity.public.identityKey, c.identityKey));
  $("#verified-state").textContent = c.verified ? "✓ You have verified this contact." : "Not verified yet.";
  $("#mark-verified").textContent = c.verified ? "Mark as not verified" : "Mark as verified";
}

async function toggleVerified() {
  const c = app.contacts.get($("#contact-name").dataset.contact);
  c.verified = !c.verified;
  await serially(() => saveContact(c));
  await renderContact(c.id);
  renderChats();
}

async function renameContact() {
  const c = app.contacts.get($("#contact-name").dataset.contact);
  c.name = $("#contact-name").value.trim() || c.name;
  await serially(() => saveContact(c));
  status("Saved.");
  renderChats();
}

async function removeContact() {
  const c = app.contacts.get($("#contact-name").dataset.contact);
  await serially(async () => {
    if (c.myMailbox) { app.relay.remove(c.myMailbox.receive_id); await app.vault.deleteKey(`owner.${c.myMailbox.receive_id}`); }
    for (const m of app.messages.get(c.id) ?? []) if (m.type === "file") await app.vault.delete(`file.${m.id}`);
    await app.vault.delete(`msgs.${c.id}`);
    await app.vault.delete(`contact.${c.id}`);
    app.contacts.delete(c.id);
    app.messages.delete(c.id);
  });
  location.hash = "#/chats";
}

boot().catch(showError);
