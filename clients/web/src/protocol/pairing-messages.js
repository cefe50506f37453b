/**
 * Pairing messages (SPEC.md 11.6) and sealed boxes (SPEC.md 11.7).
 *
 * `pake`, `hello` and `sealed` travel as they are; `offer`, `request`, `welcome`,
 * `decline` and `done` travel only inside a sealed box. Every message is a canonical CBOR
 * map with exactly its listed fields; decoders refuse anything else with `malformed`.
 * The optional fields (the member's private space in self pairing, SPEC.md 11.12) are
 * absent when unused, never null.
 */
import { bytesEqual, compareBytes, decode, encode, isMap, newMap } from './cbor.js';
import { aeadDecrypt, aeadEncrypt } from './crypto.js';
import { AccordError, ErrorCode } from './errors.js';
import { checkRelayUrl } from './pairing-uri.js';
import { MESSAGE_BYTES as PAKE_BYTES } from './spake2.js';

export const PAIRING_VERSION = 1;
export const MAX_MESSAGE_BYTES = 16384;
export const SEAL_BLOCK = 256;
export const MAX_SEALED_PLAINTEXT = 16127;
export const MAX_BOX_SEQ = 15;
export const MAX_WELCOME_ITEMS = 256;
const NONCE_BYTES = 24;
const KEY_BYTES = 32;
const MAC_BYTES = 32;
const SPACE_BYTES = 16;
const MEMBER_BYTES = 16;
const DEVICE_BYTES = 32;
const PROOF_BYTES = 64;
const ENTRY_ID_BYTES = 32;
const MAX_NAME_CHARS = 64;
const FORBIDDEN_IN_NAMES = /[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/u;

/** @returns {never} */
function malformed(message) {
  throw new AccordError(ErrorCode.MALFORMED, message);
}

function requireFields(message, fields, what, optional = null) {
  if (optional !== null && optional in message) {
    if (message[optional] === null) malformed(`${optional} is left out when unused, never null`);
    fields = [...fields, optional];
  }
  const present = Object.keys(message).sort();
  const wanted = [...fields].sort();
  if (present.length !== wanted.length || present.some((field, i) => field !== wanted[i])) {
    malformed(`a ${what} message has exactly the fields ${fields.join(', ')}`);
  }
}

function requireBytes(value, size, what) {
  if (!(value instanceof Uint8Array) || value.length !== size) malformed(`${what} is ${size} bytes`);
}

function requireVersion(message) {
  if (message.v === PAIRING_VERSION) return;
  if (Number.isInteger(message.v) || typeof message.v === 'bigint') {
    throw new AccordError(ErrorCode.UNSUPPORTED_VERSION, `pairing message version ${message.v}`);
  }
  malformed('v is an integer');
}

/**
 * Check a display name: 1 to 64 characters of NFC text, no blank at either end, nothing
 * of the categories Cc, Cf, Cs, Co, Cn, Zl or Zp.
 * @throws {AccordError} `malformed`
 */
export function checkDisplayName(name) {
  if (typeof name !== 'string') malformed('a display name is text');
  const length = [...name].length;
  if (length < 1 || length > MAX_NAME_CHARS) malformed(`a display name is 1 to ${MAX_NAME_CHARS} characters`);
  if (name.normalize('NFC') !== name) malformed('a display name is NFC-normalised');
  if (/^\s|\s$/u.test(name)) malformed('a display name has no blank at either end');
  if (FORBIDDEN_IN_NAMES.test(name)) malformed('a display name has no control, format or unassigned characters');
  return name;
}

function decodeMap(bytes) {
  if (!(bytes instanceof Uint8Array)) malformed('a message is bytes');
  if (bytes.length > MAX_MESSAGE_BYTES) {
    throw new AccordError(ErrorCode.OVERSIZED, `a pairing message is at most ${MAX_MESSAGE_BYTES} bytes`);
  }
  const message = decode(bytes);
  if (!isMap(message) || typeof message.type !== 'string') malformed('a pairing message is a map with a type');
  return message;
}

// ---- clear messages -------------------------------------------------------------------

export function encodePake(pake) {
  return encode(newMap([['type', 'pake'], ['v', PAIRING_VERSION], ['pake', pake]]));
}

export function encodeHello({ mode, key, pake, mac }) {
  const fields = [['type', 'hello'], ['v', PAIRING_VERSION], ['mode', mode], ['mac', mac]];
  fields.push(mode === 'qr' ? ['key', key] : ['pake', pake]);
  return encode(newMap(fields));
}

export function encodeSealed(seq, box) {
  return encode(newMap([['type', 'sealed'], ['seq', seq], ['box', box]]));
}

/**
 * Decode a message that travels in clear: `pake`, `hello` or `sealed`.
 * @throws {AccordError} `oversized`, `malformed`, `unsupported_version`
 */
export function decodeClear(bytes) {
  const message = decodeMap(bytes);
  switch (message.type) {
    case 'pake':
      requireVersion(message);
      requireFields(message, ['type', 'v', 'pake'], 'pake');
      requireBytes(message.pake, PAKE_BYTES, 'pake');
      return message;
    case 'hello':
      requireVersion(message);
      if (message.mode === 'qr') {
        requireFields(message, ['type', 'v', 'mode', 'key', 'mac'], 'hello');
        requireBytes(message.key, KEY_BYTES, 'key');
      } else if (message.mode === 'code') {
        requireFields(message, ['type', 'v', 'mode', 'pake', 'mac'], 'hello');
        requireBytes(message.pake, PAKE_BYTES, 'pake');
      } else {
        malformed('the hello mode is qr or code');
      }
      requireBytes(message.mac, MAC_BYTES, 'mac');
      return message;
    case 'sealed':
      requireFields(message, ['type', 'seq', 'box'], 'sealed');
      if (!Number.isInteger(message.seq) || message.seq < 0 || message.seq > MAX_BOX_SEQ) {
        malformed(`seq is 0 to ${MAX_BOX_SEQ}`);
      }
      if (!(message.box instanceof Uint8Array)) malformed('box is bytes');
      return message;
    default:
      return malformed(`"${message.type}" does not travel in clear`);
  }
}

// ---- sealed boxes ---------------------------------------------------------------------

function boxNonce(seq) {
  const nonce = new Uint8Array(NONCE_BYTES);
  nonce[NONCE_BYTES - 1] = seq;
  return nonce;
}

function boxAd(seq) {
  return encode(newMap([['type', 'sealed'], ['seq', seq]]));
}

/**
 * Seal an encoded inner message as box number `seq` of one direction.
 * @throws {AccordError} `oversized` above MAX_SEALED_PLAINTEXT bytes
 */
export function sealInner(key, seq, inner) {
  if (inner.length > MAX_SEALED_PLAINTEXT) {
    throw new AccordError(ErrorCode.OVERSIZED, `a sealed plaintext is at most ${MAX_SEALED_PLAINTEXT} bytes`);
  }
  const padded = new Uint8Array((Math.floor(inner.length / SEAL_BLOCK) + 1) * SEAL_BLOCK);
  padded.set(inner);
  padded[inner.length] = 0x80;
  return encodeSealed(seq, aeadEncrypt(key, boxNonce(seq), boxAd(seq), padded));
}

/**
 * Open a decoded `sealed` message, which must be box number `expectedSeq`.
 * @returns {Uint8Array} the encoded inner message
 * @throws {AccordError} `unexpected_message` for another seq, `decrypt_failed`, `bad_padding`
 */
export function openInner(key, expectedSeq, sealed) {
  if (sealed.seq !== expectedSeq) {
    throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, `expected box ${expectedSeq}, got ${sealed.seq}`);
  }
  const padded = aeadDecrypt(key, boxNonce(sealed.seq), boxAd(sealed.seq), sealed.box);
  let end = padded.length - 1;
  while (end >= 0 && padded[end] === 0) end -= 1;
  const wellFormed =
    padded.length % SEAL_BLOCK === 0 &&
    padded.length > 0 &&
    end >= 0 &&
    padded[end] === 0x80 &&
    padded.length === (Math.floor(end / SEAL_BLOCK) + 1) * SEAL_BLOCK;
  if (!wellFormed) throw new AccordError(ErrorCode.BAD_PADDING, 'the sealed plaintext is not padded as 11.7 says');
  return padded.slice(0, end);
}

// ---- inner messages -------------------------------------------------------------------

/** `private` (self pairing only) is the member's private space id, or null for none. */
export function encodeOffer({ purpose, space, inviter, member, name, private: privateSpace = null }) {
  const fields = [['type', 'offer'], ['purpose', purpose], ['space', space], ['inviter', inviter], ['member', member], ['name', name]];
  if (privateSpace !== null) fields.push(['private', privateSpace]);
  return encode(newMap(fields));
}

/** `privateProof` is the join proof for the offered private space, or null to leave it out. */
export function encodeRequest({ device, name, proof, privateProof = null }) {
  const fields = [['type', 'request'], ['device', device], ['name', name], ['proof', proof]];
  if (privateProof !== null) fields.push(['private_proof', privateProof]);
  return encode(newMap(fields));
}

function sortHeads(heads) {
  return [...heads].map((head) => [...head]).sort((a, b) => compareBytes(a[0], b[0]));
}

/** `private` is `{ space, heads, envelopes, added }` for the private space, or null. */
export function encodeWelcome({ space, relay, heads, envelopes, added, private: part = null }) {
  const fields = [
    ['type', 'welcome'],
    ['space', space],
    ['relay', relay],
    ['heads', sortHeads(heads)],
    ['envelopes', envelopes],
    ['added', added],
  ];
  if (part !== null) {
    const map = newMap([['space', part.space], ['heads', sortHeads(part.heads)], ['envelopes', part.envelopes], ['added', part.added]]);
    fields.push(['private', map]);
  }
  return encode(newMap(fields));
}

export function encodeDecline() {
  return encode(newMap([['type', 'decline']]));
}

export function encodeDone() {
  return encode(newMap([['type', 'done']]));
}

/**
 * Decode an inner message and check its form.
 * @throws {AccordError} `malformed`
 */
export function decodeInner(bytes) {
  const message = decodeMap(bytes);
  switch (message.type) {
    case 'offer':
      requireFields(message, ['type', 'purpose', 'space', 'inviter', 'member', 'name'], 'offer', 'private');
      if (message.purpose !== 'partner' && message.purpose !== 'self') malformed('purpose is partner or self');
      requireBytes(message.space, SPACE_BYTES, 'space');
      requireBytes(message.inviter, DEVICE_BYTES, 'inviter');
      if (message.purpose === 'self') requireBytes(message.member, MEMBER_BYTES, 'member');
      else if (message.member !== null) malformed('a partner offer names no member');
      checkDisplayName(message.name);
      if ('private' in message) {
        if (message.purpose !== 'self') malformed('only a self offer carries a private space');
        requireBytes(message.private, SPACE_BYTES, 'private');
        if (bytesEqual(message.private, message.space)) malformed('the private space is another space than the offered one');
      }
      return message;
    case 'request':
      requireFields(message, ['type', 'device', 'name', 'proof'], 'request', 'private_proof');
      requireBytes(message.device, DEVICE_BYTES, 'device');
      checkDisplayName(message.name);
      requireBytes(message.proof, PROOF_BYTES, 'proof');
      if ('private_proof' in message) requireBytes(message.private_proof, PROOF_BYTES, 'private_proof');
      return message;
    case 'welcome':
      requireFields(message, ['type', 'space', 'relay', 'heads', 'envelopes', 'added'], 'welcome', 'private');
      checkSpacePart(message);
      checkRelayUrl(message.relay);
      if ('private' in message) {
        const part = message.private;
        if (!isMap(part)) malformed("a welcome's private part is a map");
        requireFields(part, ['space', 'heads', 'envelopes', 'added'], "welcome's private part");
        checkSpacePart(part);
        if (bytesEqual(part.space, message.space)) malformed("the private space is another space than the welcome's");
      }
      return message;
    case 'decline':
      requireFields(message, ['type'], 'decline');
      return message;
    case 'done':
      requireFields(message, ['type'], 'done');
      return message;
    default:
      return malformed(`"${message.type}" is not a sealed pairing message`);
  }
}

/** The parts a welcome and its private part share: space, heads, envelopes, added. */
function checkSpacePart(part) {
  requireBytes(part.space, SPACE_BYTES, 'space');
  checkHeads(part.heads);
  if (!Array.isArray(part.envelopes) || part.envelopes.length < 1 || part.envelopes.length > MAX_WELCOME_ITEMS) {
    malformed(`a welcome carries 1 to ${MAX_WELCOME_ITEMS} envelopes`);
  }
  part.envelopes.forEach((envelope) => {
    if (!(envelope instanceof Uint8Array) || envelope.length === 0) malformed('an envelope is non-empty bytes');
  });
  if (!(part.added instanceof Uint8Array) || part.added.length === 0) malformed('added is non-empty bytes');
}

function checkHeads(heads) {
  if (!Array.isArray(heads) || heads.length < 1 || heads.length > MAX_WELCOME_ITEMS) {
    malformed(`a welcome names 1 to ${MAX_WELCOME_ITEMS} heads`);
  }
  heads.forEach((head, i) => {
    if (!Array.isArray(head) || head.length !== 3) malformed('a head is [device, seq, id]');
    requireBytes(head[0], DEVICE_BYTES, 'a head device');
    if (!Number.isSafeInteger(head[1]) || head[1] < 1) malformed('a head seq is an integer from 1');
    requireBytes(head[2], ENTRY_ID_BYTES, 'a head id');
    if (i > 0 && compareBytes(heads[i - 1][0], head[0]) >= 0) malformed('heads sorted by device, one per device');
  });
}
