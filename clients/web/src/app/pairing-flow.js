/**
 * Pairing over the relay's rendezvous (SPEC.md 11 and 9.8): the protocol machines of
 * protocol/pairing.js, driven with real messages.
 *
 * The inviter shows the QR code and the typed code and never scans or types; the joiner
 * scans or types. Both screens show the same 6-digit SAS; the inviter's person sees the
 * joiner's name and fingerprint and approves or declines. Any failure burns the channel.
 *
 * Self pairing also links the member's private space (SPEC.md 11.12) when the inviting
 * device is in it: the offer names it, the new device signs a second join proof for it,
 * the inviter adds the device there too, and the welcome carries its part. The new
 * device checks and enters both spaces, or neither.
 */
import { bytesEqual, compareBytes } from '../protocol/cbor.js';
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
 * @param {(request: { name, fingerprint, sas, private }) => Promise<boolean>} args.decide the person's approval
 * @param {(state: object) => Promise<void>} args.publish pushes a space state's outbox and envelopes now
 * @param {object|null} [args.privateState] self pairing: my member's private space state, to link it too
 * @returns {Promise<'joined' | 'declined'>}
 */
export async function runInvite({ state, purpose, name, onInvite, decide, publish, privateState = null }) {
  const { replica } = state;
  const linkable = purpose === 'self' && privateState !== null && canLinkPrivate(privateState, state);
  const privateReplica = linkable ? privateState.replica : null;
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
      private: privateReplica === null ? null : privateReplica.space,
    },
  });
  try {
    await rendezvous.post(inviter.sendPake());
    onInvite({ uri: inviter.uri, code: inviter.code, expires });
    inviter.receiveHello(await rendezvous.next({ deadline: expires * 1000 }), nowSeconds());
    await rendezvous.post(inviter.sendOffer());
    const request = inviter.receiveRequest(await rendezvous.next({ deadline: (expires + 180) * 1000 }), nowSeconds());
    const approved = await decide({
      name: request.name,
      fingerprint: request.fingerprint,
      sas: request.sas,
      private: request.privateProof !== null,
    });
    if (!approved) {
      await rendezvous.post(inviter.sendDecline());
      return 'declined';
    }
    const record =
      purpose === 'partner'
        ? { op: 'add_member', member: request.member, device: request.device, proof: request.proof }
        : { op: 'add_device', member: request.member, device: request.device, proof: request.proof };
    if (request.privateProof !== null) await publish(privateState); // reach the relay first
    const shared = await addTo(state, record, request.device, publish);
    let privatePart = null;
    if (request.privateProof !== null) {
      const privateRecord = { op: 'add_device', member: request.member, device: request.device, proof: request.privateProof };
      privatePart = await addTo(privateState, privateRecord, request.device, publish);
    }
    await rendezvous.post(inviter.sendWelcome({ ...shared, private: privatePart }));
    inviter.receiveDone(await rendezvous.next({ deadline: (expires + 180) * 1000 }), nowSeconds());
    await rendezvous.burn();
    return 'joined';
  } catch (error) {
    await rendezvous.burn();
    throw error;
  }
}

/** Can self pairing link `privateState` (SPEC.md 11.12)? This device is active in it,
 * its member is the member of the shared space, and it is on the same relay. */
function canLinkPrivate(privateState, state) {
  const { replica } = privateState;
  return (
    privateState.relay === state.relay &&
    replica.roster.isActive(replica.deviceHex) &&
    replica.memberHex !== null &&
    replica.memberHex === state.replica.memberHex
  );
}

/** Write the roster record adding `device` to a space, publish it with the envelopes, and
 * return the welcome's part for that space: `{ heads, envelopes, added }`. */
async function addTo(state, record, device, publish) {
  const { replica } = state;
  const added = replica.writeRoster(record);
  const envelopes = replica.envelopesFor(device);
  state.outgoingEnvelopes.push(...envelopes);
  await publish(state);
  const heads = [...replica.feeds.values()]
    .filter((feed) => feed.head > 0)
    .map((feed) => [feed.chain[feed.head - 1].entry.device, feed.head, feed.headId])
    .sort((a, b) => compareBytes(a[0], b[0]));
  if (!heads.some(([, , id]) => bytesEqual(id, added.id))) throw new Error('the added entry is not in my feed');
  return { heads, envelopes, added: added.bytes };
}

/**
 * Join a space by a scanned invite URI or a typed code.
 * @param {object} args
 * @param {string} args.input the QR code's text, or the typed code
 * @param {string} args.relay the relay to use for a typed code (the QR carries its own)
 * @param {{ publicKey, secretKey }} args.device this device
 * @param {string} args.name my display name
 * @param {(offer: { name, sas, purpose, private }) => void} args.onOffer
 * @param {(welcome: { space, relay, purpose, member, envelopes }) => Promise<object>} args.enter makes
 *   the space state, fetches it from the relay and returns the replica (called for the
 *   private space too, when it is linked)
 * @param {(offer: object) => boolean} [args.takesPrivate] whether to take up an offered
 *   private space (by default: yes)
 * @returns {Promise<{ outcome: 'joined' | 'declined', space?: Uint8Array, relay?: string,
 *   privateSpace?: Uint8Array | null }>}
 */
export async function runJoin({ input, relay, device, name, onOffer, enter, takesPrivate = () => true }) {
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
    const member = offer.purpose === 'partner' ? memberIdOf(device.publicKey) : offer.member;
    const proof = joinProof({ secretKey: device.secretKey, space: offer.space, member, by: offer.inviter });
    const takes = 'private' in offer && takesPrivate(offer);
    const privateProof = takes ? joinProof({ secretKey: device.secretKey, space: offer.private, member, by: offer.inviter }) : null;
    onOffer({ name: offer.name, sas: hello.sas, purpose: offer.purpose, private: takes });
    await rendezvous.post(joiner.sendRequest({ device: device.publicKey, name, proof, privateProof }));
    const decision = joiner.receiveDecision(await rendezvous.next({ deadline: Date.now() + DECISION_WAIT_MS }));
    if (decision.type === 'decline') {
      await rendezvous.burn();
      return { outcome: 'declined' };
    }
    const { welcome } = decision;
    const replica = await enter({ space: welcome.space, relay: welcome.relay, purpose: offer.purpose, member, envelopes: welcome.envelopes });
    checkJoined(replica, welcome, device, member);
    const part = welcome.private ?? null;
    if (part !== null) {
      const privateReplica = await enter({ space: part.space, relay: welcome.relay, purpose: offer.purpose, member, envelopes: part.envelopes });
      checkJoined(privateReplica, part, device, member);
      const members = privateReplica.roster.members; // every member it ever had
      if (members.size !== 1 || !members.has(toHex(member))) throw new Error('the private space has, or had, another member');
    }
    await rendezvous.post(joiner.sendDone());
    return { outcome: 'joined', space: welcome.space, relay: welcome.relay, privateSpace: part === null ? null : part.space };
  } catch (error) {
    await rendezvous.burn();
    throw error;
  }
}

/** After fetching: the feeds reach the heads of the welcome (or of its private part) and
 * the roster holds this device. */
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
