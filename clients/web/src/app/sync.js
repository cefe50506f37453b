/**
 * The sync engine of one space: check the relay's heads, drain the outbox, fetch what is
 * new, take the key envelopes addressed to this device (DESIGN.md 6, SPEC.md 9).
 *
 * Every local write lands in the replica and the outbox first, so the app works fully
 * offline; `SyncLoop` retries with exponential backoff and jitter while the relay cannot
 * be reached, and polls gently while it can. Appends are idempotent on the relay, so a
 * retried upload never duplicates an entry.
 *
 * Each round starts by asking the relay for its feed heads (9.5) and handing them to the
 * replica, which compares them with its high-water marks (4.5.5): a relay that went back
 * to an older copy is noticed there and shown to the person. This device's own entries
 * that such a relay lost are then sent again, in order, before the outbox, so that new
 * writes go through again; entries held here are never given up.
 */
import { EntryType, decodeEntry } from '../protocol/entry.js';
import { OFFLINE, RelayError, SpaceClient } from './relay-client.js';

const BATCH = 64;
/** Refusals of an envelope's recipient: that envelope is dropped, the others still go. */
const GONE_RECIPIENT = new Set(['device_removed', 'unknown_device']);

/**
 * One round: create the space on the relay if it is new there, check the relay's heads,
 * put back this device's lost entries, push, pull, take keys.
 * @param {object} state the space state (see app.js): replica, relay, created, outgoingEnvelopes
 * @param {{ publicKey, secretKey }} device
 * @param {() => number} [now] milliseconds since the Unix epoch
 * @returns {Promise<{ received: number, restored: number, rollbacks: object[] }>}
 *   `rollbacks` are the ones first seen in this round
 * @throws {RelayError} `offline` when the relay cannot be reached, or the relay's code
 */
export function syncOnce(state, device, now = () => Date.now()) {
  // One round at a time per space: the loop, a live push and a person's act may all ask.
  const round = (state.syncing ?? Promise.resolve()).catch(() => {}).then(() => syncRound(state, device, now));
  state.syncing = round;
  return round;
}

async function syncRound(state, device, now) {
  const { replica } = state;
  const client = state.client ?? (state.client = new SpaceClient(state.relay, replica.space, device));
  if (!state.created) {
    const first = replica.outbox[0];
    if (first !== undefined && isFounding(first) && (state.durableSeq ?? 1) >= 1) {
      try {
        await client.createSpace(first);
      } catch (error) {
        if (!(error instanceof RelayError) || error.code !== 'space_exists') throw error;
      }
      replica.outbox.shift();
      replica.noteAcknowledged(1);
    }
    state.created = true;
  }
  const reported = await client.heads();
  const rollbacks = replica.noteRelayHeads(reported, now());
  const restored = await restoreOwnFeed(client, replica, reported.get(replica.deviceHex) ?? 0);
  // Only entries already on this device's disk go out (app.js sets `durableSeq` once a
  // save finished): a crash between sending and saving would otherwise let this device
  // reuse a seq the relay holds, a fork of its own feed. The rest go in the next round.
  const durable = state.durableSeq ?? Number.POSITIVE_INFINITY;
  for (;;) {
    const batch = [];
    for (const bytes of replica.outbox.slice(0, BATCH)) {
      if (Number(decodeEntry(bytes).entry.seq) > durable) break;
      batch.push(bytes);
    }
    if (batch.length === 0) break;
    acknowledge(replica, await client.append(batch));
    replica.outbox.splice(0, batch.length);
  }
  await putEnvelopes(client, state);
  const before = replica.haveVector();
  const fresh = await client.fetchAll(before);
  const { added } = replica.receive(fresh);
  replica.noteHeard(before, now());
  const envelopes = await client.getEnvelopes();
  replica.receiveEnvelopes(envelopes);
  return { received: added.length, restored, rollbacks };
}

function isFounding(bytes) {
  const { entry } = decodeEntry(bytes);
  return entry.type === EntryType.ROSTER && entry.seq === 1;
}

function acknowledge(replica, results) {
  const top = Math.max(0, ...results.map((result) => Number(result.seq)));
  replica.noteAcknowledged(top);
}

/**
 * The relay holds less of this device's feed than this device had sent (it lost entries,
 * or went back to an older copy of its database): send them again, in order, up to the
 * outbox. Appends are idempotent. Returns how many entries were sent.
 */
async function restoreOwnFeed(client, replica, relaySeq) {
  const firstUnsent = replica.outbox.length > 0 ? Number(decodeEntry(replica.outbox[0]).entry.seq) : replica.ownHead().seq + 1;
  const lost = replica.ownEntries(relaySeq + 1, firstUnsent - 1);
  for (let start = 0; start < lost.length; start += BATCH) {
    acknowledge(replica, await client.append(lost.slice(start, start + BATCH)));
  }
  return lost.length;
}

/**
 * Put the envelopes made here on the relay. The relay takes a batch whole or not at all;
 * an envelope for a device it no longer accepts (removed meanwhile) is dropped and the
 * rest sent again.
 */
async function putEnvelopes(client, state) {
  while (state.outgoingEnvelopes.length > 0) {
    try {
      await client.putEnvelopes(state.outgoingEnvelopes);
      state.outgoingEnvelopes = [];
    } catch (error) {
      const drop = error instanceof RelayError && GONE_RECIPIENT.has(error.code) && error.index !== null;
      if (!drop || error.index >= state.outgoingEnvelopes.length) throw error;
      state.outgoingEnvelopes = state.outgoingEnvelopes.filter((_, i) => i !== error.index);
    }
  }
}

/**
 * Runs `syncOnce` now and then: at once after a local write (`poke`), every
 * `pollMs` while things go well, and after a backoff with jitter while they do not.
 */
export class SyncLoop {
  constructor({ run, onStatus, pollMs = 3000, maxBackoffMs = 30000, random = Math.random }) {
    this.run = run;
    this.onStatus = onStatus;
    this.pollMs = pollMs;
    this.maxBackoffMs = maxBackoffMs;
    this.random = random;
    this.failures = 0;
    this.timer = null;
    this.running = false;
    this.stopped = true;
    this.again = false;
  }

  start() {
    this.stopped = false;
    this.schedule(0);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Sync soon (after a local write, or when the connection returns). */
  poke() {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.schedule(0);
  }

  schedule(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.tick(), delay);
  }

  /** The delay before retry number `failures`: exponential, capped, with full jitter. */
  backoff(failures) {
    const ceiling = Math.min(this.maxBackoffMs, 500 * 2 ** Math.min(failures, 10));
    return Math.round(ceiling / 2 + this.random() * (ceiling / 2));
  }

  async tick() {
    if (this.stopped || this.running) return;
    this.running = true;
    let delay = this.pollMs;
    try {
      await this.run();
      this.failures = 0;
      this.onStatus({ state: 'synced', at: Date.now() });
    } catch (error) {
      this.failures += 1;
      delay = this.backoff(this.failures);
      const code = error?.code ?? 'error';
      // `removed`: the relay no longer accepts this device in the space (SPEC.md 9.3).
      const state = code === OFFLINE ? 'offline' : code === 'device_removed' ? 'removed' : 'problem';
      this.onStatus({ state, code, retryIn: delay });
    } finally {
      this.running = false;
    }
    if (this.again) {
      this.again = false;
      delay = 0;
    }
    if (!this.stopped) this.schedule(delay);
  }
}
