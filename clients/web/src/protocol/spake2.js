/**
 * SPAKE2 over Ed25519 as SPEC.md 11.5 describes it, with libsodium's group operations.
 *
 *   w  = int_be(HKDF-SHA256(password, salt = empty, info = "SPAKE2 pw", 48)) mod L
 *   X* = x·B + w·M   (side A, the inviter)        Y* = y·B + w·N   (side B, the joiner)
 *   K  = x·(Y* − w·N) = y·(X* − w·M)
 *   key = SHA-256(SHA-256(pw) || SHA-256(idA) || SHA-256(idB) || X* || Y* || K)
 *
 * Messages are 33 bytes: a side byte (`A` = 0x41, `B` = 0x42) and the 32-byte element.
 * Scalars are given big-endian (as in the vectors) and turned little-endian for libsodium.
 */
import { concat, lib } from './crypto.js';
import { AccordError, ErrorCode } from './errors.js';

/** The order of the Ed25519 base point. */
export const L = (1n << 252n) + 27742317777372353535851937790883648493n;
export const SIDE_A = 0x41;
export const SIDE_B = 0x42;
export const MESSAGE_BYTES = 33;
const ELEMENT_BYTES = 32;
const M_POINT = '15cfd18e385952982b6a8f8c7854963b58e34388c8e6dae891db756481a02312';
const N_POINT = 'f04f2e7eb734b2a8f8b472eaf9c3c632576ac64aea650b496a8a20ff00e583c3';
const IDENTITY = (() => {
  const bytes = new Uint8Array(ELEMENT_BYTES);
  bytes[0] = 1;
  return bytes;
})();
const HKDF_INFO = new TextEncoder().encode('SPAKE2 pw');
const HKDF_LENGTH = 48;

function hexBytes(hex) {
  return Uint8Array.from(hex.match(/../g).map((byte) => parseInt(byte, 16)));
}

/** A scalar below L as 32 little-endian bytes. */
function scalarBytes(n) {
  const out = new Uint8Array(ELEMENT_BYTES);
  let rest = ((n % L) + L) % L;
  for (let i = 0; i < ELEMENT_BYTES; i += 1) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return out;
}

/** An integer from big-endian bytes. */
export function bigEndianInt(bytes) {
  let n = 0n;
  for (const byte of bytes) n = (n << 8n) | BigInt(byte);
  return n;
}

function sha256(data) {
  return lib().crypto_hash_sha256(data);
}

function hmacSha256(key, message) {
  return lib().crypto_auth_hmacsha256(message, key);
}

/** HKDF-SHA256 (RFC 5869) with an empty salt. */
function hkdfSha256(ikm, info, length) {
  const prk = hmacSha256(new Uint8Array(32), ikm);
  const out = [];
  let block = new Uint8Array(0);
  let total = 0;
  for (let counter = 1; total < length; counter += 1) {
    block = hmacSha256(prk, concat(block, info, new Uint8Array([counter])));
    out.push(block);
    total += block.length;
  }
  return concat(...out).slice(0, length);
}

/** The password scalar w. */
export function passwordScalar(password) {
  return bigEndianInt(hkdfSha256(password, HKDF_INFO, HKDF_LENGTH)) % L;
}

function multiply(scalar, point) {
  if (scalar % L === 0n || bytesEqual(point, IDENTITY)) return IDENTITY;
  return lib().crypto_scalarmult_ed25519_noclamp(scalarBytes(scalar), point);
}

function multiplyBase(scalar) {
  return lib().crypto_scalarmult_ed25519_base_noclamp(scalarBytes(scalar));
}

function subtract(p, q) {
  if (bytesEqual(p, q)) return IDENTITY;
  return lib().crypto_core_ed25519_sub(p, q);
}

function bytesEqual(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * One side of a SPAKE2 exchange.
 * @param {object} args
 * @param {'A'|'B'} args.side A for the inviter, B for the joiner
 * @param {Uint8Array} args.password
 * @param {Uint8Array} args.idA
 * @param {Uint8Array} args.idB
 * @param {bigint} args.scalar the secret scalar, below L (random when the caller draws it)
 */
export class Spake2 {
  constructor({ side, password, idA, idB, scalar }) {
    this.side = side;
    this.password = password;
    this.idA = idA;
    this.idB = idB;
    this.scalar = scalar;
    this.w = passwordScalar(password);
    const blind = hexBytes(side === 'A' ? M_POINT : N_POINT);
    const element = lib().crypto_core_ed25519_add(multiplyBase(scalar), multiply(this.w, blind));
    this.element = element;
    this.message = concat(new Uint8Array([side === 'A' ? SIDE_A : SIDE_B]), element);
  }

  /**
   * Finish with the other side's 33-byte message.
   * @returns {Uint8Array} the 32-byte SPAKE2 key
   * @throws {AccordError} `malformed` for a message of the wrong side or size, or an
   *   element that is not a point of order L, the identity, or the element sent
   */
  finish(otherMessage) {
    const otherSide = this.side === 'A' ? SIDE_B : SIDE_A;
    if (!(otherMessage instanceof Uint8Array) || otherMessage.length !== MESSAGE_BYTES || otherMessage[0] !== otherSide) {
      throw new AccordError(ErrorCode.MALFORMED, 'a SPAKE2 message is the other side byte and 32 bytes');
    }
    const element = otherMessage.slice(1);
    if (!lib().crypto_core_ed25519_is_valid_point(element) || bytesEqual(element, this.element)) {
      throw new AccordError(ErrorCode.MALFORMED, 'the SPAKE2 element is not a usable point');
    }
    const unblind = hexBytes(this.side === 'A' ? N_POINT : M_POINT);
    const shared = multiply(this.scalar, subtract(element, multiply(this.w, unblind)));
    const [xStar, yStar] = this.side === 'A' ? [this.element, element] : [element, this.element];
    return sha256(
      concat(sha256(this.password), sha256(this.idA), sha256(this.idB), xStar, yStar, shared),
    );
  }
}

/** A random scalar in [1, L). */
export function randomScalar() {
  for (;;) {
    const n = bigEndianInt(lib().randombytes_buf(64)) % L;
    if (n !== 0n) return n;
  }
}
