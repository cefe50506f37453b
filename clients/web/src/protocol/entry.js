/**
 * The entry envelope (SPEC.md 4.1 to 4.4): building, sealing, decoding and opening the
 * signed records that every device appends to its feed.
 *
 * Theory of operation. An entry is a canonical CBOR map. Its *header* is every field but
 * `body` and `sig`. A data entry's body is the XChaCha20-Poly1305 ciphertext of the padded
 * plaintext, with the encoded header as associated data and a key derived from the epoch
 * key, the space and the epoch; a roster entry's body is the encoded roster record, in
 * clear. The signature covers the encoding of everything but `sig`; the entry id hashes
 * the whole encoded entry.
 *
 * `decodeEntry` checks the form only. `openEntry` checks, in this order: the form, the
 * space, the author device, the signature, the chain link, the epoch, and finally opens
 * the box, so a caller learns the first thing that is wrong.
 */
import { compareBytes, bytesEqual, decode, encode, isMap, newMap } from './cbor.js';
import {
  Context,
  Person,
  aeadDecrypt,
  aeadEncrypt,
  aeadSizes,
  blake2b,
  concat,
  randomBytes,
  sign,
  u64be,
  verify,
} from './crypto.js';
import { AccordError, ErrorCode } from './errors.js';
import { MAX_BUCKET, MIN_BUCKET, pad, unpad } from './padding.js';

export const ENTRY_VERSION = 1;
export const SPACE_ID_BYTES = 16;
export const ENTRY_ID_BYTES = 32;
export const MAX_SEEN = 256;
export const MAX_ROSTER_RECORD = 4096;
export const MAX_ENTRY_BYTES = 1114128;
const DEVICE_BYTES = 32;
const SIGNATURE_BYTES = 64;

export const EntryType = Object.freeze({ DATA: 'data', ROSTER: 'roster' });

const DATA_FIELDS = ['body', 'device', 'epoch', 'nonce', 'prev', 'seen', 'seq', 'sig', 'space', 'type', 'v'];
const ROSTER_FIELDS = DATA_FIELDS.filter((field) => field !== 'nonce');

/** `H("accord:entry-id", enc(entry))`: the id of an encoded entry. */
export function entryId(encodedEntry) {
  return blake2b(Person.ENTRY_ID, encodedEntry, ENTRY_ID_BYTES);
}

/** `k = H("accord:content", space || u64be(epoch), key = epochKey)` (SPEC.md 4.3). */
export function contentKey(epochKey, space, epoch) {
  return blake2b(Person.CONTENT, concat(space, u64be(epoch)), aeadSizes().key, epochKey);
}

/** The header of an entry map: every field except `body` and `sig`. */
export function headerOf(entry) {
  const header = newMap();
  for (const [field, value] of Object.entries(entry)) {
    if (field !== 'body' && field !== 'sig') header[field] = value;
  }
  return header;
}

/**
 * Seal a data entry.
 * @param {object} args
 * @param {Uint8Array} args.secretKey the author device's Ed25519 secret key (64 bytes)
 * @param {Uint8Array} args.device the author device's public key
 * @param {Uint8Array} args.space
 * @param {number} args.seq
 * @param {Uint8Array|null} args.prev
 * @param {number} args.epoch
 * @param {Uint8Array} args.epochKey
 * @param {Array} args.seen `[device, seq, id]` triples (sorted here)
 * @param {Uint8Array} args.plaintext
 * @param {Uint8Array} [args.nonce] random when absent
 * @returns {{ bytes: Uint8Array, id: Uint8Array, entry: object }}
 * @throws {AccordError} `oversized` for a plaintext above the largest bucket
 */
export function sealData({ secretKey, device, space, seq, prev, epoch, epochKey, seen, plaintext, nonce }) {
  const header = newMap([
    ['v', ENTRY_VERSION],
    ['type', EntryType.DATA],
    ['space', space],
    ['device', device],
    ['seq', seq],
    ['prev', prev],
    ['epoch', epoch],
    ['seen', sortSeen(seen)],
    ['nonce', nonce ?? randomBytes(aeadSizes().nonce)],
  ]);
  checkForm(header, { partial: true });
  const body = aeadEncrypt(contentKey(epochKey, space, epoch), header.nonce, encode(header), pad(plaintext));
  return signEntry(secretKey, header, body);
}

/**
 * Seal a roster entry around an encoded roster record (section 5), in clear.
 * @returns {{ bytes: Uint8Array, id: Uint8Array, entry: object }}
 * @throws {AccordError} `oversized` for a record above MAX_ROSTER_RECORD bytes
 */
export function sealRoster({ secretKey, device, space, seq, prev, epoch, seen, record }) {
  if (record.length > MAX_ROSTER_RECORD) {
    throw new AccordError(ErrorCode.OVERSIZED, `a roster record is at most ${MAX_ROSTER_RECORD} bytes`);
  }
  const header = newMap([
    ['v', ENTRY_VERSION],
    ['type', EntryType.ROSTER],
    ['space', space],
    ['device', device],
    ['seq', seq],
    ['prev', prev],
    ['epoch', epoch],
    ['seen', sortSeen(seen)],
  ]);
  checkForm(header, { partial: true });
  return signEntry(secretKey, header, record);
}

function signEntry(secretKey, header, body) {
  const unsigned = newMap([...Object.entries(header), ['body', body]]);
  const sig = sign(secretKey, Context.ENTRY, encode(unsigned));
  const entry = newMap([...Object.entries(unsigned), ['sig', sig]]);
  const bytes = encode(entry);
  if (bytes.length > MAX_ENTRY_BYTES) {
    throw new AccordError(ErrorCode.OVERSIZED, `an entry is at most ${MAX_ENTRY_BYTES} bytes`);
  }
  return { bytes, id: entryId(bytes), entry };
}

function sortSeen(seen) {
  return [...(seen ?? [])].map((item) => [...item]).sort((a, b) => compareBytes(a[0], b[0]));
}

/**
 * Decode an entry and check its form against SPEC.md 4.1 and the limits of 4.4.
 * @param {Uint8Array} bytes
 * @returns {{ entry: object, id: Uint8Array }}
 * @throws {AccordError} `oversized`, `malformed` or `unsupported_version`
 */
export function decodeEntry(bytes) {
  if (bytes.length > MAX_ENTRY_BYTES) {
    throw new AccordError(ErrorCode.OVERSIZED, `an entry is at most ${MAX_ENTRY_BYTES} bytes`);
  }
  const entry = decode(bytes);
  checkForm(entry, { partial: false });
  return { entry, id: entryId(bytes) };
}

/** Does the entry's signature verify under its own `device` key? */
export function signatureValid(entry) {
  const unsigned = newMap(Object.entries(entry).filter(([field]) => field !== 'sig'));
  return verify(entry.device, Context.ENTRY, encode(unsigned), entry.sig);
}

/**
 * Open an entry as the next entry of its author's feed.
 * @param {Uint8Array} bytes the encoded entry
 * @param {object} expect
 * @param {Uint8Array} expect.space the space being read
 * @param {Uint8Array[]} expect.devices the device keys allowed to write
 * @param {Uint8Array|null} expect.prevId the id of the author's entry seq - 1, null for seq 1
 * @param {Map<number, Uint8Array>} expect.epochKeys epoch number to epoch key
 * @param {number} [expect.minEpoch] the epoch of the author's previous entry
 * @returns {{ entry: object, id: Uint8Array, plaintext: Uint8Array|null, record: Uint8Array|null }}
 *   `plaintext` for a data entry, `record` (the encoded roster record) for a roster entry
 * @throws {AccordError} `oversized`, `malformed`, `unsupported_version`, `wrong_space`,
 *   `unknown_device`, `bad_signature`, `broken_chain`, `wrong_epoch`, `decrypt_failed`,
 *   `bad_padding`
 */
export function openEntry(bytes, { space, devices, prevId, epochKeys, minEpoch = 0 }) {
  const { entry, id } = decodeEntry(bytes);
  if (!bytesEqual(entry.space, space)) {
    throw new AccordError(ErrorCode.WRONG_SPACE, 'the entry belongs to another space');
  }
  if (!devices.some((device) => bytesEqual(device, entry.device))) {
    throw new AccordError(ErrorCode.UNKNOWN_DEVICE, 'the author is not a device of this space');
  }
  if (!signatureValid(entry)) {
    throw new AccordError(ErrorCode.BAD_SIGNATURE, 'the entry signature does not verify');
  }
  const linked = prevId === null ? entry.prev === null : entry.prev !== null && bytesEqual(entry.prev, prevId);
  if (!linked) {
    throw new AccordError(ErrorCode.BROKEN_CHAIN, "prev is not the id of the author's previous entry");
  }
  if (entry.epoch < minEpoch) {
    throw new AccordError(ErrorCode.WRONG_EPOCH, "the entry's epoch is older than the feed's last");
  }
  if (entry.type === EntryType.ROSTER) return { entry, id, plaintext: null, record: entry.body };
  const epochKey = epochKeys.get(Number(entry.epoch));
  if (epochKey === undefined) {
    throw new AccordError(ErrorCode.WRONG_EPOCH, "no key is held for the entry's epoch");
  }
  const padded = aeadDecrypt(contentKey(epochKey, entry.space, entry.epoch), entry.nonce, encode(headerOf(entry)), entry.body);
  return { entry, id, plaintext: unpad(padded), record: null };
}

function checkForm(entry, { partial }) {
  if (!isMap(entry)) malformed('an entry is a map');
  if (!Object.hasOwn(entry, 'v')) malformed('an entry has a v field');
  if (entry.v !== ENTRY_VERSION) {
    if (Number.isInteger(entry.v) || typeof entry.v === 'bigint') {
      throw new AccordError(ErrorCode.UNSUPPORTED_VERSION, `entry format version ${entry.v}`);
    }
    malformed('v is an integer');
  }
  const type = entry.type;
  if (type !== EntryType.DATA && type !== EntryType.ROSTER) malformed('type is "data" or "roster"');
  let expected = type === EntryType.DATA ? DATA_FIELDS : ROSTER_FIELDS;
  if (partial) expected = expected.filter((field) => field !== 'body' && field !== 'sig');
  const fields = Object.keys(entry).sort();
  if (fields.length !== expected.length || fields.some((field, i) => field !== expected[i])) {
    malformed(`an entry of type ${type} has exactly the fields ${expected.join(', ')}`);
  }
  requireBytes(entry.space, SPACE_ID_BYTES, 'space');
  requireBytes(entry.device, DEVICE_BYTES, 'device');
  if (!isUint(entry.seq) || entry.seq < 1) malformed('seq is an integer from 1');
  if (entry.seq === 1) {
    if (entry.prev !== null) malformed('prev is null exactly when seq is 1');
  } else {
    requireBytes(entry.prev, ENTRY_ID_BYTES, 'prev');
  }
  if (!isUint(entry.epoch)) malformed('epoch is an unsigned integer');
  checkSeen(entry.seen, entry.device);
  if (type === EntryType.DATA) requireBytes(entry.nonce, aeadSizes().nonce, 'nonce');
  if (partial) return;
  if (!(entry.body instanceof Uint8Array)) malformed('body is a byte string');
  if (type === EntryType.DATA) {
    const tag = aeadSizes().tag;
    if (entry.body.length > MAX_BUCKET + tag) {
      throw new AccordError(ErrorCode.OVERSIZED, `a ciphertext is at most ${MAX_BUCKET + tag} bytes`);
    }
    if (entry.body.length < MIN_BUCKET + tag) malformed(`a ciphertext is at least ${MIN_BUCKET + tag} bytes`);
  } else if (entry.body.length > MAX_ROSTER_RECORD) {
    throw new AccordError(ErrorCode.OVERSIZED, `a roster record is at most ${MAX_ROSTER_RECORD} bytes`);
  }
  requireBytes(entry.sig, SIGNATURE_BYTES, 'sig');
}

function checkSeen(seen, ownDevice) {
  if (!Array.isArray(seen)) malformed('seen is an array');
  if (seen.length > MAX_SEEN) {
    throw new AccordError(ErrorCode.OVERSIZED, `seen holds at most ${MAX_SEEN} heads`);
  }
  let previous = null;
  for (const item of seen) {
    if (!Array.isArray(item) || item.length !== 3) malformed('a seen head is [device, seq, id]');
    const [device, seq, id] = item;
    requireBytes(device, DEVICE_BYTES, 'a seen device');
    if (!isUint(seq) || seq < 1) malformed('a seen seq is an integer from 1');
    requireBytes(id, ENTRY_ID_BYTES, 'a seen id');
    if (bytesEqual(device, ownDevice)) malformed("seen never names the author's own device");
    if (previous !== null && compareBytes(previous, device) >= 0) {
      malformed('seen is sorted by device, one head per device');
    }
    previous = device;
  }
}

function isUint(value) {
  return (Number.isSafeInteger(value) && value >= 0) || (typeof value === 'bigint' && value >= 0n);
}

function requireBytes(value, size, name) {
  if (!(value instanceof Uint8Array) || value.length !== size) malformed(`${name} is ${size} bytes`);
}

/** @returns {never} */
function malformed(message) {
  throw new AccordError(ErrorCode.MALFORMED, message);
}
