/**
 * The roster (SPEC.md section 5): members, their devices and their removal.
 */
import { encode, newMap } from './cbor.js';
import { Context, sign, verify } from './crypto.js';

function joinConsent({ space, member, device, by }) {
  return encode(newMap([['space', space], ['member', member], ['device', device], ['by', by]]));
}

/**
 * A device's consent to join `space` as `member`, signed in by the device `by` (SPEC.md 5).
 * @returns {Uint8Array} the 64-byte join proof
 */
export function joinProof({ secretKey, space, member, by }) {
  const device = secretKey.slice(32);
  return sign(secretKey, Context.JOIN, joinConsent({ space, member, device, by }));
}

/** Does `proof` show that `device` consented to join `space` as `member` by `by`? */
export function joinProofValid({ proof, space, member, device, by }) {
  return verify(device, Context.JOIN, joinConsent({ space, member, device, by }), proof);
}
