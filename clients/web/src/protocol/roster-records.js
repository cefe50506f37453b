/**
 * Roster records (SPEC.md 5.2) and join proofs: the clear bodies of roster entries.
 */
import { compareBytes, decode, encode, isMap, newMap } from './cbor.js';
import { Context, sign, verify } from './crypto.js';
import { AccordError, ErrorCode } from './errors.js';

export const MAX_ROSTER_RECORD_BYTES = 4096;
const MEMBER = 16;
const DEVICE = 32;
const PROOF = 64;
const KEY_ID = 8;

export const Op = Object.freeze({
  FOUND: 'found',
  ADD_DEVICE: 'add_device',
  ADD_MEMBER: 'add_member',
  REMOVE_DEVICE: 'remove_device',
  REMOVE_MEMBER: 'remove_member',
  EPOCH: 'epoch',
});

const FIELDS = {
  found: ['member', 'device'],
  add_device: ['member', 'device', 'proof'],
  add_member: ['member', 'device', 'proof'],
  remove_device: ['device', 'last_seq'],
  remove_member: ['member', 'last_seqs'],
  epoch: ['epoch', 'key_id'],
};

/** @returns {never} */
function malformed(message) {
  throw new AccordError(ErrorCode.MALFORMED, message);
}

function requireBytes(value, size, name) {
  if (!(value instanceof Uint8Array) || value.length !== size) malformed(`${name} is ${size} bytes`);
}

function requireUint(value, name) {
  if (!Number.isSafeInteger(value) || value < 0) malformed(`${name} is an unsigned integer`);
}

/**
 * Check a roster record map (SPEC.md 5.2).
 * @throws {AccordError} `malformed`
 */
export function checkRosterRecord(record) {
  if (!isMap(record)) malformed('a roster record is a map');
  const fields = typeof record.op === 'string' && Object.hasOwn(FIELDS, record.op) ? FIELDS[record.op] : null;
  if (fields === null) malformed('unknown roster op');
  const wanted = ['op', ...fields].sort();
  const present = Object.keys(record).sort();
  if (present.join() !== wanted.join()) malformed(`a ${record.op} record has exactly ${wanted.join(', ')}`);
  if ('member' in record) requireBytes(record.member, MEMBER, 'member');
  if ('device' in record) requireBytes(record.device, DEVICE, 'device');
  if ('proof' in record) requireBytes(record.proof, PROOF, 'proof');
  if ('last_seq' in record) requireUint(record.last_seq, 'last_seq');
  if ('key_id' in record) requireBytes(record.key_id, KEY_ID, 'key_id');
  if ('epoch' in record) {
    requireUint(record.epoch, 'epoch');
    if (record.epoch < 1) malformed('a rotation starts epoch 1 or later');
  }
  if ('last_seqs' in record) {
    if (!Array.isArray(record.last_seqs)) malformed('last_seqs is an array');
    record.last_seqs.forEach((item, i) => {
      if (!Array.isArray(item) || item.length !== 2) malformed('last_seqs holds [device, seq] pairs');
      requireBytes(item[0], DEVICE, 'a device in last_seqs');
      requireUint(item[1], 'a seq in last_seqs');
      if (i > 0 && compareBytes(record.last_seqs[i - 1][0], item[0]) >= 0) {
        malformed('last_seqs sorted by device, one per device');
      }
    });
  }
  return record;
}

/**
 * Decode a roster record.
 * @throws {AccordError} `oversized`, `malformed`
 */
export function decodeRosterRecord(bytes) {
  if (bytes.length > MAX_ROSTER_RECORD_BYTES) {
    throw new AccordError(ErrorCode.OVERSIZED, `a roster record is at most ${MAX_ROSTER_RECORD_BYTES} bytes`);
  }
  return checkRosterRecord(decode(bytes));
}

/** Encode a roster record after checking it. @throws {AccordError} `malformed`, `oversized` */
export function encodeRosterRecord(fields) {
  const record = checkRosterRecord(newMap(Object.entries(fields)));
  const bytes = encode(record);
  if (bytes.length > MAX_ROSTER_RECORD_BYTES) throw new AccordError(ErrorCode.OVERSIZED, 'a roster record is too large');
  return bytes;
}

function joinConsent({ space, member, device, by }) {
  return encode(newMap([['space', space], ['member', member], ['device', device], ['by', by]]));
}

/**
 * A device's consent to join `space` as `member`, written in by the device `by` (5.2).
 * @param {object} args secretKey (the joining device's, 64 bytes), space, member, by
 * @returns {Uint8Array} the 64-byte join proof
 */
export function joinProof({ secretKey, space, member, by }) {
  const device = secretKey.slice(32);
  return sign(secretKey, Context.JOIN, joinConsent({ space, member, device, by }));
}

/** Does `proof` show that `device` consented to join `space` as `member`, written by `by`? */
export function joinProofValid({ proof, space, member, device, by }) {
  return verify(device, Context.JOIN, joinConsent({ space, member, device, by }), proof);
}
