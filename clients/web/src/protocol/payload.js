/**
 * Entry payloads (SPEC.md 7.1) and document names (7.2).
 *
 * The plaintext of every data entry is `{v: 1, at, updates: [{doc, update}, ...]}` with
 * the updates sorted by document name, at most one per document.
 */
import { decode, encode, isMap, newMap } from './cbor.js';
import { AccordError, ErrorCode } from './errors.js';
import { MAX_PLAINTEXT } from './padding.js';

export const PAYLOAD_VERSION = 1;
export const MAX_UPDATES = 64;
export const MAX_UPDATE_BYTES = 524288;
export const SHARED_DOC = 'shared';
const VOICE = /^voice\/([0-9a-f]{32})$/;

/** @returns {never} */
function malformed(message) {
  throw new AccordError(ErrorCode.MALFORMED, message);
}

/** The voice document name of a member (16-byte id). */
export function voiceDoc(memberHex) {
  return `voice/${memberHex}`;
}

/** The member hex a document name is the voice of, or null (for `shared`). @throws `malformed` */
export function voiceOwner(doc) {
  if (doc === SHARED_DOC) return null;
  const match = VOICE.exec(doc);
  if (match === null) malformed(`"${doc}" is not a document name`);
  return match[1];
}

function compareAscii(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Encode a payload.
 * @param {number} at milliseconds since the Unix epoch
 * @param {Array<{doc: string, update: Uint8Array}>} updates
 * @throws {AccordError} `malformed`, `oversized`
 */
export function encodePayload(at, updates) {
  const sorted = [...updates].sort((a, b) => compareAscii(a.doc, b.doc));
  const payload = newMap([
    ['v', PAYLOAD_VERSION],
    ['at', at],
    ['updates', sorted.map(({ doc, update }) => newMap([['doc', doc], ['update', update]]))],
  ]);
  checkPayload(payload);
  const bytes = encode(payload);
  if (bytes.length > MAX_PLAINTEXT) throw new AccordError(ErrorCode.OVERSIZED, 'a payload is at most 1,048,575 bytes');
  return bytes;
}

/**
 * Decode a payload.
 * @returns {{ at: number, updates: Array<{doc: string, update: Uint8Array}> }}
 * @throws {AccordError} `malformed`, `unsupported_version`, `oversized`
 */
export function decodePayload(bytes) {
  if (bytes.length > MAX_PLAINTEXT) throw new AccordError(ErrorCode.OVERSIZED, 'a payload is at most 1,048,575 bytes');
  const payload = decode(bytes);
  checkPayload(payload);
  return { at: payload.at, updates: payload.updates.map((u) => ({ doc: u.doc, update: u.update })) };
}

function checkPayload(payload) {
  if (!isMap(payload)) malformed('a payload is a map');
  if (payload.v !== PAYLOAD_VERSION) {
    if (Number.isInteger(payload.v)) throw new AccordError(ErrorCode.UNSUPPORTED_VERSION, `payload version ${payload.v}`);
    malformed('a payload has v = 1');
  }
  if (Object.keys(payload).sort().join() !== 'at,updates,v') malformed('a payload has exactly v, at, updates');
  if (!Number.isSafeInteger(payload.at) || payload.at < 0) malformed('at is a time');
  const updates = payload.updates;
  if (!Array.isArray(updates) || updates.length < 1 || updates.length > MAX_UPDATES) {
    malformed(`a payload carries 1 to ${MAX_UPDATES} updates`);
  }
  updates.forEach((item, i) => {
    if (!isMap(item) || Object.keys(item).sort().join() !== 'doc,update') malformed('an update is {doc, update}');
    if (typeof item.doc !== 'string') malformed('doc is a name');
    voiceOwner(item.doc);
    if (!(item.update instanceof Uint8Array) || item.update.length < 1 || item.update.length > MAX_UPDATE_BYTES) {
      malformed('an update is 1 to 524,288 bytes');
    }
    if (i > 0 && compareAscii(updates[i - 1].doc, item.doc) >= 0) malformed('updates sorted by doc, one per doc');
  });
}
