/**
 * Identities (SPEC.md 3.4) and the safety number (SPEC.md 3.5).
 *
 * A device is an Ed25519 key pair named by its 32-byte public key. A member is named by
 * the 16-byte hash of their first device's public key.
 */
import { compareBytes } from './cbor.js';
import { Person, blake2b, concat, signingKeyFromSeed, toHex, x25519PublicFromEd25519 } from './crypto.js';
import { UsageError } from './errors.js';

export const DEVICE_KEY_BYTES = 32;
export const MEMBER_ID_BYTES = 16;
const FINGERPRINT_BYTES = 16;
const SAFETY_HALF_BYTES = 30;
const SAFETY_CHUNK_BYTES = 5;
const SAFETY_GROUP_MODULUS = 100000n;

/** A device from its 32-byte Ed25519 seed: `{ publicKey, secretKey, x25519Public }`. */
export function deviceFromSeed(seed) {
  const keys = signingKeyFromSeed(seed);
  return {
    publicKey: keys.publicKey,
    secretKey: keys.privateKey,
    x25519Public: x25519PublicFromEd25519(keys.publicKey),
  };
}

/** `member_id_of(device)`: the member id of a member whose first device is `devicePublicKey`. */
export function memberIdOf(devicePublicKey) {
  requireDeviceKey(devicePublicKey);
  return blake2b(Person.MEMBER_ID, devicePublicKey, MEMBER_ID_BYTES);
}

/** The fingerprint of a device key: 32 hex digits in 8 groups of 4. */
export function fingerprint(devicePublicKey) {
  requireDeviceKey(devicePublicKey);
  const hex = toHex(blake2b(Person.FINGERPRINT, devicePublicKey, FINGERPRINT_BYTES));
  return hex.match(/.{4}/g).join(' ');
}

/**
 * The safety number of two members, from their device key lists (SPEC.md 3.5). Both
 * sides compute the same 12 groups of 5 digits whatever the order of the arguments.
 */
export function safetyNumber(keysA, keysB) {
  const joined = [keysA, keysB].map((keys) => {
    keys.forEach(requireDeviceKey);
    return concat(...[...keys].sort(compareBytes));
  });
  joined.sort(compareBytes);
  const groups = [];
  for (const half of joined) {
    const digest = blake2b(Person.SAFETY_NUMBER, half, SAFETY_HALF_BYTES);
    for (let i = 0; i < SAFETY_HALF_BYTES; i += SAFETY_CHUNK_BYTES) {
      let n = 0n;
      for (const byte of digest.subarray(i, i + SAFETY_CHUNK_BYTES)) n = (n << 8n) | BigInt(byte);
      groups.push((n % SAFETY_GROUP_MODULUS).toString().padStart(5, '0'));
    }
  }
  return groups.join(' ');
}

function requireDeviceKey(key) {
  if (!(key instanceof Uint8Array) || key.length !== DEVICE_KEY_BYTES) {
    throw new UsageError('a device key is 32 bytes');
  }
}
