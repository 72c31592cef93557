// Small DOM helpers and the plain-language wording of every error the client can meet.

import { ApiError, NetworkError } from "./transport.js";
import { WrongPassphrase } from "./storage.js";
import { CryptoError } from "./primitives.js";
import { EncodingError } from "./encoding.js";

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// el("li", {class: "x", dataset: {testid: "y"}}, "text", child, ...): never innerHTML, so
// nothing a contact sends can become markup.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const API_WORDS = {
  rate_limited: "The server is busy with too many requests from this browser. Wait a minute and try again.",
  unknown_handle: "This contact link no longer works: its owner's keys are gone from this server. Ask them for a new link.",
  mailbox_not_found: "This contact's mailbox no longer exists. Ask them for a new contact link.",
  quota_exceeded: "The server's storage limit for you is reached. Try again later.",
  blob_too_large: "This file is larger than this server accepts.",
  download_limit_reached: "This file has already been downloaded as many times as allowed.",
  blob_expired: "This file has expired on the server.",
  blob_not_found: "This file is no longer on the server.",
  blob_shredded: "This file has expired on the server.",
  body_too_large: "That is too large to send.",
};

export function explain(error) {
  if (error instanceof WrongPassphrase) return "That passphrase is not right. Try again.";
  if (error instanceof NetworkError) return "Cannot reach the server. Check your connection; Courier will keep trying.";
  if (error instanceof ApiError) return API_WORDS[error.code] ?? `The server refused this (${error.message || error.code}).`;
  if (error instanceof EncodingError) return "That does not look like a Courier contact link. Copy the whole link and try again.";
  if (error instanceof CryptoError) {
    if (error.name === "InvalidBundle") return "This contact's keys do not match their link. Do not trust it; ask them for a new link.";
    return "A message could not be decrypted and was ignored.";
  }
  if (error && error.userMessage) return error.userMessage;
  return "Something went wrong. Try again.";
}

export class UserError extends Error {
  constructor(message) { super(message); this.userMessage = message; }
}

export function formatTime(seconds) {
  return new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function formatSize(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function formatCountdown(seconds) {
  if (seconds >= 86400) return `${Math.ceil(seconds / 86400)} d`;
  if (seconds >= 3600) return `${Math.ceil(seconds / 3600)} h`;
  if (seconds >= 60) return `${Math.ceil(seconds / 60)} min`;
  return `${Math.max(0, Math.ceil(seconds))} s`;
}

// Report CSP violations to the console so tests (and people) see them.
export function watchCsp() {
  document.addEventListener("securitypolicyviolation", (e) => {
    console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`);
  });
}
