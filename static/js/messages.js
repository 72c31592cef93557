// Plaintext payloads inside the ratchet (docs/protocol.md section 11): canonical JSON with
// v = 1, a type, a random 16-byte id and the sender's clock in seconds. Unknown fields are
// ignored; wrong types and unknown types are refused.

import { EncodingError, b64uDecode, b64uEncode, canonicalJson, fromUtf8 } from "./encoding.js";
import * as p from "./primitives.js";

export const MESSAGE_VERSION = 1;
export const MESSAGE_ID_LEN = 16;
export const MAX_TIMER_SECONDS = 365 * 24 * 3600;

export const newMessageId = (rng = p.systemRandom) => rng(MESSAGE_ID_LEN);
export const nowSeconds = () => Math.floor(Date.now() / 1000);

// message: {type, id (bytes), sent_at, ...type fields}; binary fields are bytes here.
export function encodeMessage(m) {
  const obj = { v: MESSAGE_VERSION, type: m.type, id: b64uEncode(m.id), sent_at: m.sent_at };
  switch (m.type) {
    case "text": obj.body = m.body; break;
    case "file":
      Object.assign(obj, {
        blob_id: m.blob_id, download_capability: m.download_capability, key: b64uEncode(m.key),
        digest: b64uEncode(m.digest), size: m.size, chunk_size: m.chunk_size,
        chunk_count: m.chunk_count, name: m.name, mime_type: m.mime_type,
      });
      break;
    case "timer": obj.seconds = m.seconds; break;
    case "receipt": obj.message_ids = m.message_ids.map(b64uEncode); break;
    case "reply_here": obj.mailbox = m.mailbox; break;
    default: throw new EncodingError(`unknown payload type ${m.type}`);
  }
  return canonicalJson(obj);
}

function get(obj, key, kind) {
  const v = obj[key];
  const ok = kind === "int" ? Number.isSafeInteger(v) && v >= 0 : kind === "list" ? Array.isArray(v) : typeof v === kind;
  if (!ok) throw new EncodingError(`field ${key} missing or not a ${kind}`);
  return v;
}

export function decodeMessage(data) {
  let obj;
  try { obj = JSON.parse(fromUtf8(data)); } catch { throw new EncodingError("payload is not UTF-8 JSON"); }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new EncodingError("payload is not a JSON object");
  if (get(obj, "v", "int") !== MESSAGE_VERSION) throw new EncodingError("unknown payload version");
  const type = get(obj, "type", "string");
  const base = { type, id: b64uDecode(get(obj, "id", "string"), MESSAGE_ID_LEN), sent_at: get(obj, "sent_at", "int") };
  switch (type) {
    case "text": return { ...base, body: get(obj, "body", "string") };
    case "file": return {
      ...base, blob_id: get(obj, "blob_id", "string"), download_capability: get(obj, "download_capability", "string"),
      key: b64uDecode(get(obj, "key", "string"), 32), digest: b64uDecode(get(obj, "digest", "string"), 32),
      size: get(obj, "size", "int"), chunk_size: get(obj, "chunk_size", "int"), chunk_count: get(obj, "chunk_count", "int"),
      name: get(obj, "name", "string"), mime_type: get(obj, "mime_type", "string"),
    };
    case "timer": {
      const seconds = get(obj, "seconds", "int");
      if (seconds > MAX_TIMER_SECONDS) throw new EncodingError("timer too long");
      return { ...base, seconds };
    }
    case "receipt": {
      const ids = get(obj, "message_ids", "list");
      if (!ids.every((i) => typeof i === "string")) throw new EncodingError("message_ids must be strings");
      return { ...base, message_ids: ids.map((i) => b64uDecode(i, MESSAGE_ID_LEN)) };
    }
    case "reply_here": return { ...base, mailbox: get(obj, "mailbox", "string") };
    default: throw new EncodingError(`unknown payload type ${type}`);
  }
}
