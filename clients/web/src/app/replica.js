/**
 * One space as this device holds it: its entries, its keys, and everything derived from
 * them (feeds, roster, documents, the agreement rule's inputs).
 *
 * Theory of operation. The replica keeps the set of authentic entries it holds (checked
 * on arrival: decoded, of this space, signed by their device). `refresh()` derives the
 * rest from that set and the epoch keys, as SPEC.md 7.5 orders it: the verified chain of
 * each feed (4.5), the roster fold (5.4), then every data entry in causal order that is in
 * its chain, accepted by the roster, in an allowed epoch whose key is held, decrypted,
 * authored by a member who may write the documents it touches, and made of valid Yjs
 * updates. Documents are rebuilt from scratch on every refresh, so the result is a pure
 * function of the entries and keys held, whatever the arrival order. Decrypted payloads
 * are cached by entry id. Local writes become entries of this device's own feed, added to
 * the set and to the outbox that the sync engine drains.
 *
 * What the relay shows (SPEC.md 4.5.5). The replica keeps a high-water mark per feed: the
 * highest seq the relay has ever shown this device (the verified head of another device's
 * feed, a head the relay reported, or an own entry the relay took). The sync engine hands
 * it the relay's heads (`noteRelayHeads`); a head below its mark is a rollback, kept in
 * `rollbacks` and shown to the person. Marks only ever go up, and no entry held is ever
 * given up because of what a relay says. Withholding (`withheld`: seen claims above the
 * verified heads), conflicting claims (`conflicts`) and forks (per feed) are derived from
 * the entries on every refresh.
 *
 * Removing a device (SPEC.md 5.3, 6.3) is two steps, so that a new key is stored before
 * anything announces it: `newEpochKey` makes and keeps the next epoch's key, then
 * `removeDevice` writes `remove_device` and `startEpoch` the `epoch` record, returning one
 * key envelope per active device left.
 */
import { bytesEqual, compareBytes, encode } from '../protocol/cbor.js';
import { aeadDecrypt, fromHex, randomBytes, toHex } from '../protocol/crypto.js';
import { contentKey, EntryType, headerOf, sealData, sealRoster } from '../protocol/entry.js';
import { AccordError, ErrorCode } from '../protocol/errors.js';
import { authenticEntry, rollbacks, seenConflicts, verifyFeed, withholding } from '../protocol/feeds.js';
import { memberIdOf } from '../protocol/identity.js';
import { unpad } from '../protocol/padding.js';
import { SHARED_DOC, decodePayload, encodePayload, voiceDoc, voiceOwner } from '../protocol/payload.js';
import { foldRoster } from '../protocol/roster.js';
import { encodeRosterRecord } from '../protocol/roster-records.js';
import { EPOCH_KEY_BYTES, keyId, unwrapKey, wrapKey } from '../protocol/envelopes.js';
import { Documents, checkUpdate, readVoices } from './documents.js';

export class Replica {
  /**
   * @param {object} args
   * @param {Uint8Array} args.space
   * @param {{ publicKey: Uint8Array, secretKey: Uint8Array }} args.device this device
   * @param {Map<number, Uint8Array>} [args.epochKeys]
   * @param {() => number} [args.clock] milliseconds since the Unix epoch
   */
  constructor({ space, device, epochKeys = new Map(), clock = () => Date.now() }) {
    this.space = space;
    this.device = device;
    this.deviceHex = toHex(device.publicKey);
    this.epochKeys = epochKeys;
    this.clock = clock;
    /** entry id hex -> { entry, id, bytes } */
    this.held = new Map();
    /** entry id hex -> { payload } | { error } */
    this.opened = new Map();
    /** encoded envelopes not opened yet (their sender may not be known yet) */
    this.pendingEnvelopes = [];
    this.outbox = [];
    /** device hex -> the highest seq the relay has shown (4.5.5 high-water marks) */
    this.marks = new Map();
    /** rollbacks seen: { device, storedSeq, reportedSeq, at } (each once) */
    this.rollbacks = [];
    /** the heads the relay reported last: device hex -> seq (null before the first report) */
    this.relayHeads = null;
    /** device hex -> when its verified feed last grew on this device (ms) */
    this.heard = new Map();
    this.refresh();
  }

  /**
   * Add entries received from the relay or from a store; returns the ids added.
   * Entries that are not authentic are refused and reported, never kept.
   * @returns {{ added: string[], refused: Array<{ code: string }> }}
   */
  receive(entryBytesList) {
    const added = [];
    const refused = [];
    for (const bytes of entryBytesList) {
      try {
        const item = authenticEntry(bytes, this.space);
        const key = toHex(item.id);
        if (!this.held.has(key)) {
          this.held.set(key, item);
          added.push(key);
        }
      } catch (error) {
        if (!(error instanceof AccordError)) throw error;
        refused.push({ code: error.code });
      }
    }
    if (added.length > 0) this.refresh();
    return { added, refused };
  }

  /** Add epoch keys from envelopes; envelopes that cannot be opened yet are kept. */
  receiveEnvelopes(envelopes) {
    this.pendingEnvelopes.push(...envelopes);
    return this.openPendingEnvelopes();
  }

  openPendingEnvelopes() {
    const still = [];
    let opened = 0;
    for (const bytes of this.pendingEnvelopes) {
      try {
        const { epoch, epochKey } = unwrapKey(bytes, {
          device: this.device,
          trustedSenders: this.roster.activeDevices(),
          space: this.space,
          announcedKeyIds: this.roster.keyIds,
        });
        // An envelope never replaces a key that is already right: epoch 0 has no announced
        // key id, so its first key stays; a later epoch's key is checked against its id.
        if (this.keyMatches(epoch)) continue;
        opened += 1;
        this.epochKeys.set(epoch, epochKey);
      } catch (error) {
        if (!(error instanceof AccordError)) throw error;
        if (error.code === ErrorCode.UNKNOWN_DEVICE || error.code === ErrorCode.WRONG_EPOCH) still.push(bytes);
      }
    }
    this.pendingEnvelopes = still;
    if (opened > 0) this.refresh();
    return opened;
  }

  /** Derive feeds, roster, documents and records from the entries and keys held. */
  refresh() {
    const items = [...this.held.values()];
    const byDevice = new Map();
    for (const item of items) {
      const key = toHex(item.entry.device);
      if (!byDevice.has(key)) byDevice.set(key, []);
      byDevice.get(key).push(item);
    }
    this.feeds = new Map([...byDevice].map(([device, list]) => [device, verifyFeed(list)]));
    const inChain = new Set();
    for (const feed of this.feeds.values()) for (const item of feed.chain) inChain.add(toHex(item.id));
    const fold = foldRoster(items, this.space);
    this.roster = fold.roster;
    this.rosterRefused = fold.refused;
    this.documents = new Documents();
    this.waiting = [];
    this.refusedContent = [];
    for (const item of fold.order) {
      if (item.entry.type !== EntryType.DATA) continue;
      const id = toHex(item.id);
      if (!inChain.has(id)) {
        this.waiting.push(id);
        continue;
      }
      this.applyData(item, fold.floors.get(id));
    }
    const { records, problems } = readVoices(this.documents);
    this.records = records;
    this.voiceProblems = problems;
    this.withheld = withholding(items, this.haveVector());
    this.conflicts = seenConflicts(items);
  }

  /**
   * Is the key held for `epoch` the one the roster announced? Epoch 0 has no announced
   * id: any key held counts. A key made here for an epoch not announced yet does not.
   */
  keyMatches(epoch) {
    const key = this.epochKeys.get(epoch);
    if (key === undefined) return false;
    if (epoch === 0) return true;
    const announced = this.roster.keyIds.get(epoch);
    return announced !== undefined && bytesEqual(announced, keyId(key));
  }

  applyData(item, floor) {
    const { entry } = item;
    const id = toHex(item.id);
    const device = toHex(entry.device);
    const seq = Number(entry.seq);
    if (!this.roster.devices.has(device)) return this.waiting.push(id);
    if (!this.roster.accepts(device, seq)) return this.refusedContent.push({ id, code: ErrorCode.DEVICE_REMOVED });
    const epoch = Number(entry.epoch);
    if (epoch < floor) return this.refusedContent.push({ id, code: ErrorCode.WRONG_EPOCH });
    if (epoch > this.roster.epoch || !this.keyMatches(epoch)) return this.waiting.push(id);
    const opened = this.open(item);
    if (opened.error) return this.refusedContent.push({ id, code: opened.error });
    const author = this.roster.memberOf(device);
    try {
      for (const { doc, update } of opened.payload.updates) {
        const owner = voiceOwner(doc);
        if (owner !== null && owner !== author) throw new AccordError(ErrorCode.NOT_AUTHOR, "an update to another member's voice");
        checkUpdate(update);
      }
    } catch (error) {
      if (!(error instanceof AccordError)) throw error;
      return this.refusedContent.push({ id, code: error.code });
    }
    for (const { doc, update } of opened.payload.updates) this.documents.apply(doc, update);
    return undefined;
  }

  open(item) {
    const id = toHex(item.id);
    if (this.opened.has(id)) return this.opened.get(id);
    const { entry } = item;
    let result;
    try {
      const key = contentKey(this.epochKeys.get(Number(entry.epoch)), entry.space, entry.epoch);
      const padded = aeadDecrypt(key, entry.nonce, encode(headerOf(entry)), entry.body);
      result = { payload: decodePayload(unpad(padded)) };
    } catch (error) {
      if (!(error instanceof AccordError)) throw error;
      result = { error: error.code };
    }
    this.opened.set(id, result);
    return result;
  }

  /** The member id (hex) of this device, once the roster knows it. */
  get memberHex() {
    return this.roster.memberOf(this.deviceHex);
  }

  /** Current members' ids (bytes), sorted. */
  memberIds() {
    return [...this.roster.members.entries()]
      .filter(([hex]) => this.roster.currentMembers().has(hex))
      .map(([, member]) => member.id)
      .sort(compareBytes);
  }

  /** My feed's head: `{ seq, id }` (seq 0 and id null when empty). */
  ownHead() {
    const feed = this.feeds.get(this.deviceHex);
    return feed ? { seq: feed.head, id: feed.headId } : { seq: 0, id: null };
  }

  /** Seen heads for a new entry: every other feed's verified head (SPEC.md 4.5.5). */
  seenHeads() {
    return [...this.feeds]
      .filter(([device, feed]) => device !== this.deviceHex && feed.head > 0)
      .map(([, feed]) => [feed.chain[feed.head - 1].entry.device, feed.head, feed.headId])
      .sort((a, b) => compareBytes(a[0], b[0]));
  }

  /** The have-vector for fetching: device hex -> highest seq of its verified chain. */
  haveVector() {
    return new Map([...this.feeds].map(([device, feed]) => [device, feed.head]));
  }

  // -- what the relay shows (SPEC.md 4.5.5) ------------------------------------------

  /** Note the verified heads that grew since `before` (a have-vector) as heard at `at`. */
  noteHeard(before, at) {
    for (const [device, head] of this.haveVector()) {
      if (device !== this.deviceHex && head > (before.get(device) ?? 0)) this.heard.set(device, at);
    }
  }

  /** The relay took this device's entries up to `seq`: the mark of its own feed rises. */
  noteAcknowledged(seq) {
    if (seq > (this.marks.get(this.deviceHex) ?? 0)) this.marks.set(this.deviceHex, seq);
    if (this.relayHeads !== null && seq > (this.relayHeads.get(this.deviceHex) ?? 0)) this.relayHeads.set(this.deviceHex, seq);
  }

  /**
   * Compare the heads the relay reports now with the high-water marks. A head below its
   * mark (absent counts as 0) is a rollback, kept once in `rollbacks`; then the marks
   * rise to what is reported. Nothing held is given up.
   * @param {Map<string, number>} reported device hex -> seq, as the relay reports them
   * @param {number} at when (ms)
   * @returns {Array<{ device, storedSeq, reportedSeq, at }>} the rollbacks first seen now
   */
  noteRelayHeads(reported, at) {
    const marks = new Map(this.marks);
    for (const [device, head] of this.haveVector()) {
      // Other feeds reached this device through the relay; this device's own entries
      // count only once the relay took them (noteAcknowledged).
      if (device !== this.deviceHex && head > (marks.get(device) ?? 0)) marks.set(device, head);
    }
    const found = [];
    for (const rollback of rollbacks(marks, reported)) {
      const known = this.rollbacks.some(
        (r) => r.device === rollback.device && r.storedSeq === rollback.storedSeq && r.reportedSeq === rollback.reportedSeq,
      );
      if (known) continue;
      const item = { ...rollback, at };
      this.rollbacks.push(item);
      found.push(item);
    }
    for (const [device, seq] of reported) if (seq > (marks.get(device) ?? 0)) marks.set(device, seq);
    this.marks = marks;
    this.relayHeads = new Map(reported);
    return found;
  }

  /**
   * Rollbacks the relay has not caught up with yet: feeds it still reports below what it
   * once showed. Each is `{ device, storedSeq, reportedSeq }` with the latest report.
   */
  openRollbacks() {
    if (this.relayHeads === null) return [];
    return rollbacks(this.marks, this.relayHeads).filter((item) => this.rollbacks.some((r) => r.device === item.device));
  }

  /** This device's own entries (encoded, in seq order) with a seq in `[from, to]`. */
  ownEntries(from, to) {
    const feed = this.feeds.get(this.deviceHex);
    if (!feed) return [];
    return feed.chain.filter((item) => item.entry.seq >= from && item.entry.seq <= to).map((item) => item.bytes);
  }

  // -- devices, removal and key rotation (SPEC.md 5.3, 6.3) ---------------------------

  /**
   * Every device the roster knows, for the devices screen.
   * @returns {Array<{ device: string, member: string, active: boolean, cut: number|null,
   *   head: number, heardAt: number|null, thisDevice: boolean, mine: boolean }>}
   *   in the order they were added (the fold's order)
   */
  deviceList() {
    const me = this.memberHex;
    return [...this.roster.devices].map(([device, known]) => ({
      device,
      member: known.member,
      active: known.cut === null,
      cut: known.cut,
      head: this.feeds.get(device)?.head ?? 0,
      heardAt: this.heard.get(device) ?? null,
      thisDevice: device === this.deviceHex,
      mine: me !== null && known.member === me,
    }));
  }

  /** May this device remove `deviceHex` (an active device of its own member, not itself)? */
  canRemove(deviceHex) {
    return (
      deviceHex !== this.deviceHex &&
      this.roster.isActive(this.deviceHex) &&
      this.roster.isActive(deviceHex) &&
      this.roster.memberOf(deviceHex) === this.memberHex
    );
  }

  /**
   * Make and keep the key of the next epoch, before anything announces it (6.3). The
   * caller stores the keystore, then calls `removeDevice` and `startEpoch`.
   * @returns {number} the new epoch
   */
  newEpochKey() {
    const epoch = this.roster.epoch + 1;
    this.epochKeys.set(epoch, randomBytes(EPOCH_KEY_BYTES));
    return epoch;
  }

  /**
   * Write `remove_device` for one of this member's other devices, cutting its feed at the
   * last entry this device holds of it (which is what this entry's seen heads name).
   * @throws {AccordError} `roster_invalid` when this device may not remove it
   */
  removeDevice(deviceHex) {
    if (!this.canRemove(deviceHex)) {
      throw new AccordError(ErrorCode.ROSTER_INVALID, 'only an active device of your own, other than this one, can be removed here');
    }
    const lastSeq = this.feeds.get(deviceHex)?.head ?? 0;
    this.writeRoster({ op: 'remove_device', device: fromHex(deviceHex), last_seq: lastSeq });
    if (this.roster.isActive(deviceHex)) throw new AccordError(ErrorCode.ROSTER_INVALID, 'the removal was not accepted');
  }

  /**
   * Start epoch `epoch` with the key `newEpochKey` kept: write the `epoch` record and seal
   * the key to every other active device (6.3).
   * @returns {Uint8Array[]} the envelopes, for the relay
   * @throws {AccordError} `roster_invalid` when this device is not active or the epoch is
   *   not the next one; `wrong_epoch` when the key was not made first
   */
  startEpoch(epoch) {
    if (!this.roster.isActive(this.deviceHex)) throw new AccordError(ErrorCode.ROSTER_INVALID, 'a removed device cannot change the key');
    if (epoch !== this.roster.epoch + 1) throw new AccordError(ErrorCode.ROSTER_INVALID, 'a rotation starts the next epoch');
    const epochKey = this.epochKeys.get(epoch);
    if (epochKey === undefined) throw new AccordError(ErrorCode.WRONG_EPOCH, 'the new key was not made first');
    this.writeRoster({ op: 'epoch', epoch, key_id: keyId(epochKey) });
    if (this.roster.epoch !== epoch || !this.keyMatches(epoch)) {
      throw new AccordError(ErrorCode.ROSTER_INVALID, 'the new epoch was not accepted');
    }
    return this.roster
      .activeDevices()
      .filter((key) => !bytesEqual(key, this.device.publicKey))
      .sort(compareBytes)
      .map((recipient) =>
        wrapKey({ senderSecretKey: this.device.secretKey, sender: this.device.publicKey, recipient, space: this.space, epoch, epochKey }),
      );
  }

  /** The roster asks for a new key (a device left since this one began) and this device may make it. */
  rotationDue() {
    return this.roster.rotationDue() && this.roster.isActive(this.deviceHex);
  }

  /**
   * Write one data entry carrying the changes `changes` make to documents.
   * @param {Array<{ doc: string, change: (doc: import('yjs').Doc) => void }>} changes
   * @returns {Uint8Array|null} the new entry, or null when nothing changed
   * @throws {AccordError} `wrong_epoch` when the current epoch's key is not held yet
   */
  write(changes) {
    const updates = [];
    for (const { doc, change } of changes) {
      const update = this.documents.change(doc, change);
      if (update !== null) updates.push({ doc, update });
    }
    if (updates.length === 0) return null;
    const epoch = this.roster.epoch;
    const epochKey = this.epochKeys.get(epoch);
    if (!this.keyMatches(epoch)) {
      this.refresh();
      throw new AccordError(ErrorCode.WRONG_EPOCH, "this device does not hold the current epoch's key yet");
    }
    const head = this.ownHead();
    const sealed = sealData({
      secretKey: this.device.secretKey,
      device: this.device.publicKey,
      space: this.space,
      seq: head.seq + 1,
      prev: head.id,
      epoch,
      epochKey,
      seen: this.seenHeads(),
      plaintext: encodePayload(this.clock(), updates),
    });
    return this.appendOwn(sealed);
  }

  /** Write records into this member's voice. */
  writeVoice(encodedRecords) {
    const name = voiceDoc(this.memberHex);
    return this.write([
      {
        doc: name,
        change: (doc) => {
          const map = doc.getMap('records');
          for (const { key, bytes } of encodedRecords) if (!map.has(key)) map.set(key, bytes);
        },
      },
    ]);
  }

  /** Change the shared document. */
  writeShared(change) {
    return this.write([{ doc: SHARED_DOC, change }]);
  }

  /**
   * Write a roster record as this device's next entry.
   * @returns {{ bytes: Uint8Array, id: Uint8Array, entry: object }}
   */
  writeRoster(fields) {
    const head = this.ownHead();
    const sealed = sealRoster({
      secretKey: this.device.secretKey,
      device: this.device.publicKey,
      space: this.space,
      seq: head.seq + 1,
      prev: head.id,
      epoch: this.roster.epoch,
      seen: this.seenHeads(),
      record: encodeRosterRecord(fields),
    });
    this.appendOwn(sealed);
    return sealed;
  }

  appendOwn(sealed) {
    const item = authenticEntry(sealed.bytes, this.space, this.device.publicKey);
    this.held.set(toHex(item.id), item);
    this.outbox.push(sealed.bytes);
    this.refresh();
    return sealed.bytes;
  }

  /** Envelopes of every epoch key held that the roster announced, wrapped for `recipient`. */
  envelopesFor(recipient) {
    return [...this.epochKeys.entries()]
      .filter(([epoch]) => this.keyMatches(epoch))
      .sort((a, b) => a[0] - b[0])
      .map(([epoch, epochKey]) =>
        wrapKey({ senderSecretKey: this.device.secretKey, sender: this.device.publicKey, recipient, space: this.space, epoch, epochKey }),
      );
  }

  /** Entries held, encoded, in causal order (for storage). */
  entryBytes() {
    return [...this.held.values()].map((item) => item.bytes);
  }
}

/**
 * Found a new space on this device: a random space id, the epoch 0 key and the founding
 * roster entry (SPEC.md 5.2, 6).
 * @returns {{ replica: Replica, founding: Uint8Array }}
 */
export function foundSpace({ device, clock }) {
  const space = randomBytes(16);
  const epochKeys = new Map([[0, randomBytes(32)]]);
  const replica = new Replica({ space, device, epochKeys, clock });
  const founding = replica.writeRoster({ op: 'found', member: memberIdOf(device.publicKey), device: device.publicKey });
  return { replica, founding: founding.bytes };
}

