/**
 * Pairing over the relay's rendezvous (SPEC.md 11 and 9.8): the protocol machines of
 * protocol/pairing.js, driven with real messages.
 *
 * The inviter shows the QR code and the typed code and never scans or types; the joiner
 * scans or types. Both screens show the same 6-digit SAS; the inviter's person sees the
 * joiner's name and fingerprint and approves or declines. Any failure burns the channel.
 */
import { bytesEqual } from '../protocol/cbor.js';
import { fromHex, toHex } from '../protocol/crypto.js';
import { memberIdOf } from '../protocol/identity.js';
import { Inviter, Joiner, INVITE_LIFETIME } from '../protocol/pairing.js';
import { readCode } from '../protocol/pairing-code.js';
import { parseInvite } from '../protocol/pairing-uri.js';
import { joinProof } from '../protocol/roster-records.js';
import { Rendezvous, SpaceClient } from './relay-client.js';

const nowSeconds = () => Math.floor(Date.now() / 1000);
const DECISION_WAIT_MS = 10 * 60 * 1000;

/**
 * Invite a partner (or another device of mine) into `state`'s space.
 * @param {object} args
 * @param {object} args.state the space state: replica, relay
 * @param {string} args.purpose 'partner' or 'self'
 * @param {string} args.name my display name
 * @param {(shown: { uri: string, code: string, expires: number }) => void} args.onInvite
 * @param {(request: { name, fingerprint, sas }) => Promise<boolean>} args.decide the person's approval
 * @param {() => Promise<void>} args.publish pushes the replica's outbox and envelopes now
 * @returns {Promise<'joined' | 'declined'>}
 */
export async function runInvite({ state, purpose, name, onInvite, decide, publish }) {
  const { replica } = state;
  const rendezvous = await new Rendezvous(state.relay).create();
  const expires = Math.min(rendezvous.expiresAt, nowSeconds() + INVITE_LIFETIME);
  const inviter = new Inviter({
    relay: state.relay,
    channel: rendezvous.channel,
    nameplate: rendezvous.nameplate,
    purpose,
    expires,
    offer: {
      space: replica.space,
      inviter: replica.device.publicKey,
      member: purpose === 'self' ? fromHex(replica.memberHex) : null,
      name,
    },
  });
  try {
    await rendezvous.post(inviter.sendPake());
    onInvite({ uri: inviter.uri, code: inviter.code, expires });
    inviter.receiveHello(await rendezvous.next({ deadline: expires * 1000 }), nowSeconds());
    await rendezvous.post(inviter.sendOffer());
    const request = inviter.receiveRequest(await rendezvous.next({ deadline: (expires + 180) * 1000 }), nowSeconds());
    const approved = await decide({ name: request.name, fingerprint: request.fingerprint, sas: request.sas });
    if (!approved) {
      await rendezvous.post(inviter.sendDecline());
      return 'declined';
    }
    const record =
      purpose === 'partner'
        ? { op: 'add_member', member: request.member, device: request.device, proof: request.proof }
        : { op: 'add_device', member: request.member, device: request.device, proof: request.proof };
    const added = replica.writeRoster(record);
    const envelopes = replica.envelopesFor(request.device);
    state.outgoingEnvelopes.push(...envelopes);
    await publish();
    const heads = [...replica.feeds.values()]
      .filter((feed) => feed.head > 0)
      .map((feed) => [feed.chain[feed.head - 1].entry.device, feed.head, feed.headId]);
    if (!heads.some(([, , id]) => bytesEqual(id, added.id))) throw new Error('the added entry is not in my feed');
    await rendezvous.post(inviter.sendWelcome({ heads, envelopes, added: added.bytes }));
    inviter.receiveDone(await rendezvous.next({ deadline: (expires + 180) * 1000 }), nowSeconds());
    await rendezvous.burn();
    return 'joined';
  } catch (error) {
    await rendezvous.burn();
    throw error;
  }
}

/**
 * Join a space by a scanned invite URI or a typed code.
 * @param {object} args
 * @param {string} args.input the QR code's text, or the typed code
 * @param {string} args.relay the relay to use for a typed code (the QR carries its own)
 * @param {{ publicKey, secretKey }} args.device this device
 * @param {string} args.name my display name
 * @param {(offer: { name, sas, purpose }) => void} args.onOffer
 * @param {(welcome: { space, relay, purpose, member }) => Promise<object>} args.enter makes
 *   the space state, fetches it from the relay and returns the replica
 * @returns {Promise<{ outcome: 'joined' | 'declined', space?: Uint8Array, relay?: string }>}
 */
export async function runJoin({ input, relay, device, name, onOffer, enter }) {
  const text = input.trim();
  let joiner;
  let rendezvous;
  if (text.startsWith('accord://')) {
    const invite = parseInvite(text, nowSeconds());
    rendezvous = await new Rendezvous(invite.relay).claim({ channel: invite.channel });
    joiner = new Joiner({ invite });
    relay = invite.relay;
  } else {
    const code = readCode(text);
    rendezvous = await new Rendezvous(relay).claim({ nameplate: code.nameplate });
    joiner = new Joiner({ typed: code.code, channel: rendezvous.channel });
  }
  try {
    const deadline = Date.now() + 5 * 60 * 1000;
    joiner.receivePake(await rendezvous.next({ deadline }));
    const hello = joiner.sendHello(nowSeconds());
    await rendezvous.post(hello.bytes);
    const offer = joiner.receiveOffer(await rendezvous.next({ deadline }));
    onOffer({ name: offer.name, sas: hello.sas, purpose: offer.purpose });
    const member = offer.purpose === 'partner' ? memberIdOf(device.publicKey) : offer.member;
    const proof = joinProof({ secretKey: device.secretKey, space: offer.space, member, by: offer.inviter });
    await rendezvous.post(joiner.sendRequest({ device: device.publicKey, name, proof }));
    const decision = joiner.receiveDecision(await rendezvous.next({ deadline: Date.now() + DECISION_WAIT_MS }));
    if (decision.type === 'decline') {
      await rendezvous.burn();
      return { outcome: 'declined' };
    }
    const { welcome } = decision;
    const replica = await enter({ space: welcome.space, relay: welcome.relay, purpose: offer.purpose, member, envelopes: welcome.envelopes });
    checkJoined(replica, welcome, device, member);
    await rendezvous.post(joiner.sendDone());
    return { outcome: 'joined', space: welcome.space, relay: welcome.relay };
  } catch (error) {
    await rendezvous.burn();
    throw error;
  }
}

/** After fetching: the feeds reach the welcome's heads and the roster holds this device. */
function checkJoined(replica, welcome, device, member) {
  for (const [headDevice, seq, id] of welcome.heads) {
    const feed = replica.feeds.get(toHex(headDevice));
    const reached = feed && feed.head >= seq && bytesEqual(feed.chain[seq - 1].id, id);
    if (!reached) throw new Error('the relay did not give everything the inviter had seen');
  }
  if (!replica.roster.isActive(toHex(device.publicKey)) || replica.roster.memberOf(toHex(device.publicKey)) !== toHex(member)) {
    throw new Error('the roster does not hold this device yet');
  }
}

/** Fetch a joined space for the first time (used by `enter`). */
export async function fetchJoined(replica, relay, device) {
  const client = new SpaceClient(relay, replica.space, device);
  replica.receive(await client.fetchAll(new Map()));
  replica.receiveEnvelopes(await client.getEnvelopes());
  return client;
}
