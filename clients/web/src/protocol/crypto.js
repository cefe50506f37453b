/**
 * The cryptographic building blocks of SPEC.md section 3, all from libsodium.
 *
 * Call `await ready()` once before anything else here. Every helper is a pure function:
 * where randomness is needed it is an optional parameter (`nonce`, `ephemeralSecret`), so
 * known-answer tests need no patching. Sizes come from libsodium's constants.
 */
import sodiumModule from 'libsodium-wrappers-sumo';
import { AccordError, ErrorCode, UsageError } from './errors.js';

/** @type {any} */
let sodium = null;

/** Load libsodium; resolves when every function here may be called. */
export async function ready() {
  if (sodium !== null) return sodium;
  await sodiumModule.ready;
  sodium = sodiumModule;
  return sodium;
}

/** The loaded libsodium (after `ready()`). */
export function lib() {
  if (sodium === null) throw new UsageError('call ready() before using the protocol crypto');
  return sodium;
}

// Signature contexts (SPEC.md 3.3); each ends with one zero byte.
export const Context = Object.freeze({
  ENTRY: contextBytes('accord/entry/v1'),
  JOIN: contextBytes('accord/join/v1'),
  KEY_ENVELOPE: contextBytes('accord/key-envelope/v1'),
  AUTH: contextBytes('accord/auth/v1'),
  CREATE_SPACE: contextBytes('accord/create-space/v1'),
});

function contextBytes(text) {
  return concat(new TextEncoder().encode(text), new Uint8Array([0]));
}

// BLAKE2b personalisations (SPEC.md 3.2 and 11.5).
export const Person = Object.freeze({
  ENTRY_ID: 'accord:entry-id',
  CONTENT: 'accord:content',
  MEMBER_ID: 'accord:member-id',
  FINGERPRINT: 'accord:fingerpr',
  SAFETY_NUMBER: 'accord:safety-no',
  VERSION: 'accord:version',
  KEY_ID: 'accord:key-id',
  RECORD: 'accord:record',
  PAIR_TX: 'accord:pair-tx',
  PAIR_QR: 'accord:pair-qr',
  PAIR_CODE: 'accord:pair-code',
  PAIR_MACJ: 'accord:pair-macj',
  PAIR_I2J: 'accord:pair-i2j',
  PAIR_J2I: 'accord:pair-j2i',
  PAIR_SAS: 'accord:pair-sas',
});

/** Byte strings joined. */
export function concat(...parts) {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** `u64be(n)`: n as 8 bytes, big-endian. */
export function u64be(n) {
  const out = new Uint8Array(8);
  let rest = BigInt(n);
  if (rest < 0n || rest >= 1n << 64n) throw new UsageError('u64be needs 0 <= n < 2^64');
  for (let i = 7; i >= 0; i -= 1) {
    out[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return out;
}

/**
 * `H(person, data, size, key)`: BLAKE2b with a 16-byte zero salt and the personalisation
 * string zero-padded to 16 bytes (SPEC.md 3.2).
 *
 * The JavaScript wrapper of libsodium only exposes the salted, personalised BLAKE2b for
 * empty input, so this calls libsodium's own `crypto_generichash_blake2b_salt_personal`
 * through the module's memory.
 * @param {string} person at most 16 ASCII characters
 * @param {Uint8Array} data
 * @param {number} [size]
 * @param {Uint8Array|null} [key]
 * @returns {Uint8Array}
 */
export function blake2b(person, data, size = 32, key = null) {
  const s = lib();
  const personBytes = new Uint8Array(s.crypto_generichash_blake2b_PERSONALBYTES);
  const ascii = new TextEncoder().encode(person);
  if (ascii.length > personBytes.length) throw new UsageError('personalisation longer than 16 bytes');
  personBytes.set(ascii);
  const salt = new Uint8Array(s.crypto_generichash_blake2b_SALTBYTES);
  const keyBytes = key ?? new Uint8Array(0);
  // libsodium's BLAKE2b takes any output size from 1 to BYTES_MAX (BYTES_MIN is only advice).
  if (!Number.isInteger(size) || size < 1 || size > s.crypto_generichash_blake2b_BYTES_MAX) {
    throw new UsageError('BLAKE2b output size out of range');
  }
  const raw = s.libsodium;
  const total = size + data.length + keyBytes.length + salt.length + personBytes.length;
  const base = raw._malloc(Math.max(total, 1));
  try {
    const outPtr = base;
    const dataPtr = outPtr + size;
    const keyPtr = dataPtr + data.length;
    const saltPtr = keyPtr + keyBytes.length;
    const personPtr = saltPtr + salt.length;
    raw.HEAPU8.set(data, dataPtr);
    raw.HEAPU8.set(keyBytes, keyPtr);
    raw.HEAPU8.set(salt, saltPtr);
    raw.HEAPU8.set(personBytes, personPtr);
    const status = raw._crypto_generichash_blake2b_salt_personal(
      outPtr,
      size,
      dataPtr,
      data.length, // the 64-bit length is passed as two 32-bit halves (low, high)
      0,
      keyBytes.length ? keyPtr : 0,
      keyBytes.length,
      saltPtr,
      personPtr,
    );
    if (status !== 0) throw new UsageError('BLAKE2b failed');
    return raw.HEAPU8.slice(outPtr, outPtr + size);
  } finally {
    raw.HEAPU8.fill(0, base, base + total);
    raw._free(base);
  }
}

/** An Ed25519 key pair from a 32-byte seed: `{ publicKey, secretKey }`. */
export function signingKeyFromSeed(seed) {
  const s = lib();
  if (seed.length !== s.crypto_sign_SEEDBYTES) throw new UsageError('a seed is 32 bytes');
  return s.crypto_sign_seed_keypair(seed);
}

/** A fresh random Ed25519 key pair. */
export function newSigningKey() {
  return lib().crypto_sign_keypair();
}

/** Ed25519 signature over `context || message` (SPEC.md 3.3). */
export function sign(secretKey, context, message) {
  return lib().crypto_sign_detached(concat(context, message), secretKey);
}

/** Does `signature` verify by `publicKey` over `context || message`? Never throws on bad input. */
export function verify(publicKey, context, message, signature) {
  const s = lib();
  if (!(signature instanceof Uint8Array) || signature.length !== s.crypto_sign_BYTES) return false;
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== s.crypto_sign_PUBLICKEYBYTES) return false;
  try {
    return s.crypto_sign_verify_detached(signature, concat(context, message), publicKey);
  } catch {
    return false;
  }
}

/** The X25519 public key converted from an Ed25519 public key. */
export function x25519PublicFromEd25519(publicKey) {
  return lib().crypto_sign_ed25519_pk_to_curve25519(publicKey);
}

/** The X25519 secret key converted from an Ed25519 secret key. */
export function x25519SecretFromEd25519(secretKey) {
  return lib().crypto_sign_ed25519_sk_to_curve25519(secretKey);
}

/**
 * XChaCha20-Poly1305-IETF encryption.
 * @returns {Uint8Array} ciphertext with its 16-byte tag
 */
export function aeadEncrypt(key, nonce, ad, message) {
  return lib().crypto_aead_xchacha20poly1305_ietf_encrypt(message, ad, null, nonce, key);
}

/**
 * XChaCha20-Poly1305-IETF decryption.
 * @throws {AccordError} `decrypt_failed` when the box does not open
 */
export function aeadDecrypt(key, nonce, ad, ciphertext) {
  try {
    return lib().crypto_aead_xchacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce, key);
  } catch {
    throw new AccordError(ErrorCode.DECRYPT_FAILED, 'the ciphertext does not open under this key');
  }
}

/** Sizes of the AEAD (SPEC.md 3.1). */
export function aeadSizes() {
  const s = lib();
  return {
    key: s.crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
    nonce: s.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
    tag: s.crypto_aead_xchacha20poly1305_ietf_ABYTES,
  };
}

/** Random bytes from libsodium. */
export function randomBytes(count) {
  return lib().randombytes_buf(count);
}

/** X25519 public key of a 32-byte secret. */
export function x25519Public(secret) {
  return lib().crypto_scalarmult_base(secret);
}

/** X25519 shared secret; refuses an all-zero result (a low-order key). */
export function x25519(secret, publicKey) {
  let shared;
  try {
    shared = lib().crypto_scalarmult(secret, publicKey);
  } catch {
    throw new AccordError(ErrorCode.PAIRING_FAILED, 'an unusable X25519 key');
  }
  if (shared.every((byte) => byte === 0)) {
    throw new AccordError(ErrorCode.PAIRING_FAILED, 'an unusable X25519 key');
  }
  return shared;
}

/**
 * A sealed box (libsodium `crypto_box_seal`) to an X25519 public key. With
 * `ephemeralSecret` given, the result is deterministic: `epk || crypto_box(m, nonce, pk,
 * esk)` with `nonce = BLAKE2b-24(epk || pk)`, exactly what `crypto_box_seal` builds.
 */
export function sealBox(message, recipientX25519, ephemeralSecret = null) {
  const s = lib();
  if (ephemeralSecret === null) return s.crypto_box_seal(message, recipientX25519);
  const ephemeralPublic = s.crypto_scalarmult_base(ephemeralSecret);
  const nonce = s.crypto_generichash(
    s.crypto_box_NONCEBYTES,
    concat(ephemeralPublic, recipientX25519),
    null,
  );
  const boxed = s.crypto_box_easy(message, nonce, recipientX25519, ephemeralSecret);
  return concat(ephemeralPublic, boxed);
}

/**
 * Open a sealed box with an X25519 key pair.
 * @throws {AccordError} `decrypt_failed`
 */
export function openSealedBox(box, recipientPublic, recipientSecret) {
  try {
    return lib().crypto_box_seal_open(box, recipientPublic, recipientSecret);
  } catch {
    throw new AccordError(ErrorCode.DECRYPT_FAILED, 'the sealed box does not open');
  }
}

/** Constant-time equality of two byte strings of the same length. */
export function constantTimeEqual(a, b) {
  if (a.length !== b.length) return false;
  return lib().memcmp(a, b);
}

/** Lowercase hex. */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Bytes from lowercase or uppercase hex. @throws {UsageError} on bad hex */
export function fromHex(hex) {
  if (typeof hex !== 'string' || hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) {
    throw new UsageError('not hex');
  }
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
