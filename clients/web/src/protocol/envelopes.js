/**
 * Key envelopes (SPEC.md 6.2): an epoch key sealed to one device and signed by the device
 * that sends it. The relay stores and forwards envelopes but can neither open nor forge one.
 */
import { bytesEqual, decode, encode, isMap, newMap } from './cbor.js';
import {
  Context,
  Person,
  blake2b,
  openSealedBox,
  sealBox,
  sign,
  verify,
  x25519PublicFromEd25519,
  x25519SecretFromEd25519,
} from './crypto.js';
import { AccordError, ErrorCode } from './errors.js';

export const ENVELOPE_VERSION = 1;
export const KEY_ID_BYTES = 8;
export const EPOCH_KEY_BYTES = 32;
export const MAX_ENVELOPE_BYTES = 1024;
const SEALED_KEY_BYTES = 80;
const FIELDS = ['box', 'epoch', 'from', 'key_id', 'sig', 'space', 'to', 'v'];

/** `H("accord:key-id", empty, size 8, key = epochKey)`: names an epoch key without revealing it. */
export function keyId(epochKey) {
  return blake2b(Person.KEY_ID, new Uint8Array(0), KEY_ID_BYTES, epochKey);
}

/**
 * Wrap an epoch key for one device.
 * @param {object} args
 * @param {Uint8Array} args.senderSecretKey the sender device's Ed25519 secret key (64 bytes)
 * @param {Uint8Array} args.sender the sender's device key
 * @param {Uint8Array} args.recipient the recipient's device key
 * @param {Uint8Array} args.space
 * @param {number} args.epoch
 * @param {Uint8Array} args.epochKey
 * @param {Uint8Array} [args.ephemeralSecret] fixed only in known-answer tests
 * @returns {Uint8Array} the encoded envelope
 */
export function wrapKey({ senderSecretKey, sender, recipient, space, epoch, epochKey, ephemeralSecret = null }) {
  const unsigned = newMap([
    ['v', ENVELOPE_VERSION],
    ['space', space],
    ['epoch', epoch],
    ['key_id', keyId(epochKey)],
    ['to', recipient],
    ['from', sender],
    ['box', sealBox(epochKey, x25519PublicFromEd25519(recipient), ephemeralSecret)],
  ]);
  const sig = sign(senderSecretKey, Context.KEY_ENVELOPE, encode(unsigned));
  return encode(newMap([...Object.entries(unsigned), ['sig', sig]]));
}

/**
 * Decode an envelope and check its form.
 * @throws {AccordError} `oversized`, `malformed`, `unsupported_version`
 */
export function decodeEnvelope(bytes) {
  if (bytes.length > MAX_ENVELOPE_BYTES) throw new AccordError(ErrorCode.OVERSIZED, 'an envelope is at most 1024 bytes');
  const envelope = decode(bytes);
  if (!isMap(envelope)) malformed('an envelope is a map');
  if (envelope.v !== ENVELOPE_VERSION) {
    if (Number.isInteger(envelope.v)) throw new AccordError(ErrorCode.UNSUPPORTED_VERSION, `envelope version ${envelope.v}`);
    malformed('an envelope has v = 1');
  }
  if (Object.keys(envelope).sort().join() !== FIELDS.join()) malformed(`an envelope has exactly ${FIELDS.join(', ')}`);
  requireBytes(envelope.space, 16, 'space');
  if (!Number.isSafeInteger(envelope.epoch) || envelope.epoch < 0) malformed('epoch is an unsigned integer');
  requireBytes(envelope.key_id, KEY_ID_BYTES, 'key_id');
  requireBytes(envelope.to, 32, 'to');
  requireBytes(envelope.from, 32, 'from');
  requireBytes(envelope.box, SEALED_KEY_BYTES, 'box');
  requireBytes(envelope.sig, 64, 'sig');
  return envelope;
}

/**
 * Open an envelope addressed to this device (SPEC.md 6.2, in order).
 * @param {Uint8Array} bytes
 * @param {object} args
 * @param {{ publicKey: Uint8Array, secretKey: Uint8Array }} args.device this device
 * @param {Uint8Array[]} args.trustedSenders the active devices of the roster
 * @param {Uint8Array} args.space the space asked about
 * @param {Map<number, Uint8Array>} [args.announcedKeyIds] key ids of the roster's epoch records
 * @returns {{ epoch: number, epochKey: Uint8Array, from: Uint8Array }}
 * @throws {AccordError} the decode errors, `bad_signature`, `unknown_device`,
 *   `wrong_space`, `decrypt_failed`, `wrong_epoch`
 */
export function unwrapKey(bytes, { device, trustedSenders, space, announcedKeyIds = null }) {
  const envelope = decodeEnvelope(bytes);
  const unsigned = newMap(Object.entries(envelope).filter(([field]) => field !== 'sig'));
  if (!verify(envelope.from, Context.KEY_ENVELOPE, encode(unsigned), envelope.sig)) {
    throw new AccordError(ErrorCode.BAD_SIGNATURE, 'the envelope signature does not verify');
  }
  if (!trustedSenders.some((key) => bytesEqual(key, envelope.from))) {
    throw new AccordError(ErrorCode.UNKNOWN_DEVICE, 'the sender is not an active device of the space');
  }
  if (!bytesEqual(envelope.space, space)) throw new AccordError(ErrorCode.WRONG_SPACE, 'an envelope of another space');
  if (!bytesEqual(envelope.to, device.publicKey)) {
    throw new AccordError(ErrorCode.DECRYPT_FAILED, 'the envelope is addressed to another device');
  }
  const epochKey = openSealedBox(
    envelope.box,
    x25519PublicFromEd25519(device.publicKey),
    x25519SecretFromEd25519(device.secretKey),
  );
  if (epochKey.length !== EPOCH_KEY_BYTES || !bytesEqual(keyId(epochKey), envelope.key_id)) {
    throw new AccordError(ErrorCode.WRONG_EPOCH, 'the key inside is not the one the envelope names');
  }
  if (announcedKeyIds !== null && envelope.epoch >= 1) {
    const announced = announcedKeyIds.get(envelope.epoch);
    if (announced === undefined || !bytesEqual(announced, envelope.key_id)) {
      throw new AccordError(ErrorCode.WRONG_EPOCH, 'the key is not the one the roster announced');
    }
  }
  return { epoch: envelope.epoch, epochKey, from: envelope.from };
}

function requireBytes(value, size, name) {
  if (!(value instanceof Uint8Array) || value.length !== size) malformed(`${name} is ${size} bytes`);
}

/** @returns {never} */
function malformed(message) {
  throw new AccordError(ErrorCode.MALFORMED, message);
}
