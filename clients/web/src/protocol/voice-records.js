/**
 * Records in voices (SPEC.md 7.3) and crisis plan steps (7.4), beyond the agreement
 * rule's own records (8.1, agreement-records.js).
 *
 * Every record is a canonical map with `v` = 1 and a `type`, at most 32,768 bytes, stored
 * in its member's voice under its record key. Reading a voice checks each value and keeps
 * only what passes; a record of a type this client does not know is kept but ignored.
 */
import { decode, encode, isMap, newMap } from './cbor.js';
import { Person, blake2b, toHex } from './crypto.js';
import { AccordError, ErrorCode } from './errors.js';
import { MAX_RECORD_BYTES, RecordType, checkRecord } from './agreement-records.js';

export const RECORD_KEY_BYTES = 32;
export const REPAIR_STEPS = Object.freeze([
  'crossing', 'acknowledgement', 'apology', 'corrective-action', 'prevention-plan', 'close',
]);
export const PLAN_SECTIONS = Object.freeze(['de-escalation', 'cooling-off', 'return-to-intimacy']);
const RULE_TYPES = new Set(Object.values(RecordType));

/** `H("accord:record", bytes)` as 64 hex digits: where a non-version record is stored. */
export function recordHash(bytes) {
  return blake2b(Person.RECORD, bytes, RECORD_KEY_BYTES);
}

/** The key a record is stored under in `records` (7.3). */
export function recordKey(record, bytes) {
  return record.type === RecordType.VERSION ? toHex(record.id) : toHex(recordHash(bytes));
}

/** @returns {never} */
function malformed(message) {
  throw new AccordError(ErrorCode.MALFORMED, message);
}

const isTime = (value) => Number.isSafeInteger(value) && value >= 0;
const utf8Length = (text) => new TextEncoder().encode(text).length;

function bytesOf(value, size, name) {
  if (!(value instanceof Uint8Array) || value.length !== size) malformed(`${name} is ${size} bytes`);
}

function text(value, min, max, name) {
  if (typeof value !== 'string' || utf8Length(value) < min || utf8Length(value) > max) {
    malformed(`${name} is text of ${min} to ${max} bytes`);
  }
}

function time(value, name) {
  if (!isTime(value)) malformed(`${name} is a time`);
}

function fields(record, list) {
  if (Object.keys(record).sort().join() !== [...list, 'v', 'type'].sort().join()) {
    malformed(`a ${record.type} record has exactly v, type, ${list.join(', ')}`);
  }
}

const CHECKERS = {
  checkin(r) {
    fields(r, ['member', 'id', 'at', 'safety', 'feels_safe', 'triggering', 'would_help']);
    bytesOf(r.member, 16, 'member');
    bytesOf(r.id, 16, 'id');
    time(r.at, 'at');
    if (!Number.isInteger(r.safety) || r.safety < 1 || r.safety > 5) malformed('safety is 1 to 5');
    for (const name of ['feels_safe', 'triggering', 'would_help']) text(r[name], 0, 4096, name);
  },
  repair(r) {
    fields(r, ['member', 'id', 'repair', 'step', 'text', 'at', 'harmed']);
    bytesOf(r.member, 16, 'member');
    bytesOf(r.id, 16, 'id');
    bytesOf(r.repair, 16, 'repair');
    if (!REPAIR_STEPS.includes(r.step)) malformed('unknown repair step');
    text(r.text, 0, 16384, 'text');
    time(r.at, 'at');
    if (r.step === 'crossing') bytesOf(r.harmed, 16, 'harmed');
    else if (r.harmed !== null) malformed('harmed is set on the crossing only');
  },
  'plan-optin'(r) {
    fields(r, ['member', 'step', 'step_hash', 'at', 'expires_at']);
    bytesOf(r.member, 16, 'member');
    bytesOf(r.step, 16, 'step');
    bytesOf(r.step_hash, 32, 'step_hash');
    time(r.at, 'at');
    if (r.expires_at !== null) time(r.expires_at, 'expires_at');
  },
  journal(r) {
    fields(r, ['member', 'id', 'at', 'text']);
    bytesOf(r.member, 16, 'member');
    bytesOf(r.id, 16, 'id');
    time(r.at, 'at');
    text(r.text, 0, 16384, 'text');
  },
  profile(r) {
    fields(r, ['member', 'name', 'at']);
    bytesOf(r.member, 16, 'member');
    text(r.name, 1, 256, 'name');
    time(r.at, 'at');
  },
};

/** The member a record speaks for: `member`, or a version's `author`. */
export function speaker(record) {
  return record.type === RecordType.VERSION ? record.author : record.member;
}

/**
 * Check a record map of any known type (8.1 or 7.3).
 * @returns {boolean} false for a record of an unknown type (kept but ignored)
 * @throws {AccordError} `malformed`, `unsupported_version`, `version_id_mismatch`
 */
export function checkVoiceRecord(record) {
  if (!isMap(record)) malformed('a record is a map');
  if (record.v !== 1) {
    if (Number.isInteger(record.v)) throw new AccordError(ErrorCode.UNSUPPORTED_VERSION, `record version ${record.v}`);
    malformed('a record has v = 1');
  }
  if (typeof record.type !== 'string') malformed('a record has a type');
  if (RULE_TYPES.has(record.type)) {
    checkRecord(record, { stored: true });
    return true;
  }
  const checker = Object.hasOwn(CHECKERS, record.type) ? CHECKERS[record.type] : null;
  if (checker === null) return false;
  checker(record);
  return true;
}

/** Encode a record of any known type, after checking it. */
export function encodeVoiceRecord(fieldsMap) {
  const record = newMap(Object.entries(fieldsMap));
  if (!checkVoiceRecord(record)) malformed('unknown record type');
  const bytes = encode(record);
  if (bytes.length > MAX_RECORD_BYTES) throw new AccordError(ErrorCode.OVERSIZED, 'a record is at most 32,768 bytes');
  return { record, bytes, key: recordKey(record, bytes) };
}

/**
 * Read one value of a voice's `records` map (SPEC.md 7.3, "Reading a voice").
 * @param {string} key the map key
 * @param {unknown} value the stored value
 * @param {string} ownerHex the member whose voice this is
 * @returns {{ record: object, known: boolean }}
 * @throws {AccordError} `malformed`, `oversized`, `unsupported_version`,
 *   `version_id_mismatch`, `not_author`
 */
export function readVoiceValue(key, value, ownerHex) {
  if (!(value instanceof Uint8Array)) malformed('a stored record is bytes');
  if (value.length > MAX_RECORD_BYTES) throw new AccordError(ErrorCode.OVERSIZED, 'a record is at most 32,768 bytes');
  const record = decode(value);
  const known = checkVoiceRecord(record);
  if (!known) return { record, known };
  if (key !== recordKey(record, value)) malformed('the key is not the record key of the bytes');
  const who = speaker(record);
  if (toHex(who) !== ownerHex) throw new AccordError(ErrorCode.NOT_AUTHOR, "a record in another member's voice");
  return { record, known };
}

/**
 * Check a crisis plan step (7.4) stored under `keyHex`.
 * @throws {AccordError} `malformed`
 */
export function readPlanStep(keyHex, value) {
  if (!(value instanceof Uint8Array)) malformed('a step is bytes');
  const r = decode(value);
  if (!isMap(r) || r.v !== 1 || r.type !== 'plan-step') malformed('a plan step is {v: 1, type: "plan-step", ...}');
  fields(r, ['id', 'section', 'text', 'position', 'by', 'at', 'minutes']);
  bytesOf(r.id, 16, 'id');
  if (toHex(r.id) !== keyHex) malformed('the step id is not the id its key names');
  if (!PLAN_SECTIONS.includes(r.section)) malformed('unknown plan section');
  text(r.text, 1, 4096, 'text');
  if (!Number.isSafeInteger(r.position) || r.position < 0) malformed('position is an unsigned integer');
  bytesOf(r.by, 16, 'by');
  time(r.at, 'at');
  if (r.minutes !== null && (!Number.isInteger(r.minutes) || r.minutes < 1 || r.minutes > 10080)) {
    malformed('minutes is 1 to 10,080 or null');
  }
  return r;
}

/** Encode a plan step. */
export function encodePlanStep(fieldsMap) {
  const bytes = encode(newMap([['v', 1], ['type', 'plan-step'], ...Object.entries(fieldsMap)]));
  readPlanStep(toHex(fieldsMap.id), bytes);
  return bytes;
}
