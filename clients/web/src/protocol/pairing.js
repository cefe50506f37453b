/**
 * Pairing (SPEC.md 11): the key schedule (11.5) and the two state machines (11.8), sans I/O.
 *
 * Theory of operation. `Inviter` and `Joiner` each wrap one machine whose only legal
 * moves are the rows of TRANSITIONS, the table of SPEC.md 11.8. Every method is one move:
 * it takes the bytes that arrived (or the values to send) and returns the bytes to post.
 * Any failure burns the machine: its keys are forgotten and the error is thrown again, so
 * the caller deletes the channel and the person starts over. Randomness (ephemeral keys,
 * SPAKE2 scalars, secrets) is an optional constructor argument for known-answer tests.
 *
 * Self pairing may also link the member's private space (SPEC.md 11.12): the offer names
 * it, the request adds a second join proof bound to it, and the welcome carries a
 * `private` part checked like the welcome's own. Each proof names its own space, so
 * neither can admit the device anywhere else.
 */
import { bytesEqual, decode, encode, isMap, newMap } from './cbor.js';
import { Person, blake2b, concat, constantTimeEqual, randomBytes, x25519, x25519Public } from './crypto.js';
import { decodeEntry, signatureValid } from './entry.js';
import { AccordError, ErrorCode, UsageError } from './errors.js';
import { fingerprint, memberIdOf } from './identity.js';
import { codePassword, makeCode, readCode } from './pairing-code.js';
import {
  decodeClear,
  decodeInner,
  encodeDecline,
  encodeDone,
  encodeHello,
  encodeOffer,
  encodePake,
  encodeRequest,
  encodeWelcome,
  openInner,
  sealInner,
} from './pairing-messages.js';
import { Purpose, encodeInvite } from './pairing-uri.js';
import { joinProofValid } from './roster.js';
import { Spake2, bigEndianInt, randomScalar } from './spake2.js';

export const INVITE_LIFETIME = 120;
export const SESSION_GRACE = 180;
const ID_A = new TextEncoder().encode('accord:inviter');
const ID_B = new TextEncoder().encode('accord:joiner');
const KEY_BYTES = 32;
const SAS_BYTES = 8;
const SAS_MODULUS = 1000000n;

/** Every legal move of SPEC.md 11.8: [role, state, move, next state]. */
export const TRANSITIONS = Object.freeze([
  ['inviter', 'start', 'send pake', 'await-hello'],
  ['inviter', 'await-hello', 'receive hello', 'keyed'],
  ['inviter', 'keyed', 'send offer', 'await-request'],
  ['inviter', 'await-request', 'receive request', 'await-approval'],
  ['inviter', 'await-approval', 'send welcome', 'await-done'],
  ['inviter', 'await-approval', 'send decline', 'declined'],
  ['inviter', 'await-done', 'receive done', 'done'],
  ['joiner', 'start', 'receive pake', 'ready'],
  ['joiner', 'ready', 'send hello', 'await-offer'],
  ['joiner', 'await-offer', 'receive offer', 'offered'],
  ['joiner', 'offered', 'send request', 'await-decision'],
  ['joiner', 'await-decision', 'receive welcome', 'welcomed'],
  ['joiner', 'await-decision', 'receive decline', 'declined'],
  ['joiner', 'welcomed', 'send done', 'done'],
]);
export const TERMINAL = Object.freeze(['done', 'declined', 'burned']);

/**
 * The values both sides derive from the transcript and root (SPEC.md 11.5, both modes).
 * @returns {{ transcript: Uint8Array, th: Uint8Array, root: Uint8Array, mac: Uint8Array,
 *   inviterToJoiner: Uint8Array, joinerToInviter: Uint8Array, sas: string }}
 */
export function keySchedule(transcript, rootFor) {
  const encoded = encode(transcript);
  const th = blake2b(Person.PAIR_TX, encoded, KEY_BYTES);
  const root = rootFor(th);
  const sasBytes = blake2b(Person.PAIR_SAS, th, SAS_BYTES, root);
  return {
    transcript: encoded,
    th,
    root,
    mac: blake2b(Person.PAIR_MACJ, th, KEY_BYTES, root),
    inviterToJoiner: blake2b(Person.PAIR_I2J, th, KEY_BYTES, root),
    joinerToInviter: blake2b(Person.PAIR_J2I, th, KEY_BYTES, root),
    sas: (bigEndianInt(sasBytes) % SAS_MODULUS).toString().padStart(6, '0'),
  };
}

function qrTranscript({ relay, channel, expires, purpose, inviterKey, joinerKey }) {
  return newMap([
    ['v', 1],
    ['mode', 'qr'],
    ['relay', relay],
    ['channel', channel],
    ['expires', expires],
    ['purpose', purpose],
    ['inviter_key', inviterKey],
    ['joiner_key', joinerKey],
  ]);
}

function codeTranscript({ channel, nameplate, pakeInviter, pakeJoiner }) {
  return newMap([
    ['v', 1],
    ['mode', 'code'],
    ['channel', channel],
    ['nameplate', nameplate],
    ['pake_inviter', pakeInviter],
    ['pake_joiner', pakeJoiner],
  ]);
}

/** One side's machine: the state, and the moves of TRANSITIONS. */
class Machine {
  constructor(role) {
    this.role = role;
    this.state = 'start';
    this.error = null;
  }

  /** Take a move; an illegal one is `unexpected_message`. */
  move(move) {
    const row = TRANSITIONS.find(([role, state, name]) => role === this.role && state === this.state && name === move);
    if (row === undefined) {
      throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, `"${move}" is not legal in state ${this.state}`);
    }
    this.state = row[3];
  }

  /** Run `step`, which must end in the move `move`; any failure burns the machine. */
  guarded(side, step) {
    if (TERMINAL.includes(this.state)) {
      throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, `the ${this.role} is ${this.state}`);
    }
    try {
      return step();
    } catch (error) {
      this.state = 'burned';
      this.error = error;
      side.forget();
      throw error;
    }
  }
}

function checkTime(now, expires) {
  if (now >= expires + SESSION_GRACE) throw new AccordError(ErrorCode.EXPIRED, 'the pairing session has ended');
}

/**
 * The device already in the space: shows the invite, never scans or types.
 * @param {object} args
 * @param {string} args.relay the relay base URL
 * @param {string} args.channel the channel id the relay gave
 * @param {string} args.nameplate the channel's nameplate
 * @param {string} args.purpose 'partner' or 'self'
 * @param {number} args.expires Unix seconds (now + INVITE_LIFETIME)
 * @param {object} args.offer { space, inviter (device key), member (self: the inviter's member id; partner: null), name,
 *   private (self only, optional: the member's private space id, to link it too) }
 * @param {Uint8Array} [args.ephemeralSecret] e_I
 * @param {Uint8Array} [args.secret] s, 32 bytes
 * @param {Uint8Array} [args.codeSecret] the 4 code bytes
 * @param {bigint} [args.pakeScalar] the SPAKE2 scalar x
 */
export class Inviter {
  constructor({ relay, channel, nameplate, purpose, expires, offer, ephemeralSecret, secret, codeSecret, pakeScalar }) {
    this.machine = new Machine('inviter');
    this.relay = relay;
    this.channel = channel;
    this.nameplate = nameplate;
    this.purpose = purpose;
    this.expires = expires;
    this.offer = { ...offer, purpose, private: offer.private ?? null };
    if (this.offer.private !== null && purpose !== Purpose.SELF) {
      throw new UsageError('only a self offer carries a private space');
    }
    this.ephemeralSecret = ephemeralSecret ?? randomBytes(KEY_BYTES);
    this.secret = secret ?? randomBytes(KEY_BYTES);
    this.code = makeCode(nameplate, codeSecret ?? randomBytes(4));
    this.spake = new Spake2({ side: 'A', password: codePassword(this.code), idA: ID_A, idB: ID_B, scalar: pakeScalar ?? randomScalar() });
    this.ephemeralPublic = x25519Public(this.ephemeralSecret);
    /** The QR invite URI (11.2). */
    this.uri = encodeInvite({
      relay,
      channel,
      key: this.ephemeralPublic,
      secret: this.secret,
      expires,
      purpose,
    });
    this.keys = null;
    this.request = null;
  }

  get state() {
    return this.machine.state;
  }

  forget() {
    this.ephemeralSecret = null;
    this.secret = null;
    this.spake = null;
    this.keys = null;
  }

  /** Post the `pake` at once. @returns {Uint8Array} */
  sendPake() {
    return this.machine.guarded(this, () => {
      this.machine.move('send pake');
      return encodePake(this.spake.message);
    });
  }

  /**
   * Receive the joiner's hello and check its MAC.
   * @returns {{ sas: string }}
   * @throws {AccordError} `expired`, `pairing_failed`, `malformed`, `unexpected_message`
   */
  receiveHello(bytes, now) {
    return this.machine.guarded(this, () => {
      const hello = decodeClear(bytes);
      if (hello.type !== 'hello') throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, `expected hello, got ${hello.type}`);
      this.machine.move('receive hello');
      if (now >= this.expires) throw new AccordError(ErrorCode.EXPIRED, 'the invite has expired');
      if (hello.mode === 'qr') {
        const transcript = qrTranscript({
          relay: this.relay,
          channel: this.channel,
          expires: this.expires,
          purpose: this.purpose,
          inviterKey: this.ephemeralPublic,
          joinerKey: hello.key,
        });
        const shared = x25519(this.ephemeralSecret, hello.key);
        this.keys = keySchedule(transcript, (th) => blake2b(Person.PAIR_QR, concat(shared, th), KEY_BYTES, this.secret));
        this.keys.shared = shared;
      } else {
        const spakeKey = this.spake.finish(hello.pake);
        const transcript = codeTranscript({
          channel: this.channel,
          nameplate: this.nameplate,
          pakeInviter: this.spake.message,
          pakeJoiner: hello.pake,
        });
        this.keys = keySchedule(transcript, (th) => blake2b(Person.PAIR_CODE, th, KEY_BYTES, spakeKey));
        this.keys.spakeKey = spakeKey;
      }
      if (!constantTimeEqual(hello.mac, this.keys.mac)) {
        throw new AccordError(ErrorCode.PAIRING_FAILED, 'the code or the key confirmation is wrong');
      }
      return { sas: this.keys.sas };
    });
  }

  /** Seal and send the offer (box 0). @returns {Uint8Array} */
  sendOffer() {
    return this.machine.guarded(this, () => {
      this.machine.move('send offer');
      return sealInner(this.keys.inviterToJoiner, 0, encodeOffer(this.offer));
    });
  }

  /**
   * Receive the joiner's request and verify its join proofs before anyone is asked.
   * @returns {{ device: Uint8Array, name: string, fingerprint: string, member: Uint8Array, proof: Uint8Array,
   *   privateProof: Uint8Array | null, sas: string }}
   * @throws {AccordError} `bad_signature`, `decrypt_failed`, `bad_padding`, `malformed`, `unexpected_message`, `expired`
   */
  receiveRequest(bytes, now) {
    return this.machine.guarded(this, () => {
      checkTime(now, this.expires);
      const request = this.openBox(bytes, 0, 'request');
      this.machine.move('receive request');
      const member = this.purpose === Purpose.PARTNER ? memberIdOf(request.device) : this.offer.member;
      const by = this.offer.inviter;
      const valid = joinProofValid({ proof: request.proof, space: this.offer.space, member, device: request.device, by });
      if (!valid) throw new AccordError(ErrorCode.BAD_SIGNATURE, 'the join proof does not verify');
      const privateProof = request.private_proof ?? null;
      if (privateProof !== null) {
        if (this.offer.private === null) throw new AccordError(ErrorCode.MALFORMED, 'a proof for a private space that was not offered');
        const space = this.offer.private;
        if (!joinProofValid({ proof: privateProof, space, member, device: request.device, by })) {
          throw new AccordError(ErrorCode.BAD_SIGNATURE, "the private space's join proof does not verify");
        }
      }
      this.request = { device: request.device, name: request.name, proof: request.proof, privateProof, member };
      return { ...this.request, fingerprint: fingerprint(request.device), sas: this.keys.sas };
    });
  }

  /**
   * After the person approved and `added` and the envelopes are on the relay.
   * `private` ({ heads, envelopes, added }) is the private space's part, when the request
   * asked for it (SPEC.md 11.12). @returns {Uint8Array}
   */
  sendWelcome({ heads, envelopes, added, private: part = null }) {
    return this.machine.guarded(this, () => {
      this.machine.move('send welcome');
      const privatePart = part === null ? null : { ...part, space: this.offer.private };
      const inner = encodeWelcome({ space: this.offer.space, relay: this.relay, heads, envelopes, added, private: privatePart });
      return sealInner(this.keys.inviterToJoiner, 1, inner);
    });
  }

  /** The person declined; no reason is sent. @returns {Uint8Array} */
  sendDecline() {
    return this.machine.guarded(this, () => {
      this.machine.move('send decline');
      return sealInner(this.keys.inviterToJoiner, 1, encodeDecline());
    });
  }

  /** Receive the joiner's `done`. */
  receiveDone(bytes, now) {
    return this.machine.guarded(this, () => {
      checkTime(now, this.expires);
      this.openBox(bytes, 1, 'done');
      this.machine.move('receive done');
    });
  }

  openBox(bytes, seq, type) {
    const sealed = decodeClear(bytes);
    if (sealed.type !== 'sealed') throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, `expected a sealed ${type}`);
    const inner = decodeInner(openInner(this.keys.joinerToInviter, seq, sealed));
    if (inner.type !== type) throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, `expected ${type}, got ${inner.type}`);
    return inner;
  }
}

/**
 * The new device: scans the QR code or types the code.
 * @param {object} args
 * @param {object} [args.invite] a parsed QR invite (pairing-uri.js `parseInvite`)
 * @param {string} [args.typed] the typed code (code mode), with `channel` from the claim
 * @param {string} [args.channel] code mode: the channel id the relay gave for the nameplate
 * @param {Uint8Array} [args.ephemeralSecret] e_J (QR mode)
 * @param {bigint} [args.pakeScalar] the SPAKE2 scalar y (code mode)
 */
export class Joiner {
  constructor({ invite, typed, channel, ephemeralSecret, pakeScalar }) {
    this.machine = new Machine('joiner');
    if (invite !== undefined) {
      this.mode = 'qr';
      this.invite = invite;
      this.channel = invite.channel;
      this.expires = invite.expires;
      this.ephemeralSecret = ephemeralSecret ?? randomBytes(KEY_BYTES);
    } else {
      this.mode = 'code';
      const code = readCode(typed);
      this.code = code.code;
      this.nameplate = code.nameplate;
      this.channel = channel;
      this.expires = null;
      this.spake = new Spake2({ side: 'B', password: codePassword(this.code), idA: ID_A, idB: ID_B, scalar: pakeScalar ?? randomScalar() });
    }
    this.keys = null;
    this.offer = null;
    this.request = null;
    this.inviterPake = null;
  }

  get state() {
    return this.machine.state;
  }

  forget() {
    this.ephemeralSecret = null;
    this.spake = null;
    this.keys = null;
  }

  /** Receive the inviter's first message, the `pake`. */
  receivePake(bytes) {
    return this.machine.guarded(this, () => {
      const pake = decodeClear(bytes);
      if (pake.type !== 'pake') throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, `expected pake, got ${pake.type}`);
      this.machine.move('receive pake');
      this.inviterPake = pake.pake;
    });
  }

  /**
   * Derive the keys and send the hello.
   * @returns {{ bytes: Uint8Array, sas: string }}
   * @throws {AccordError} `expired` (QR mode, at or past the invite's expiry), `malformed`, `pairing_failed`
   */
  sendHello(now) {
    return this.machine.guarded(this, () => {
      this.machine.move('send hello');
      let hello;
      if (this.mode === 'qr') {
        if (now >= this.expires) throw new AccordError(ErrorCode.EXPIRED, 'the invite has expired');
        const joinerKey = x25519Public(this.ephemeralSecret);
        const transcript = qrTranscript({
          relay: this.invite.relay,
          channel: this.invite.channel,
          expires: this.invite.expires,
          purpose: this.invite.purpose,
          inviterKey: this.invite.key,
          joinerKey,
        });
        const shared = x25519(this.ephemeralSecret, this.invite.key);
        this.keys = keySchedule(transcript, (th) => blake2b(Person.PAIR_QR, concat(shared, th), KEY_BYTES, this.invite.secret));
        this.keys.shared = shared;
        hello = encodeHello({ mode: 'qr', key: joinerKey, mac: this.keys.mac });
      } else {
        const spakeKey = this.spake.finish(this.inviterPake);
        const transcript = codeTranscript({
          channel: this.channel,
          nameplate: this.nameplate,
          pakeInviter: this.inviterPake,
          pakeJoiner: this.spake.message,
        });
        this.keys = keySchedule(transcript, (th) => blake2b(Person.PAIR_CODE, th, KEY_BYTES, spakeKey));
        this.keys.spakeKey = spakeKey;
        hello = encodeHello({ mode: 'code', pake: this.spake.message, mac: this.keys.mac });
      }
      return { bytes: hello, sas: this.keys.sas };
    });
  }

  /**
   * Receive the inviter's offer (box 0): the inviter's key confirmation.
   * @returns {object} the offer: purpose, space, inviter, member, name
   */
  receiveOffer(bytes) {
    return this.machine.guarded(this, () => {
      const offer = this.openBox(bytes, 0, 'offer');
      this.machine.move('receive offer');
      if (this.mode === 'qr' && offer.purpose !== this.invite.purpose) {
        throw new AccordError(ErrorCode.MALFORMED, "the offer's purpose is not the invite's");
      }
      this.offer = offer;
      return offer;
    });
  }

  /**
   * Send the request: the joiner's device key, display name and join proof, and the
   * private space's join proof (`privateProof`) to take up an offered private space.
   * @returns {Uint8Array}
   */
  sendRequest({ device, name, proof, privateProof = null }) {
    if (privateProof !== null && !(this.offer && 'private' in this.offer)) {
      throw new UsageError("a private space's proof goes only with an offer that names one");
    }
    return this.machine.guarded(this, () => {
      this.machine.move('send request');
      this.request = { device, name, proof, privateProof };
      return sealInner(this.keys.joinerToInviter, 0, encodeRequest({ device, name, proof, privateProof }));
    });
  }

  /**
   * Receive the decision (box 1): a welcome, checked as 11.9 says, or a decline.
   * @returns {{ type: 'welcome', welcome: object } | { type: 'decline' }}
   * @throws {AccordError} `wrong_space`, `roster_invalid`, `bad_signature`, `malformed`,
   *   `decrypt_failed`, `bad_padding`, `unexpected_message`
   */
  receiveDecision(bytes) {
    return this.machine.guarded(this, () => {
      const sealed = decodeClear(bytes);
      if (sealed.type !== 'sealed') throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, 'expected a sealed decision');
      const inner = decodeInner(openInner(this.keys.inviterToJoiner, 1, sealed));
      if (inner.type === 'decline') {
        this.machine.move('receive decline');
        return { type: 'decline' };
      }
      if (inner.type !== 'welcome') throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, `expected welcome, got ${inner.type}`);
      this.machine.move('receive welcome');
      checkWelcome(inner, this.offer, this.request);
      return { type: 'welcome', welcome: inner };
    });
  }

  /** After the welcome was checked and the space is stored. @returns {Uint8Array} */
  sendDone() {
    return this.machine.guarded(this, () => {
      this.machine.move('send done');
      return sealInner(this.keys.joinerToInviter, 1, encodeDone());
    });
  }

  openBox(bytes, seq, type) {
    const sealed = decodeClear(bytes);
    if (sealed.type !== 'sealed') throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, `expected a sealed ${type}`);
    const inner = decodeInner(openInner(this.keys.inviterToJoiner, seq, sealed));
    if (inner.type !== type) throw new AccordError(ErrorCode.UNEXPECTED_MESSAGE, `expected ${type}, got ${inner.type}`);
    return inner;
  }
}

function rosterInvalid(message) {
  throw new AccordError(ErrorCode.ROSTER_INVALID, message);
}

/** One space's part of a welcome: `added` adds exactly `expected`; the heads and envelopes fit. */
function checkPart({ space, heads, envelopes, added }, inviter, device, expected) {
  const { entry, id } = decodeEntry(added);
  if (!bytesEqual(entry.space, space)) throw new AccordError(ErrorCode.WRONG_SPACE, 'added is for another space');
  if (entry.type !== 'roster') rosterInvalid('added is not a roster entry');
  if (!bytesEqual(entry.device, inviter)) rosterInvalid('added was not written by the inviter');
  if (!signatureValid(entry)) throw new AccordError(ErrorCode.BAD_SIGNATURE, "added's signature does not verify");
  if (!bytesEqual(entry.body, encode(expected))) rosterInvalid('added does not admit exactly the requested device');
  const namesAdded = heads.some(
    ([headDevice, seq, headId]) => bytesEqual(headDevice, entry.device) && seq === entry.seq && bytesEqual(headId, id),
  );
  if (!namesAdded) rosterInvalid('the heads do not name added');
  for (const bytes of envelopes) {
    const envelope = decode(bytes);
    if (!isMap(envelope) || !(envelope.space instanceof Uint8Array)) rosterInvalid('an envelope is not an envelope');
    if (!bytesEqual(envelope.space, space)) throw new AccordError(ErrorCode.WRONG_SPACE, 'an envelope for another space');
    if (!(envelope.to instanceof Uint8Array) || !bytesEqual(envelope.to, device)) rosterInvalid('an envelope for another device');
    if (!(envelope.from instanceof Uint8Array) || !bytesEqual(envelope.from, inviter)) rosterInvalid('an envelope from another device');
  }
}

/**
 * The joiner's checks of a welcome (SPEC.md 11.9 and 11.12) before it uses anything in it.
 * @throws {AccordError} `wrong_space`, `roster_invalid`, `bad_signature`, `malformed`
 */
export function checkWelcome(welcome, offer, request) {
  if (!bytesEqual(welcome.space, offer.space)) {
    throw new AccordError(ErrorCode.WRONG_SPACE, "the welcome's space is not the offer's");
  }
  const expected =
    offer.purpose === Purpose.PARTNER
      ? newMap([['op', 'add_member'], ['member', memberIdOf(request.device)], ['device', request.device], ['proof', request.proof]])
      : newMap([['op', 'add_device'], ['member', offer.member], ['device', request.device], ['proof', request.proof]]);
  checkPart(welcome, offer.inviter, request.device, expected);
  const part = welcome.private ?? null;
  if (request.privateProof === null || request.privateProof === undefined) {
    if (part !== null) rosterInvalid('the welcome adds this device to a private space it did not ask for');
    return;
  }
  if (part === null) rosterInvalid('the welcome leaves out the private space this device asked for');
  if (!bytesEqual(part.space, offer.private)) throw new AccordError(ErrorCode.WRONG_SPACE, "the welcome's private space is not the offered one");
  const privateRecord = newMap([['op', 'add_device'], ['member', offer.member], ['device', request.device], ['proof', request.privateProof]]);
  checkPart(part, offer.inviter, request.device, privateRecord);
}
