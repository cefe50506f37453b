/**
 * The agreement rule's records (SPEC.md 8.1) and version ids (SPEC.md 8.2).
 *
 * Records are canonical CBOR maps; in JavaScript they are plain objects whose byte fields
 * are Uint8Array and whose times are numbers (or bigints above 2^53). `decodeRecord`
 * checks every rule of 8.1 and, for a stored version, recomputes its id.
 */
import { bytesEqual, compareBytes, decode, encode, isMap, newMap } from './cbor.js';
import { Person, blake2b } from './crypto.js';
import { AccordError, ErrorCode } from './errors.js';

export const RECORD_VERSION = 1;
export const MAX_RECORD_BYTES = 32768;
export const ID_BYTES = 16;
export const VERSION_ID_BYTES = 32;
export const MAX_PARENTS = 64;
export const MAX_LIFTS = 64;
export const MAX_TITLE_BYTES = 1024;
export const MAX_DETAILS_BYTES = 16384;

/** Levels, ordered no < ask < yes. Compare with `levelRank`, never as text. */
export const Level = Object.freeze({ NO: 'no', ASK: 'ask', YES: 'yes' });
const LEVEL_RANK = new Map([
  [Level.NO, 0],
  [Level.ASK, 1],
  [Level.YES, 2],
]);
export const KINDS = Object.freeze(['limit', 'permission', 'preference', 'signal', 'plan-step']);
export const RecordType = Object.freeze({
  VERSION: 'version',
  AFFIRMATION: 'affirmation',
  PAUSE: 'pause',
  RESUME: 'resume',
});

/** The rank of a level in the order no < ask < yes. */
export function levelRank(level) {
  const rank = LEVEL_RANK.get(level);
  if (rank === undefined) throw new AccordError(ErrorCode.MALFORMED, `unknown level ${level}`);
  return rank;
}

/** The lower of levels (no < ask < yes); `no` for an empty list. */
export function minLevel(levels) {
  let lowest = Level.YES;
  let any = false;
  for (const level of levels) {
    any = true;
    if (levelRank(level) < levelRank(lowest)) lowest = level;
  }
  return any ? lowest : Level.NO;
}

const CONTENT_FIELDS = [
  'v', 'type', 'item', 'kind', 'level', 'title', 'details', 'revisit', 'parents', 'author', 'created_at', 'expires_at',
];

/** The content map of a version: exactly the twelve fields of 8.2, without `id`. */
export function versionContent(version) {
  return newMap(CONTENT_FIELDS.map((field) => [field, version[field] === undefined ? null : version[field]]));
}

/** `version_id = H("accord:version", enc(content map), 32)` (SPEC.md 8.2). */
export function versionId(version) {
  return blake2b(Person.VERSION, encode(versionContent(version)), VERSION_ID_BYTES);
}

/**
 * Build a stored version (content plus id) from its fields.
 * @param {object} fields item, kind, level, title, details, revisit, parents, author,
 *   created_at, expires_at; parents are sorted and deduplicated here
 * @throws {AccordError} `malformed` when a field breaks 8.1
 */
export function makeVersion(fields) {
  const parents = uniqueSorted(fields.parents ?? []);
  const content = versionContent({
    ...fields,
    v: RECORD_VERSION,
    type: RecordType.VERSION,
    details: fields.details ?? '',
    revisit: fields.revisit ?? null,
    expires_at: fields.expires_at ?? null,
    parents,
  });
  const stored = newMap([...Object.entries(content), ['id', versionId(content)]]);
  checkRecord(stored, { stored: true });
  return stored;
}

/** Byte strings sorted bytewise, repeats removed. */
export function uniqueSorted(ids) {
  const sorted = [...ids].sort(compareBytes);
  return sorted.filter((id, i) => i === 0 || !bytesEqual(id, sorted[i - 1]));
}

/**
 * Decode a record; a version must be in its stored form (with `id`).
 * @throws {AccordError} `oversized`, `unsupported_version`, `malformed`, `version_id_mismatch`
 */
export function decodeRecord(bytes) {
  if (bytes.length > MAX_RECORD_BYTES) {
    throw new AccordError(ErrorCode.OVERSIZED, `a record is at most ${MAX_RECORD_BYTES} bytes`);
  }
  const record = decode(bytes);
  checkRecord(record, { stored: true });
  return record;
}

/** Encode a record canonically, after checking it. @throws {AccordError} as decodeRecord */
export function encodeRecord(record, { stored = true } = {}) {
  checkRecord(record, { stored });
  const bytes = encode(record);
  if (bytes.length > MAX_RECORD_BYTES) {
    throw new AccordError(ErrorCode.OVERSIZED, `a record is at most ${MAX_RECORD_BYTES} bytes`);
  }
  return bytes;
}

const FIELDS = {
  version: [...CONTENT_FIELDS, 'id'],
  affirmation: ['v', 'type', 'member', 'version', 'item', 'at', 'expires_at'],
  pause: ['v', 'type', 'member', 'id', 'at'],
  resume: ['v', 'type', 'member', 'id', 'at', 'lifts'],
};

/**
 * Check a record map against SPEC.md 8.1. With `stored` false a version is its content
 * map (no `id`).
 * @throws {AccordError} `unsupported_version`, `malformed`, `version_id_mismatch`
 */
export function checkRecord(record, { stored }) {
  if (!isMap(record)) malformed('a record is a map');
  if (!Object.hasOwn(record, 'v')) malformed('a record has a v field');
  if (record.v !== RECORD_VERSION) {
    if (isTime(record.v)) throw new AccordError(ErrorCode.UNSUPPORTED_VERSION, `record version ${record.v}`);
    malformed('v is an unsigned integer');
  }
  const type = record.type;
  let fields = FIELDS[typeof type === 'string' && Object.hasOwn(FIELDS, type) ? type : ''];
  if (fields === undefined) malformed('unknown record type');
  if (type === RecordType.VERSION && !stored) fields = CONTENT_FIELDS;
  const present = Object.keys(record).sort();
  const wanted = [...fields].sort();
  if (present.length !== wanted.length || present.some((field, i) => field !== wanted[i])) {
    malformed(`a ${type} record has exactly the fields ${fields.join(', ')}`);
  }
  switch (type) {
    case RecordType.VERSION:
      requireBytes(record.item, ID_BYTES, 'item');
      if (!KINDS.includes(record.kind)) malformed('unknown kind');
      if (!LEVEL_RANK.has(record.level)) malformed('unknown level');
      requireText(record.title, 1, MAX_TITLE_BYTES, 'title');
      requireText(record.details, 0, MAX_DETAILS_BYTES, 'details');
      if (record.revisit !== null && !isCalendarDate(record.revisit)) malformed('revisit is YYYY-MM-DD or null');
      requireIdList(record.parents, VERSION_ID_BYTES, 0, MAX_PARENTS, 'parents');
      requireBytes(record.author, ID_BYTES, 'author');
      requireTime(record.created_at, 'created_at');
      if (record.expires_at !== null) requireTime(record.expires_at, 'expires_at');
      if (stored) {
        requireBytes(record.id, VERSION_ID_BYTES, 'id');
        if (!bytesEqual(record.id, versionId(record))) {
          throw new AccordError(ErrorCode.VERSION_ID_MISMATCH, 'the id is not the hash of the content');
        }
      }
      return;
    case RecordType.AFFIRMATION:
      requireBytes(record.member, ID_BYTES, 'member');
      requireBytes(record.version, VERSION_ID_BYTES, 'version');
      requireBytes(record.item, ID_BYTES, 'item');
      requireTime(record.at, 'at');
      if (record.expires_at !== null) requireTime(record.expires_at, 'expires_at');
      return;
    case RecordType.PAUSE:
      requireBytes(record.member, ID_BYTES, 'member');
      requireBytes(record.id, ID_BYTES, 'id');
      requireTime(record.at, 'at');
      return;
    default:
      requireBytes(record.member, ID_BYTES, 'member');
      requireBytes(record.id, ID_BYTES, 'id');
      requireTime(record.at, 'at');
      requireIdList(record.lifts, ID_BYTES, 1, MAX_LIFTS, 'lifts');
  }
}

function isTime(value) {
  return (Number.isSafeInteger(value) && value >= 0) || (typeof value === 'bigint' && value >= 0n);
}

function requireTime(value, name) {
  if (!isTime(value)) malformed(`${name} is a time (an unsigned integer)`);
}

function requireBytes(value, size, name) {
  if (!(value instanceof Uint8Array) || value.length !== size) malformed(`${name} is ${size} bytes`);
}

function requireText(value, min, max, name) {
  if (typeof value !== 'string') malformed(`${name} is text`);
  const size = new TextEncoder().encode(value).length;
  if (size < min || size > max) malformed(`${name} is ${min} to ${max} UTF-8 bytes`);
}

function requireIdList(value, size, min, max, name) {
  if (!Array.isArray(value) || value.length < min || value.length > max) {
    malformed(`${name} holds ${min} to ${max} ids`);
  }
  value.forEach((id, i) => {
    requireBytes(id, size, `an id in ${name}`);
    if (i > 0 && compareBytes(value[i - 1], id) >= 0) malformed(`${name} sorted bytewise without repeats`);
  });
}

/** Exactly `YYYY-MM-DD` in ASCII digits, naming a real day of years 0001 to 9999. */
export function isCalendarDate(text) {
  if (typeof text !== 'string' || !/^[0-9]{4}-[0-9]{2}-[0-9]{2}$/.test(text)) return false;
  const [year, month, day] = text.split('-').map(Number);
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  return day <= days;
}

/** @returns {never} */
function malformed(message) {
  throw new AccordError(ErrorCode.MALFORMED, message);
}
