// The server's HTTP API (docs/api.md, docs/api/keys.md, docs/api/files.md) and the relay
// WebSocket (docs/api/relay.md), with reconnect and backoff. Nothing here is secret from the
// server: everything personal is already encrypted when it gets here.

import { b64uDecode, b64uEncode, concat, u64be, utf8 } from "./encoding.js";
import * as p from "./primitives.js";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}
export class NetworkError extends Error {
  constructor() { super("The server could not be reached."); this.name = "NetworkError"; }
}

const REQUEST_CONTEXT = utf8("courier-v1 request\0");
const POW_CONTEXT = utf8("courier-v1 pow\0");

async function call(method, path, { token = null, body = null, headers = {}, raw = false, signer = null } = {}) {
  const h = { ...headers };
  let payload = null;
  if (body instanceof Uint8Array) {
    payload = body;
    h["Content-Type"] = "application/octet-stream";
  } else if (body !== null) {
    payload = utf8(JSON.stringify(body));
    h["Content-Type"] = "application/json";
  }
  if (token) h.Authorization = `Bearer ${token}`;
  if (signer) Object.assign(h, await signRequest(signer, method, path, payload ?? new Uint8Array(0)));
  let response;
  try {
    response = await fetch(path, { method, headers: h, body: payload, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer" });
  } catch {
    throw new NetworkError();
  }
  if (!response.ok) {
    let code = "http_" + response.status, message = "";
    try { const e = (await response.json()).error; code = e.code; message = e.message; } catch { /* not our error shape */ }
    throw new ApiError(response.status, code, message);
  }
  if (response.status === 204) return null;
  return raw ? new Uint8Array(await response.arrayBuffer()) : response.json();
}

export const getPolicy = () => call("GET", "/api/v1/policy");
export const newChallenge = async () => b64uDecode((await call("POST", "/api/v1/challenges")).challenge, 32);

// Owner-signed request (docs/api.md): sign over a fresh single-use challenge.
async function signRequest(signingKey, method, path, body) {
  path = path.split("?")[0]; // the query is not signed (docs/api/relay.md)
  const challenge = await newChallenge();
  const message = concat(REQUEST_CONTEXT, challenge, utf8(method.toUpperCase()), Uint8Array.of(0), utf8(path), Uint8Array.of(0), await p.sha256(body));
  return { "X-Courier-Challenge": b64uEncode(challenge), "X-Courier-Signature": b64uEncode(await p.ed25519Sign(signingKey, message)) };
}

function leadingZeroBits(hash) {
  let n = 0;
  for (const b of hash) {
    if (b === 0) { n += 8; continue; }
    return n + Math.clz32(b) - 24;
  }
  return n;
}

// An anonymous session, after the proof of work the policy asks for (if any).
export async function mintSession() {
  const c = await call("POST", "/api/v1/challenges");
  const body = {};
  if (c.pow_difficulty > 0) {
    const challenge = b64uDecode(c.challenge, 32);
    for (let i = 0; ; i++) {
      const nonce = u64be(i);
      if (leadingZeroBits(await p.sha256(concat(POW_CONTEXT, challenge, nonce))) >= c.pow_difficulty) {
        Object.assign(body, { challenge: c.challenge, nonce: b64uEncode(nonce) });
        break;
      }
    }
  }
  const s = await call("POST", "/api/v1/sessions", { body });
  return { token: s.token, expiresAt: Date.parse(s.expires_at) };
}

// --- Prekey directory -------------------------------------------------------------------------

export const publishBundle = (token, handle, bundleJson, identitySigningKey) =>
  call("PUT", `/api/v1/keys/${handle}`, { token, body: bundleJson, signer: identitySigningKey });
export const claimBundle = (token, handle) => call("GET", `/api/v1/keys/${handle}`, { token });
export const deleteBundle = (token, handle, identitySigningKey) =>
  call("DELETE", `/api/v1/keys/${handle}`, { token, signer: identitySigningKey });
export const prekeyCount = (token, handle, identitySigningKey) =>
  call("GET", `/api/v1/keys/${handle}/count`, { token, signer: identitySigningKey });

// --- Blobs ------------------------------------------------------------------------------------

const capability = (cap) => ({ Authorization: `Capability ${cap}` });
export const createBlob = (token, chunkSize, chunkCount, maxDownloads = 3) =>
  call("POST", "/api/v1/blobs", { token, body: { chunk_size: chunkSize, chunk_count: chunkCount, max_downloads: maxDownloads } });
export const uploadChunk = (blobId, uploadCap, index, chunk) =>
  call("PUT", `/api/v1/blobs/${blobId}/chunks/${index}`, { body: chunk, headers: capability(uploadCap) });
export const downloadChunk = (blobId, downloadCap, index) =>
  call("GET", `/api/v1/blobs/${blobId}/chunks/${index}`, { headers: capability(downloadCap), raw: true });

// --- Mailboxes (docs/api/relay.md) ----------------------------------------------------------

const SUBSCRIBE_CONTEXT = utf8("courier-v1 relay-subscribe\0");

export const createMailbox = (token, ownerPublicKey, ttlSeconds) =>
  call("POST", "/api/v1/mailboxes", { token, body: { owner_key: b64uEncode(ownerPublicKey), ttl_seconds: ttlSeconds } });

// Owner-signed: move the mailbox's expiry to now + ttl (mailboxes live as long as we use them).
export const extendMailbox = (token, receiveId, ttlSeconds, ownerKey) =>
  call("PATCH", `/api/v1/mailboxes/${receiveId}`, { token, body: { ttl_seconds: ttlSeconds }, signer: ownerKey });

export const deleteMailbox = (token, receiveId, ownerKey) =>
  call("DELETE", `/api/v1/mailboxes/${receiveId}`, { token, signer: ownerKey });

// The owner's HTTP fallback for when the socket cannot be used.
export const fetchEnvelopes = (token, receiveId, ownerKey) =>
  call("GET", `/api/v1/mailboxes/${receiveId}/envelopes?limit=50`, { token, signer: ownerKey });
export const ackEnvelopes = (token, receiveId, ids, ownerKey) =>
  call("POST", `/api/v1/mailboxes/${receiveId}/acks`, { token, body: { ids }, signer: ownerKey });

// Sending needs only the mailbox's send id and a session: nothing says who sends.
export const sendEnvelope = (token, sendId, envelope, ttl = null) =>
  call("POST", `/api/v1/mailboxes/${sendId}/envelopes${ttl ? `?ttl=${ttl}` : ""}`, { token, body: envelope });

// The relay socket: authenticate in the first frame, subscribe each mailbox with its owner
// key's signature over the socket's challenge, receive pushed envelopes, acknowledge them
// once they are safely processed. Reconnects with exponential backoff and jitter, at once
// when the browser comes back online or the page becomes visible again. When sockets keep
// failing before they are ready (a proxy that drops WebSockets), it polls the owner-signed
// HTTP fallback every few seconds until a socket works again.
export class Relay {
  constructor({ getToken, renewToken, onEnvelope, onState }) {
    this.getToken = getToken;
    this.renewToken = renewToken;
    this.onEnvelope = onEnvelope;
    this.onState = onState;
    this.mailboxes = new Map(); // receive id (b64u) -> owner signing CryptoKey
    this.subscribed = new Set();
    this.ws = null;
    this.challenge = null;
    this.backoff = 1000;
    this.stopped = false;
    this.queue = Promise.resolve();
    this.reconnectTimer = null;
    this.pingTimer = null;
    this.failures = 0;
    this.pollTimer = null;
    this.polling = false;
    this.wake = () => { if (!this.stopped && (!this.ws || this.ws.readyState > 1)) this.connect(true); };
    window.addEventListener("online", this.wake);
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") this.wake(); });
  }

  add(receiveId, ownerKey) {
    this.mailboxes.set(receiveId, ownerKey);
    if (this.ws && this.ws.readyState === 1 && this.challenge) this.send({ type: "challenge" });
  }

  remove(receiveId) {
    this.mailboxes.delete(receiveId);
    this.subscribed.delete(receiveId);
    if (this.ws && this.ws.readyState === 1) this.send({ type: "unsubscribe", receive_id: receiveId });
  }

  send(frame) { this.ws.send(JSON.stringify(frame)); }

  connect(now = false) {
    clearTimeout(this.reconnectTimer);
    if (this.stopped) return;
    if (this.ws && this.ws.readyState <= 1) return;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${proto}//${location.host}/ws/v1/relay`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.challenge = null;
    this.subscribed.clear();
    this.onState("connecting");
    ws.onopen = async () => ws.send(JSON.stringify({ type: "auth", token: await this.getToken() }));
    ws.onmessage = (event) => {
      if (typeof event.data === "string") this.control(JSON.parse(event.data));
      else this.push(new Uint8Array(event.data));
    };
    ws.onclose = () => {
      clearInterval(this.pingTimer);
      if (this.ws !== ws) return;
      if (!ws.wasReady) this.failures += 1;
      if (this.failures >= 2) this.startPolling();
      this.onState(this.pollTimer ? "polling" : "offline");
      if (this.stopped) return;
      const delay = now ? 200 : this.backoff * (0.75 + Math.random() / 2);
      this.backoff = Math.min(this.backoff * 2, 30000);
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    };
  }

  async control(frame) {
    if (frame.type === "ready" || frame.type === "challenge") {
      this.challenge = b64uDecode(frame.challenge, 32);
      if (frame.type === "ready") {
        this.ws.wasReady = true;
        this.failures = 0;
        this.stopPolling();
        this.backoff = 1000;
        this.onState("online");
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => { if (this.ws.readyState === 1) this.send({ type: "ping" }); }, 60000);
      }
      for (const [receiveId, key] of this.mailboxes) {
        if (this.subscribed.has(receiveId)) continue;
        const rid = b64uDecode(receiveId, 16);
        const signature = await p.ed25519Sign(key, concat(SUBSCRIBE_CONTEXT, this.challenge, rid));
        this.send({ type: "subscribe", receive_id: receiveId, challenge: frame.challenge, signature: b64uEncode(signature) });
        this.subscribed.add(receiveId);
      }
    } else if (frame.type === "error" && frame.code === "unauthorized") {
      await this.renewToken();
    } else if (frame.type === "subscribe_refused") {
      this.subscribed.delete(frame.receive_id);
    }
  }

  // Push frame: 0x01 || envelope id (16) || receive id (16) || u64be expiry || envelope.
  push(data) {
    if (data[0] !== 0x01 || data.length < 41) return;
    const envelopeId = b64uEncode(data.slice(1, 17));
    const receiveId = b64uEncode(data.slice(17, 33));
    const envelope = data.slice(41);
    const ws = this.ws;
    this.queue = this.queue.then(async () => {
      // onEnvelope returns once the envelope is stored or found unreadable for good (it can
      // never become readable later); it throws on a passing failure, and then the envelope
      // stays queued on the server and comes again with the next resync or reconnect.
      try {
        await this.onEnvelope(receiveId, envelopeId, envelope);
      } catch (e) {
        console.warn("an envelope will be retried:", e.message);
        return;
      }
      if (ws.readyState === 1) ws.send(JSON.stringify({ type: "ack", ids: [envelopeId] }));
    });
  }

  startPolling() {
    if (this.pollTimer || this.stopped) return;
    this.pollTimer = setInterval(() => this.poll(), 4000);
    this.poll();
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }

  async poll() {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const [receiveId, key] of this.mailboxes) {
        const { envelopes } = await fetchEnvelopes(await this.getToken(), receiveId, key);
        if (!envelopes.length) continue;
        const done = [];
        for (const e of envelopes) {
          this.queue = this.queue.then(async () => {
            try {
              await this.onEnvelope(receiveId, e.id, b64uDecode(e.envelope));
              done.push(e.id);
            } catch (err) {
              console.warn("an envelope will be retried:", err.message);
            }
          });
        }
        await this.queue;
        if (done.length) await ackEnvelopes(await this.getToken(), receiveId, done, key);
      }
    } catch (e) {
      console.warn("polling the mailboxes failed; retrying:", e.message);
    } finally {
      this.polling = false;
    }
  }

  stop() {
    this.stopped = true;
    this.stopPolling();
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    window.removeEventListener("online", this.wake);
    if (this.ws) this.ws.close();
  }
}
