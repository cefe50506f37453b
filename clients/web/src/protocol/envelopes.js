/**
 * Key epochs and key envelopes (SPEC.md section 6).
 */
import { Person, blake2b } from './crypto.js';

export const KEY_ID_BYTES = 8;

/** `H("accord:key-id", empty, size 8, key = epochKey)`: names an epoch key without revealing it. */
export function keyId(epochKey) {
  return blake2b(Person.KEY_ID, new Uint8Array(0), KEY_ID_BYTES, epochKey);
}
