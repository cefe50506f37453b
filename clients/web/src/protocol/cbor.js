/**
 * Canonical CBOR (SPEC.md section 2): the deterministic encoding that everything hashed
 * or signed in Accord is written in.
 *
 * The data model, and how each CBOR type appears in JavaScript:
 *
 *   major 0, 1   integers in the signed 64-bit range: a `number` when it is a safe
 *                integer, a `bigint` otherwise (both are accepted when encoding)
 *   major 2      `Uint8Array`
 *   major 3      `string` (UTF-8)
 *   major 4      `Array`
 *   major 5      a plain object with text keys; decoded maps have no prototype
 *   major 7      `false`, `true`, `null`
 *
 * Floats, tags, `undefined`, other simple values and indefinite lengths never appear.
 * `decode` is strict: it refuses with `malformed` anything that is not exactly the
 * canonical encoding of a value in this model, and it re-encodes what it read and compares
 * the bytes as a final check.
 */
import { AccordError, ErrorCode, UsageError } from './errors.js';

/** Containers may nest at most this deep (SPEC.md section 2). */
export const MAX_DEPTH = 16;

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);
const UTF8 = new TextEncoder();
const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Encode a value of the data model canonically.
 * @param {unknown} value
 * @returns {Uint8Array}
 * @throws {UsageError} when the value is outside the data model (a local programming error)
 */
export function encode(value) {
  const out = new ByteSink();
  writeValue(out, value, 0);
  return out.bytes();
}

/**
 * Decode canonical CBOR.
 * @param {Uint8Array} data
 * @returns {any}
 * @throws {AccordError} `malformed` for anything that is not the canonical encoding of a
 *   value in the data model (including trailing bytes)
 */
export function decode(data) {
  if (!(data instanceof Uint8Array)) throw new UsageError('decode expects a Uint8Array');
  const reader = new Reader(data);
  const value = reader.readValue(0);
  if (reader.offset !== data.length) malformed('trailing bytes after the CBOR item');
  const again = encode(value);
  if (!bytesEqual(again, data)) malformed('not the canonical encoding');
  return value;
}

/** @returns {never} */
function malformed(message) {
  throw new AccordError(ErrorCode.MALFORMED, message);
}

/** Bytewise equality of two byte strings. */
export function bytesEqual(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}

/** Bytewise order of two byte strings: negative, zero or positive. */
export function compareBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** Is this value a CBOR map in our model (a plain object)? */
export function isMap(value) {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value) || value instanceof Uint8Array) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === null || proto === Object.prototype;
}

/** A new empty map, safe for any key (no prototype). */
export function newMap(entries = []) {
  const map = Object.create(null);
  for (const [key, value] of entries) map[key] = value;
  return map;
}

class ByteSink {
  constructor() {
    this.buffer = new Uint8Array(256);
    this.length = 0;
  }

  ensure(extra) {
    if (this.length + extra <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + extra) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buffer.subarray(0, this.length));
    this.buffer = bigger;
  }

  push(byte) {
    this.ensure(1);
    this.buffer[this.length] = byte;
    this.length += 1;
  }

  append(bytes) {
    this.ensure(bytes.length);
    this.buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  bytes() {
    return this.buffer.slice(0, this.length);
  }
}

function writeHead(out, major, argument) {
  const n = BigInt(argument);
  const top = major << 5;
  if (n < 24n) {
    out.push(top | Number(n));
  } else if (n < 0x100n) {
    out.push(top | 24);
    out.push(Number(n));
  } else if (n < 0x10000n) {
    out.push(top | 25);
    out.append(bigEndian(n, 2));
  } else if (n < 0x100000000n) {
    out.push(top | 26);
    out.append(bigEndian(n, 4));
  } else {
    out.push(top | 27);
    out.append(bigEndian(n, 8));
  }
}

function bigEndian(n, size) {
  const bytes = new Uint8Array(size);
  let rest = n;
  for (let i = size - 1; i >= 0; i -= 1) {
    bytes[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return bytes;
}

function writeValue(out, value, depth) {
  if (value === null) return out.push(0xf6);
  if (value === false) return out.push(0xf4);
  if (value === true) return out.push(0xf5);
  if (typeof value === 'number' || typeof value === 'bigint') return writeInteger(out, value);
  if (typeof value === 'string') {
    const bytes = UTF8.encode(value);
    writeHead(out, 3, bytes.length);
    return out.append(bytes);
  }
  if (value instanceof Uint8Array) {
    writeHead(out, 2, value.length);
    return out.append(value);
  }
  if (depth >= MAX_DEPTH) throw new UsageError(`containers nested deeper than ${MAX_DEPTH}`);
  if (Array.isArray(value)) {
    writeHead(out, 4, value.length);
    for (const item of value) writeValue(out, item, depth + 1);
    return undefined;
  }
  if (isMap(value)) {
    const keys = Object.keys(value).map((key) => [UTF8.encode(key), key]);
    keys.sort((a, b) => compareBytes(encodedKey(a[0]), encodedKey(b[0])));
    writeHead(out, 5, keys.length);
    for (const [bytes, key] of keys) {
      writeHead(out, 3, bytes.length);
      out.append(bytes);
      writeValue(out, value[key], depth + 1);
    }
    return undefined;
  }
  throw new UsageError(`not in the CBOR data model: ${typeof value}`);
}

/** The encoded form's order: shorter first, then bytewise (the head encodes the length). */
function encodedKey(utf8) {
  const sink = new ByteSink();
  writeHead(sink, 3, utf8.length);
  sink.append(utf8);
  return sink.bytes();
}

function writeInteger(out, value) {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) {
    throw new UsageError(`not an integer in the safe range: ${value}`);
  }
  const n = BigInt(value);
  if (n > INT64_MAX || n < INT64_MIN) throw new UsageError('integer outside the signed 64-bit range');
  if (n >= 0n) writeHead(out, 0, n);
  else writeHead(out, 1, -1n - n);
}

class Reader {
  constructor(data) {
    this.data = data;
    this.offset = 0;
  }

  take(count) {
    if (count > this.data.length - this.offset) malformed('truncated CBOR');
    const slice = this.data.subarray(this.offset, this.offset + count);
    this.offset += count;
    return slice;
  }

  /** Read an argument in its shortest form; returns a bigint. */
  readArgument(info) {
    if (info < 24) return BigInt(info);
    let size;
    if (info === 24) size = 1;
    else if (info === 25) size = 2;
    else if (info === 26) size = 4;
    else if (info === 27) size = 8;
    else malformed('indefinite length or reserved additional information');
    let n = 0n;
    for (const byte of this.take(size)) n = (n << 8n) | BigInt(byte);
    const minimum = size === 1 ? 24n : 1n << BigInt(4 * size);
    if (n < minimum) malformed('an integer or length not in its shortest form');
    return n;
  }

  readLength(info) {
    const n = this.readArgument(info);
    if (n > BigInt(this.data.length - this.offset)) malformed('a length beyond the input');
    return Number(n);
  }

  readValue(depth) {
    const initial = this.take(1)[0];
    const major = initial >> 5;
    const info = initial & 0x1f;
    switch (major) {
      case 0: {
        const n = this.readArgument(info);
        if (n > INT64_MAX) malformed('integer above the signed 64-bit range');
        return toNumber(n);
      }
      case 1: {
        const n = -1n - this.readArgument(info);
        if (n < INT64_MIN) malformed('integer below the signed 64-bit range');
        return toNumber(n);
      }
      case 2:
        return this.take(this.readLength(info)).slice();
      case 3:
        return readText(this.take(this.readLength(info)));
      case 4: {
        if (depth >= MAX_DEPTH) malformed(`containers nested deeper than ${MAX_DEPTH}`);
        const count = this.readLength(info);
        const items = [];
        for (let i = 0; i < count; i += 1) items.push(this.readValue(depth + 1));
        return items;
      }
      case 5: {
        if (depth >= MAX_DEPTH) malformed(`containers nested deeper than ${MAX_DEPTH}`);
        const count = this.readLength(info);
        const map = newMap();
        let previous = null;
        for (let i = 0; i < count; i += 1) {
          const keyStart = this.offset;
          const keyHead = this.data[keyStart];
          if (keyHead === undefined || keyHead >> 5 !== 3) malformed('a map key that is not text');
          const key = this.readValue(depth + 1);
          const keyBytes = this.data.subarray(keyStart, this.offset);
          if (previous !== null && compareBytes(previous, keyBytes) >= 0) {
            malformed('map keys repeated or not in canonical order');
          }
          previous = keyBytes;
          map[key] = this.readValue(depth + 1);
        }
        return map;
      }
      case 7:
        if (info === 20) return false;
        if (info === 21) return true;
        if (info === 22) return null;
        return malformed('a float, undefined or another simple value');
      default:
        return malformed('a tag');
    }
  }
}

function toNumber(n) {
  const asNumber = Number(n);
  return Number.isSafeInteger(asNumber) ? asNumber : n;
}

function readText(bytes) {
  try {
    return UTF8_STRICT.decode(bytes);
  } catch {
    return malformed('text that is not valid UTF-8');
  }
}
