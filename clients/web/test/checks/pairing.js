/**
 * Kinds `pairing-code`, `pairing-uri`, `pairing-message` and `pairing-session` (SPEC.md 11
 * and 12.7).
 * A session case is played on both sides with its fixed randomness, and every derived
 * value and every message is compared byte for byte.
 */
import { encode } from '../../src/protocol/cbor.js';
import { Inviter, Joiner } from '../../src/protocol/pairing.js';
import { decodeInner } from '../../src/protocol/pairing-messages.js';
import { WORDS, codePassword, makeCode, readCode } from '../../src/protocol/pairing-code.js';
import { encodeInvite, parseInvite } from '../../src/protocol/pairing-uri.js';
import { bigEndianInt } from '../../src/protocol/spake2.js';
import { AccordError } from '../../src/protocol/errors.js';
import { Mismatch, expectEqual, expectError, fromHex, onlyFields, toHex } from './helpers.js';

export function checkPairingCode(c) {
  if ('words' in c) {
    onlyFields(c, ['name', 'words']);
    expectEqual([...WORDS], c.words, 'word list');
    return;
  }
  if ('error' in c) {
    onlyFields(c, ['name', 'input', 'error']);
    expectError(() => readCode(c.input), c.error, 'reading the code');
    return;
  }
  if ('nameplate' in c) {
    onlyFields(c, ['name', 'nameplate', 'secret', 'code', 'password']);
    const code = makeCode(c.nameplate, fromHex(c.secret));
    expectEqual(code, c.code, 'code');
    expectEqual(toHex(codePassword(code)), c.password, 'password');
    expectEqual(readCode(c.code).code, c.code, 'code read back');
    expectEqual(toHex(readCode(c.code).secret), c.secret, 'secret read back');
    return;
  }
  onlyFields(c, ['name', 'input', 'code']);
  expectEqual(readCode(c.input).code, c.code, 'code read from typed text');
}

export function checkPairingUri(c) {
  if ('error' in c) {
    onlyFields(c, ['name', 'uri', 'now', 'error']);
    expectError(() => parseInvite(c.uri, c.now), c.error, 'parsing the invite');
    return;
  }
  onlyFields(c, ['name', 'fields', 'uri', 'now']);
  const fields = { ...c.fields, key: fromHex(c.fields.key), secret: fromHex(c.fields.secret) };
  expectEqual(encodeInvite(fields), c.uri, 'encoded invite');
  expectEqual(parseInvite(c.uri, c.now), fields, 'parsed invite');
}

export function checkPairingMessage(c) {
  const bytes = fromHex(c.message);
  if ('error' in c) {
    onlyFields(c, ['name', 'message', 'error']);
    expectError(() => decodeInner(bytes), c.error, 'decoding the message');
    return;
  }
  onlyFields(c, ['name', 'message', 'type']);
  const message = decodeInner(bytes);
  expectEqual(message.type, c.type, 'message type');
  expectEqual(toHex(encode(message)), c.message, 'the message encoded back');
}

function hexFields(object) {
  const out = {};
  for (const [key, value] of Object.entries(object)) {
    out[key] = typeof value === 'string' && /^([0-9a-f]{2})+$/.test(value) && key !== 'name' ? fromHex(value) : value;
  }
  return out;
}

export function checkPairingSession(c) {
  onlyFields(c, ['name', 'description', 'inputs', 'expect']);
  const i = c.inputs;
  const inviter = new Inviter({
    relay: i.relay,
    channel: i.channel,
    nameplate: i.nameplate,
    purpose: i.purpose,
    expires: i.expires,
    offer: {
      space: fromHex(i.offer.space),
      inviter: fromHex(i.offer.inviter),
      member: i.offer.member === null ? null : fromHex(i.offer.member),
      name: i.offer.name,
      private: 'private' in i.offer ? fromHex(i.offer.private) : null,
    },
    ephemeralSecret: fromHex(i.inviter_ephemeral_secret),
    secret: fromHex(i.secret),
    codeSecret: fromHex(i.code_secret),
    pakeScalar: bigEndianInt(fromHex(i.inviter_pake_scalar)),
  });
  if (i.purpose !== i.offer.purpose) throw new Mismatch('the offer purpose differs from the invite');
  expectEqual(inviter.uri, c.expect.uri, 'invite URI');
  expectEqual(inviter.code, c.expect.code, 'typed code');
  const joiner =
    i.mode === 'qr'
      ? new Joiner({ invite: parseInvite(inviter.uri, i.now), ephemeralSecret: fromHex(i.joiner_ephemeral_secret) })
      : new Joiner({ typed: i.typed, channel: i.channel, pakeScalar: bigEndianInt(fromHex(i.joiner_pake_scalar)) });

  const messages = [];
  let error = null;
  // One message: produced by `from`, received by the other side. A failure on receipt
  // burns the receiver; the sender's machine stays where it was (it would find the
  // channel gone on its next read).
  const deliver = (from, type, bytes, receive) => {
    messages.push({ from, type, bytes: toHex(bytes) });
    const to = from === 'inviter' ? 'joiner' : 'inviter';
    try {
      return receive(bytes);
    } catch (thrown) {
      if (!(thrown instanceof AccordError)) throw thrown;
      error = { at: type, side: to, code: thrown.code };
      return null;
    }
  };
  const run = () => {
    deliver('inviter', 'pake', inviter.sendPake(), (b) => joiner.receivePake(b));
    if (error) return;
    const hello = joiner.sendHello(i.now);
    deliver('joiner', 'hello', hello.bytes, (b) => inviter.receiveHello(b, i.now));
    if (error) return;
    deliver('inviter', 'offer', inviter.sendOffer(), (b) => joiner.receiveOffer(b));
    if (error) return;
    const { private_proof: privateProof = null, ...request } = hexFields(i.request);
    deliver('joiner', 'request', joiner.sendRequest({ ...request, privateProof }), (b) => inviter.receiveRequest(b, i.now));
    if (error) return;
    if (i.welcome === null) {
      deliver('inviter', 'decline', inviter.sendDecline(), (b) => joiner.receiveDecision(b));
      return;
    }
    const part = (fields) => ({
      heads: fields.heads.map(([device, seq, id]) => [fromHex(device), seq, fromHex(id)]),
      envelopes: fields.envelopes.map(fromHex),
      added: fromHex(fields.added),
    });
    const welcome = { ...part(i.welcome), private: 'private' in i.welcome ? part(i.welcome.private) : null };
    if (i.welcome.space !== i.offer.space || i.welcome.relay !== i.relay) throw new Mismatch('welcome space or relay differs');
    if ('private' in i.welcome && i.welcome.private.space !== i.offer.private) throw new Mismatch('the private part is for another space');
    deliver('inviter', 'welcome', inviter.sendWelcome(welcome), (b) => joiner.receiveDecision(b));
    if (error) return;
    deliver('joiner', 'done', joiner.sendDone(), (b) => inviter.receiveDone(b, i.now));
  };
  run();

  const got = { uri: inviter.uri, code: inviter.code, messages, states: [inviter.state, joiner.state] };
  if (error) got.error = error;
  const keys = joiner.keys ?? inviter.keys;
  if (keys && 'transcript' in c.expect) {
    Object.assign(got, {
      transcript: toHex(keys.transcript),
      transcript_hash: toHex(keys.th),
      root: toHex(keys.root),
      mac: toHex(keys.mac),
      inviter_to_joiner: toHex(keys.inviterToJoiner),
      joiner_to_inviter: toHex(keys.joinerToInviter),
      sas: keys.sas,
    });
    if (keys.shared) got.shared = toHex(keys.shared);
    if (keys.spakeKey) got.spake_key = toHex(keys.spakeKey);
    if (inviter.keys && joiner.keys) expectEqual(inviter.keys.sas, joiner.keys.sas, 'SAS on both screens');
  }
  expectEqual(got, c.expect, 'pairing session');
}
