/**
 * The web client's state, behind the screens: the profile, its keystore, its spaces, their
 * sync loops and pairing. Screens call the methods here and re-render on `onChange`.
 *
 * Offline first: every act is written to the replica, the outbox and IndexedDB before
 * anything goes to the network; the sync loop drains the outbox when the relay answers.
 */
import { toHex } from '../protocol/crypto.js';
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
    return {
      replica,
      relay: saved.relay,
      label: saved.label,
      kind: saved.kind,
      created: saved.created,
      outgoingEnvelopes: [...(saved.outgoingEnvelopes ?? [])],
    };
  }

  addSpace(state) {
    state.status = { state: 'idle' };
    state.keyCount = state.replica.epochKeys.size;
    state.loop = new SyncLoop({
      run: async () => {
        const before = state.replica.held.size;
        await syncOnce(state, this.device);
        await this.persist(state);
        if (state.replica.held.size !== before) this.changed();
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
        const { added } = state.replica.receive(entries);
        if (added.length === 0) return;
        await this.persist(state);
        this.changed();
      },
      onState: (live) => {
        state.loop.pollMs = live === 'live' ? 20000 : 3000;
        if (live === 'live') state.loop.poke();
      },
    });
    state.live.start();
  }

  async persist(state) {
    const { replica } = state;
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
    });
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

  privateSpace() {
    return [...this.spaces.values()].find((state) => state.kind === 'private') ?? null;
  }

  /** Run a write on a space, keep it locally at once, and sync soon. */
  async act(state, write) {
    const result = write(state.replica);
    await this.persist(state);
    state.loop.poke();
    this.changed();
    return result;
  }

  /** Sync now and wait for it (used before pairing steps that need the relay). */
  async syncNow(state) {
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
      publish: () => this.syncNow(state),
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
    await this.saveKeystore();
    await this.persist(state);
    this.addSpace(state);
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

