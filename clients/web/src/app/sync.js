/**
 * The sync engine of one space: drain the outbox, fetch what is new, take the key
 * envelopes addressed to this device (DESIGN.md 6, SPEC.md 9).
 *
 * Every local write lands in the replica and the outbox first, so the app works fully
 * offline; `SyncLoop` retries with exponential backoff and jitter while the relay cannot
 * be reached, and polls gently while it can. Appends are idempotent on the relay, so a
 * retried upload never duplicates an entry.
 */
import { EntryType, decodeEntry } from '../protocol/entry.js';
import { OFFLINE, RelayError, SpaceClient } from './relay-client.js';

const BATCH = 64;

/**
 * One round: create the space on the relay if it is new there, push, pull, take keys.
 * @param {object} state the space state (see app.js): replica, relay, created, outgoingEnvelopes
 * @param {{ publicKey, secretKey }} device
 * @returns {Promise<{ received: number }>}
 * @throws {RelayError} `offline` when the relay cannot be reached, or the relay's code
 */
export async function syncOnce(state, device) {
  const { replica } = state;
  const client = state.client ?? (state.client = new SpaceClient(state.relay, replica.space, device));
  if (!state.created) {
    const first = replica.outbox[0];
    if (first !== undefined && isFounding(first)) {
      try {
        await client.createSpace(first);
      } catch (error) {
        if (!(error instanceof RelayError) || error.code !== 'space_exists') throw error;
      }
      replica.outbox.shift();
    }
    state.created = true;
  }
  while (replica.outbox.length > 0) {
    const batch = replica.outbox.slice(0, BATCH);
    await client.append(batch);
    replica.outbox.splice(0, batch.length);
  }
  if (state.outgoingEnvelopes.length > 0) {
    await client.putEnvelopes(state.outgoingEnvelopes);
    state.outgoingEnvelopes = [];
  }
  const fresh = await client.fetchAll(replica.haveVector());
  const { added } = replica.receive(fresh);
  const envelopes = await client.getEnvelopes();
  replica.receiveEnvelopes(envelopes);
  return { received: added.length };
}

function isFounding(bytes) {
  const { entry } = decodeEntry(bytes);
  return entry.type === EntryType.ROSTER && entry.seq === 1;
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
      const offline = error instanceof RelayError && error.code === OFFLINE;
      this.onStatus({ state: offline ? 'offline' : 'problem', code: error.code ?? 'error', retryIn: delay });
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
