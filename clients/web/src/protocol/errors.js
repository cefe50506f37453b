/**
 * One error type for everything the protocol refuses.
 *
 * Every refusal carries a stable machine-readable `code` taken from protocol/SPEC.md
 * (section 10 and the error tables of each section), so callers branch on the code and
 * never on the message text. The message is for people and never holds key material.
 *
 *   AccordError            bad remote input or a refused operation, with `code`
 *   UsageError             local misuse of this library (a wrong argument type), never
 *                          caused by what a peer or the relay sent
 */

/** Error codes used by this implementation (SPEC.md section 10 and sections 4 to 11). */
export const ErrorCode = Object.freeze({
  MALFORMED: 'malformed',
  UNSUPPORTED_VERSION: 'unsupported_version',
  OVERSIZED: 'oversized',
  BAD_SIGNATURE: 'bad_signature',
  BAD_PADDING: 'bad_padding',
  DECRYPT_FAILED: 'decrypt_failed',
  UNKNOWN_DEVICE: 'unknown_device',
  WRONG_SPACE: 'wrong_space',
  WRONG_EPOCH: 'wrong_epoch',
  BROKEN_CHAIN: 'broken_chain',
  ROSTER_INVALID: 'roster_invalid',
  DEVICE_REMOVED: 'device_removed',
  FORK: 'fork',
  FEED_GAP: 'feed_gap',
  VERSION_ID_MISMATCH: 'version_id_mismatch',
  NOT_AUTHOR: 'not_author',
  EXPIRED: 'expired',
  PAIRING_FAILED: 'pairing_failed',
  UNEXPECTED_MESSAGE: 'unexpected_message',
});

/** A refusal with a stable code (SPEC.md section 10). */
export class AccordError extends Error {
  /**
   * @param {string} code one of ErrorCode
   * @param {string} message for people; never key material
   */
  constructor(code, message) {
    super(`${code}: ${message}`);
    this.name = 'AccordError';
    this.code = code;
  }
}

/** Local misuse of this library: a programming error, not bad input from outside. */
export class UsageError extends Error {
  constructor(message) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Throw an AccordError with the given code.
 * @param {string} code
 * @param {string} message
 * @returns {never}
 */
export function refuse(code, message) {
  throw new AccordError(code, message);
}
