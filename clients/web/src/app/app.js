/**
 * The web client's state, behind the screens: the profile, its keystore, its spaces, their
 * sync loops and pairing. Screens call the methods here and re-render on `onChange`.
 *
 * Offline first: every act is written to the replica, the outbox and IndexedDB before
 * anything goes to the network; the sync loop drains the outbox when the relay answers.
 * With each space's entries, IndexedDB keeps what the relay has shown (the high-water
 * marks and the rollbacks noticed, SPEC.md 4.5.5) and when each device was last heard.
 */
import { toHex } from '../protocol/crypto.js';
import { AccordError, ErrorCode } from '../protocol/errors.js';
import { Keystore } from './keystore.js';
import { LocalStore } from './store.js';
import { Replica, foundSpace } from './replica.js';
import { SyncLoop, syncOnce } from './sync.js';
import { LiveSocket, socketUrl } from './live.js';
import { SpaceClient } from './relay-client.js';
import { fetchJoined, runInvite, runJoin } from './pairing-flow.js';
import { setProfileName, profileName } from './agreements.js';

const PROFILE = 'profile';
const KEYSTORE = 'keystore';
const SPACE_PREFIX = 'space:';

/** What a sync round can change on the screens: entries, keys, and what the relay showed. */
function shown(replica) {
  return [replica.held.size, replica.epochKeys.size, replica.rollbacks.length, replica.openRollbacks().length, replica.withheld.length].join();
}

export class App {
  constructor(store) {
    this.store = store;
    this.keystore = null;
    this.profile = null;
    this.spaces = new Map();
    this.listeners = new Set();
    this.online = true;
  }

  static async load(indexedDB = globalThis.indexedDB) {
    const app = new App(await LocalStore.open(indexedDB));
    app.profile = (await app.store.get(PROFILE)) ?? null;
    return app;
  }

  /** 'new' (no profile yet), 'locked' or 'ready'. */
  get phase() {
    if (this.profile === null) return 'new';
    return this.keystore === null ? 'locked' : 'ready';
  }

  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed() {
    for (const listener of this.listeners) listener(this);
  }

  get device() {
    return this.keystore.device;
  }

  /** Make this device's keys, sealed under the passphrase. */
  async createProfile({ passphrase, name, relay }) {
    this.keystore = Keystore.create(passphrase);
    this.profile = { name, relay, v: 1 };
    await this.store.put(PROFILE, this.profile);
    await this.saveKeystore();
    this.changed();
  }

  /** @throws {WrongPassphrase} */
  async unlock(passphrase) {
    const blob = await this.store.get(KEYSTORE);
    this.keystore = Keystore.open(blob, passphrase);
    for (const key of await this.store.keys(SPACE_PREFIX)) {
      const saved = await this.store.get(key);
      this.addSpace(this.restore(saved));
    }
    this.changed();
  }

  lock() {
    for (const state of this.spaces.values()) {
      state.loop.stop();
      state.live?.stop();
    }
    this.spaces.clear();
    this.keystore?.lock();
    this.keystore = null;
    this.changed();
  }

  /** Quick exit: delete everything this device holds. */
  async wipe() {
    for (const state of this.spaces.values()) {
      state.loop.stop();
      state.live?.stop();
    }
    this.store.close();
    await LocalStore.wipe();
    this.spaces.clear();
    this.keystore = null;
    this.profile = null;
  }

  async saveKeystore() {
    await this.store.put(KEYSTORE, this.keystore.seal());
  }

  restore(saved) {
    const space = saved.space;
    const replica = new Replica({ space, device: this.device, epochKeys: this.keystore.epochKeys(space) });
    replica.receive(saved.entries);
    replica.outbox = [...saved.outbox];
    replica.pendingEnvelopes = [...(saved.pendingEnvelopes ?? [])];
    replica.openPendingEnvelopes();
    if (saved.marks) {
      replica.marks = new Map(saved.marks);
    } else if (saved.created) {
      // Saved before marks were kept: every own entry out of the outbox was taken by the relay.
      replica.noteAcknowledged(replica.ownHead().seq - replica.outbox.length);
    }
    replica.rollbacks = [...(saved.rollbacks ?? [])];
    replica.relayHeads = saved.relayHeads ? new Map(saved.relayHeads) : null;
    replica.heard = new Map(saved.heard ?? []);
    return {
      replica,
      relay: saved.relay,
      label: saved.label,
      kind: saved.kind,
      created: saved.created,
      outgoingEnvelopes: [...(saved.outgoingEnvelopes ?? [])],
      durableSeq: replica.ownHead().seq, // everything loaded is on disk
    };
  }

  addSpace(state) {
    state.status = { state: 'idle' };
    state.keyCount = state.replica.epochKeys.size;
    state.loop = new SyncLoop({
      run: async () => {
        const before = shown(state.replica);
        // Entries written but not yet saved are saved first, so that this round sends them.
        if ((state.durableSeq ?? 0) < state.replica.ownHead().seq) await this.persist(state);
        await syncOnce(state, this.device);
        await this.persist(state);
        if (shown(state.replica) !== before) this.changed();
      },
      onStatus: (status) => {
        const was = state.status.state;
        state.status = status;
        if (was !== status.state) this.changed();
      },
    });
    this.spaces.set(toHex(state.replica.space), state);
    state.loop.start();
    this.startLive(state);
    return state;
  }

  /** Keep a WebSocket open for the space: entries are pushed as they land (9.7). */
  startLive(state) {
    state.client ??= new SpaceClient(state.relay, state.replica.space, this.device);
    state.live = new LiveSocket({
      url: socketUrl(state.relay, state.replica.space),
      token: () => state.client.authenticate(),
      forgetToken: () => {
        state.client.token = null;
      },
      onEntries: async (entries) => {
        const before = state.replica.haveVector();
        const { added } = state.replica.receive(entries);
        if (added.length === 0) return;
        state.replica.noteHeard(before, Date.now());
        await this.persist(state);
        this.changed();
      },
      onState: (live) => {
        state.loop.pollMs = live === 'live' ? 20000 : 3000;
        if (live === 'live') state.loop.poke();
        if (live === 'removed') {
          state.status = { state: 'removed', code: 'device_removed' };
          this.changed();
        }
      },
    });
    state.live.start();
  }

  async persist(state) {
    const { replica } = state;
    // What is written below is read now, before the write finishes; only once it is on
    // disk may the sync loop send it (sync.js), so a crash never loses a sent entry.
    const upTo = replica.ownHead().seq;
    await this.store.put(SPACE_PREFIX + toHex(replica.space), {
      space: replica.space,
      relay: state.relay,
      label: state.label,
      kind: state.kind,
      created: state.created,
      entries: replica.entryBytes(),
      outbox: [...replica.outbox],
      pendingEnvelopes: [...replica.pendingEnvelopes],
      outgoingEnvelopes: [...state.outgoingEnvelopes],
      marks: [...replica.marks],
      rollbacks: replica.rollbacks.map((item) => ({ ...item })),
      relayHeads: replica.relayHeads === null ? null : [...replica.relayHeads],
      heard: [...replica.heard],
    });
    state.durableSeq = Math.max(state.durableSeq ?? 0, upTo);
    if (replica.epochKeys.size !== state.keyCount) {
      state.keyCount = replica.epochKeys.size;
      await this.saveKeystore();
    }
  }

  /** Found a relationship space; its founding entry goes to the relay with the first sync. */
  async createSpace(label, kind = 'relationship') {
    const { replica } = foundSpace({ device: this.device, clock: () => Date.now() });
    this.keystore.spaces.set(toHex(replica.space), replica.epochKeys);
    const state = { replica, relay: this.profile.relay, label, kind, created: false, outgoingEnvelopes: [] };
    setProfileName(replica, this.profile.name);
    await this.saveKeystore();
    await this.persist(state);
    this.addSpace(state);
    this.changed();
    return state;
  }

  relationshipSpaces() {
    return [...this.spaces.values()].filter((state) => state.kind === 'relationship');
  }

  /** My member's private space: the one whose member is mine in my relationship spaces
   * (a device linked by self pairing may also hold the one it made when it was set up). */
  privateSpace() {
    const privates = [...this.spaces.values()].filter((state) => state.kind === 'private');
    const member = this.relationshipSpaces()[0]?.replica.memberHex ?? null;
    return privates.find((state) => state.replica.memberHex === member) ?? privates[0] ?? null;
  }

  /** Run a write on a space, keep it locally at once, and sync soon. */
  async act(state, write) {
    const result = write(state.replica);
    await this.persist(state);
    state.loop.poke();
    this.changed();
    return result;
  }

  /** The spaces from which `deviceHex` would be removed: those where this device may remove it. */
  removalSpaces(deviceHex) {
    return [...this.spaces.values()].filter((state) => state.replica.canRemove(deviceHex));
  }

  /**
   * Remove one of my other devices from every space where this device may (SPEC.md 5.3),
   * and give each of those spaces a new key that the removed device never gets (6.3).
   * The new keys are stored in the keystore before any entry announces them.
   * @returns {Promise<number>} how many spaces it was removed from
   * @throws {AccordError} `roster_invalid` when it is not an active device of mine here
   */
  async removeDevice(deviceHex) {
    const spaces = this.removalSpaces(deviceHex);
    if (spaces.length === 0) throw new AccordError(ErrorCode.ROSTER_INVALID, 'not an active device of yours in any space here');
    const epochs = new Map(spaces.map((state) => [state, state.replica.newEpochKey()]));
    await this.saveKeystore();
    for (const state of spaces) {
      state.replica.removeDevice(deviceHex);
      state.outgoingEnvelopes.push(...state.replica.startEpoch(epochs.get(state)));
      await this.persist(state);
      state.loop.poke();
    }
    this.changed();
    return spaces.length;
  }

  /** Give a space a new key now (the roster says one is due: SPEC.md 5.5, 6.3). */
  async rotateKey(state) {
    const epoch = state.replica.newEpochKey();
    await this.saveKeystore();
    state.outgoingEnvelopes.push(...state.replica.startEpoch(epoch));
    await this.persist(state);
    state.loop.poke();
    this.changed();
  }

  /** Sync now and wait for it (used before pairing steps that need the relay). */
  async syncNow(state) {
    await this.persist(state); // what was just written is on disk before it may go out
    await syncOnce(state, this.device);
    await this.persist(state);
    this.changed();
  }

  /** Invite a partner or my other device; see pairing-flow.js `runInvite`. */
  async invite(state, { purpose, onInvite, decide }) {
    const outcome = await runInvite({
      state,
      purpose,
      name: this.profile.name,
      onInvite,
      decide,
      publish: (target) => this.syncNow(target),
      privateState: purpose === 'self' ? this.privateSpace() : null,
    });
    await this.persist(state);
    this.changed();
    return outcome;
  }

  /** Join a space by a scanned invite or a typed code; see pairing-flow.js `runJoin`. */
  async join({ input, onOffer }) {
    const result = await runJoin({
      input,
      relay: this.profile.relay,
      device: this.device,
      name: this.profile.name,
      onOffer,
      // Take up my member's private space unless I hold one of that member already.
      takesPrivate: (offer) => ![...this.spaces.values()].some((state) => state.kind === 'private' && state.replica.memberHex === toHex(offer.member)),
      enter: async ({ space, relay, envelopes }) => {
        const replica = new Replica({ space, device: this.device, epochKeys: this.keystore.epochKeys(space) });
        await fetchJoined(replica, relay, this.device);
        replica.receiveEnvelopes(envelopes);
        return replica;
      },
    });
    if (result.outcome !== 'joined') return result;
    const state = this.restore({ space: result.space, relay: result.relay, label: 'us', kind: 'relationship', created: true, entries: [], outbox: [] });
    await fetchJoined(state.replica, result.relay, this.device);
    const mine = profileName(state.replica, state.replica.memberHex);
    if (mine === null) setProfileName(state.replica, this.profile.name);
    const joined = [state];
    if (result.privateSpace) {
      const own = this.restore({ space: result.privateSpace, relay: result.relay, label: 'just me', kind: 'private', created: true, entries: [], outbox: [] });
      await fetchJoined(own.replica, result.relay, this.device);
      joined.push(own);
    }
    await this.saveKeystore();
    for (const each of joined) {
      await this.persist(each);
      this.addSpace(each);
    }
    this.changed();
    return result;
  }

  /** The connection came back (or went): sync every space soon. */
  setOnline(online) {
    this.online = online;
    if (online) {
      for (const state of this.spaces.values()) {
        state.loop.poke();
        state.live?.kick();
      }
    }
    this.changed();
  }

  spaceByHex(hex) {
    return this.spaces.get(hex) ?? null;
  }
}

