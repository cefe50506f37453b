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
 */
import { compareBytes, encode } from '../protocol/cbor.js';
import { aeadDecrypt, randomBytes, toHex } from '../protocol/crypto.js';
import { contentKey, EntryType, headerOf, sealData, sealRoster } from '../protocol/entry.js';
import { AccordError, ErrorCode } from '../protocol/errors.js';
import { authenticEntry, verifyFeed, withholding } from '../protocol/feeds.js';
import { memberIdOf } from '../protocol/identity.js';
import { unpad } from '../protocol/padding.js';
import { SHARED_DOC, decodePayload, encodePayload, voiceDoc, voiceOwner } from '../protocol/payload.js';
import { foldRoster } from '../protocol/roster.js';
import { encodeRosterRecord } from '../protocol/roster-records.js';
import { unwrapKey, wrapKey } from '../protocol/envelopes.js';
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
        if (!this.epochKeys.has(epoch)) opened += 1;
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
    this.withheld = withholding(items, new Map([...this.feeds].map(([device, feed]) => [device, feed.head])));
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
    if (epoch > this.roster.epoch || !this.epochKeys.has(epoch)) return this.waiting.push(id);
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
    if (epochKey === undefined) {
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

  /** Envelopes of every epoch key held, wrapped for `recipient`. */
  envelopesFor(recipient) {
    return [...this.epochKeys.entries()]
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

