// Contact links (docs/protocol.md section 13): https://<host>/c#<payload>. The fragment
// never reaches the server. payload = b64u(0x01 || u8 len || handle || u8 len || intro
// mailbox send capability || identity fingerprint (32) || intro key (32)).

import { EncodingError, Reader, b64uDecode, b64uEncode, concat, fromUtf8, u8, utf8 } from "./encoding.js";

export const LINK_VERSION = 0x01;
const TOKEN_RE = /^[\x21-\x7e]{1,255}$/;
const HOST_RE = /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/;

export function linkPayload(link) {
  for (const t of [link.handle, link.introMailbox]) {
    if (!TOKEN_RE.test(t)) throw new EncodingError("handle and capability must be 1-255 printable ASCII chars");
  }
  if (link.fingerprint.length !== 32 || link.introKey.length !== 32) throw new EncodingError("fingerprint and intro key must be 32 bytes");
  return concat(u8(LINK_VERSION), u8(link.handle.length), utf8(link.handle), u8(link.introMailbox.length), utf8(link.introMailbox), link.fingerprint, link.introKey);
}

export function linkUrl(link) {
  if (!HOST_RE.test(link.host)) throw new EncodingError("bad host");
  return `https://${link.host}/c#${b64uEncode(linkPayload(link))}`;
}

function token(r) {
  const text = fromUtf8(r.take(r.u8()));
  if (!TOKEN_RE.test(text)) throw new EncodingError("bad token");
  return text;
}

export function parseContactLink(text) {
  const m = /^https:\/\/([^/?#]+)\/c#([A-Za-z0-9_-]+)$/.exec(text.trim());
  if (!m) throw new EncodingError("not a contact link");
  if (!HOST_RE.test(m[1])) throw new EncodingError("bad host");
  const r = new Reader(b64uDecode(m[2]));
  if (r.u8() !== LINK_VERSION) throw new EncodingError("unknown contact link version");
  const handle = token(r), introMailbox = token(r);
  const fingerprint = r.take(32), introKey = r.take(32);
  r.end();
  return { host: m[1], handle, introMailbox, fingerprint, introKey };
}
