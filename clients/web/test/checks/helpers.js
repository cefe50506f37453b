/** Small helpers shared by the vector checkers. */
import { AccordError } from '../../src/protocol/errors.js';
import { fromHex, toHex } from '../../src/protocol/crypto.js';

export { fromHex, toHex };

/** A failed expectation in a vector case. */
export class Mismatch extends Error {}

/** Fail unless `actual` equals `expected` (compared as JSON after hex-encoding bytes). */
export function expectEqual(actual, expected, what) {
  const a = canonicalJson(actual);
  const e = canonicalJson(expected);
  if (a !== e) throw new Mismatch(`${what}: expected ${e}, got ${a}`);
}

/** Run `action`, which must be refused with the error code `code`. */
export function expectError(action, code, what = 'the operation') {
  try {
    action();
  } catch (error) {
    if (error instanceof AccordError) {
      if (error.code === code) return;
      throw new Mismatch(`${what}: expected error ${code}, got ${error.code} (${error.message})`);
    }
    throw error;
  }
  throw new Mismatch(`${what}: expected error ${code}, but it succeeded`);
}

/** Fail when `testCase` has a field outside `allowed` (catches typos in hand-written cases). */
export function onlyFields(testCase, allowed, what = 'case') {
  for (const field of Object.keys(testCase)) {
    if (!allowed.includes(field)) throw new Mismatch(`${what} has an unknown field "${field}"`);
  }
}

/** JSON with sorted object keys and byte strings as hex, for comparisons. */
export function canonicalJson(value) {
  return JSON.stringify(toPlain(value));
}

function toPlain(value) {
  if (value instanceof Uint8Array) return toHex(value);
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (Array.isArray(value)) return value.map(toPlain);
  if (value instanceof Map) return toPlain(Object.fromEntries(value));
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const key of Object.keys(value).sort()) out[key] = toPlain(value[key]);
    return out;
  }
  return value;
}

/** Run a case whose `expect` is either a result or `{ error }`. */
export function resultOrError(expect, action, compare, what) {
  if (expect !== null && typeof expect === 'object' && 'error' in expect) {
    expectError(action, expect.error, what);
    return;
  }
  compare(action());
}
