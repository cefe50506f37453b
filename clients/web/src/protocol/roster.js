/**
 * The roster (SPEC.md 5): who is in a space, folded from every entry held.
 *
 * Theory of operation. `foldRoster` puts the held entries in causal order (4.5.4),
 * refuses the roster entries of forked feeds from the fork on, then walks the order once,
 * applying each roster entry with the rules of 5.3 (`applyRosterEntry`), computing each
 * entry's causal past as a vector clock and its epoch floor on the way. When a removal
 * cuts a device below one of its roster entries already applied in the pass, the device
 * is banned from that seq on and the walk starts again (5.4 step 4); each restart refuses
 * at least one more entry, so it ends. The result depends only on the set of entries.
 */
import { bytesEqual } from './cbor.js';
import { toHex } from './crypto.js';
import { AccordError, ErrorCode } from './errors.js';
import { causalOrder, refsOf } from './feeds.js';
import { memberIdOf } from './identity.js';
import { Op, decodeRosterRecord, joinProof, joinProofValid } from './roster-records.js';
import { EntryType, signatureValid } from './entry.js';

export { joinProof, joinProofValid };

/** The roster at one point of the fold. Device and member keys are lowercase hex. */
export class Roster {
  constructor() {
    this.founder = null;
    /** device hex -> { key, member, cut (null while active), addedBy: [device hex, seq] | null } */
    this.devices = new Map();
    /** member hex -> { id, devices: Set<device hex> } */
    this.members = new Map();
    this.epoch = 0;
    /** epoch -> key id (Uint8Array) */
    this.keyIds = new Map();
    this.epochStart = null;
    this.lastRemovalIndex = -1;
    this.epochStartIndex = -1;
  }

  /** Is entry `seq` of `device` (hex) accepted (5.1)? */
  accepts(device, seq) {
    const known = this.devices.get(device);
    return known !== undefined && (known.cut === null || seq <= known.cut);
  }

  isActive(device) {
    const known = this.devices.get(device);
    return known !== undefined && known.cut === null;
  }

  /** The current members: member hex -> sorted active device keys (hex). */
  currentMembers() {
    const out = new Map();
    for (const [member, { devices }] of this.members) {
      const active = [...devices].filter((device) => this.isActive(device)).sort();
      if (active.length > 0) out.set(member, active);
    }
    return out;
  }

  memberOf(device) {
    return this.devices.get(device)?.member ?? null;
  }

  /** Active device keys (bytes). */
  activeDevices() {
    return [...this.devices.values()].filter((device) => device.cut === null).map((device) => device.key);
  }

  /** Removed devices: device hex -> cut. */
  cuts() {
    return new Map([...this.devices].filter(([, device]) => device.cut !== null).map(([key, device]) => [key, device.cut]));
  }

  /** 5.5: a rotation is due after a removal since the epoch began, or when its start is no longer accepted. */
  rotationDue() {
    if (this.lastRemovalIndex > this.epochStartIndex) return true;
    if (this.epochStart !== null && !this.accepts(this.epochStart.device, this.epochStart.seq)) return true;
    return false;
  }
}

function invalid(message) {
  throw new AccordError(ErrorCode.ROSTER_INVALID, message);
}

function wrongEpoch(message) {
  throw new AccordError(ErrorCode.WRONG_EPOCH, message);
}

/**
 * Apply one roster entry to `roster` (SPEC.md 5.3), or throw without changing it.
 * @param {Roster} roster
 * @param {object} entry a decoded roster entry
 * @param {object} context { space, past: Map<device hex, seq>, floor, index (fold position) }
 * @returns {object} the decoded record
 * @throws {AccordError} `wrong_space`, `bad_signature`, `malformed`, `oversized`,
 *   `roster_invalid`, `unknown_device`, `device_removed`, `wrong_epoch`
 */
export function applyRosterEntry(roster, entry, { space, past, floor, index }) {
  if (!bytesEqual(entry.space, space)) throw new AccordError(ErrorCode.WRONG_SPACE, 'a roster entry of another space');
  if (!signatureValid(entry)) throw new AccordError(ErrorCode.BAD_SIGNATURE, 'the roster entry signature does not verify');
  const record = decodeRosterRecord(entry.body);
  const author = toHex(entry.device);
  const seq = Number(entry.seq);
  if (record.op !== Op.FOUND) {
    if (roster.founder === null) invalid('the space has not been founded');
    if (!roster.devices.has(author)) throw new AccordError(ErrorCode.UNKNOWN_DEVICE, 'the author was never added');
    if (!roster.accepts(author, seq)) throw new AccordError(ErrorCode.DEVICE_REMOVED, 'the author was removed before this entry');
    const addedBy = roster.devices.get(author).addedBy;
    if (author !== roster.founder && addedBy !== null && (past.get(addedBy[0]) ?? 0) < addedBy[1]) {
      invalid('the author writes before the entry that added it');
    }
  }
  if (entry.epoch > roster.epoch) wrongEpoch('the entry is in an epoch not started yet');
  if (entry.epoch < floor) wrongEpoch('the entry is below its epoch floor');
  const authorMember = roster.memberOf(author);
  switch (record.op) {
    case Op.FOUND: {
      if (roster.founder !== null) invalid('the space was already founded');
      if (seq !== 1) invalid('a founding record is entry 1');
      if (!bytesEqual(record.device, entry.device)) invalid('the founder signs its own founding');
      if (!bytesEqual(record.member, memberIdOf(record.device))) invalid("the founder's member id is its device's hash");
      if (entry.epoch !== 0) wrongEpoch('a space is founded in epoch 0');
      roster.founder = author;
      addDevice(roster, record.device, record.member, null);
      return record;
    }
    case Op.ADD_DEVICE: {
      const member = toHex(record.member);
      if (authorMember !== member) invalid('a device adds devices only to its own member');
      if (!roster.currentMembers().has(member)) invalid('the member is not current');
      if (roster.devices.has(toHex(record.device))) invalid('the device was known before');
      checkProof(record, space, entry.device);
      addDevice(roster, record.device, record.member, [author, seq]);
      return record;
    }
    case Op.ADD_MEMBER: {
      if (!bytesEqual(record.member, memberIdOf(record.device))) invalid("a new member's id is its first device's hash");
      if (roster.members.has(toHex(record.member))) invalid('the member was a member before');
      if (roster.devices.has(toHex(record.device))) invalid('the device was known before');
      checkProof(record, space, entry.device);
      addDevice(roster, record.device, record.member, [author, seq]);
      return record;
    }
    case Op.REMOVE_DEVICE: {
      const target = toHex(record.device);
      if (!roster.devices.has(target)) invalid('the device is not known');
      if (roster.memberOf(target) !== authorMember) invalid("a device removes only its own member's devices");
      if (!roster.isActive(target)) invalid('the device was already removed');
      if (target === author ? record.last_seq !== seq : record.last_seq < (past.get(target) ?? 0)) {
        invalid('the cut would take back entries its author had seen');
      }
      roster.devices.get(target).cut = record.last_seq;
      roster.lastRemovalIndex = index;
      return record;
    }
    case Op.REMOVE_MEMBER: {
      const member = toHex(record.member);
      if (!roster.currentMembers().has(member)) invalid('the member is not current');
      const listed = new Map(record.last_seqs.map(([device, last]) => [toHex(device), last]));
      for (const device of listed.keys()) {
        if (roster.memberOf(device) !== member) invalid("last_seqs names a device of another member");
      }
      const active = [...roster.members.get(member).devices].filter((device) => roster.isActive(device));
      const cuts = active.map((device) => {
        const cut = listed.get(device) ?? 0;
        if (device === author ? cut !== seq : cut < (past.get(device) ?? 0)) {
          invalid('the cut would take back entries its author had seen');
        }
        return [device, cut];
      });
      for (const [device, cut] of cuts) roster.devices.get(device).cut = cut;
      roster.lastRemovalIndex = index;
      return record;
    }
    default: {
      if (record.epoch !== roster.epoch + 1) invalid('a rotation starts the next epoch');
      roster.epoch = record.epoch;
      roster.keyIds.set(record.epoch, record.key_id);
      roster.epochStart = { device: author, seq, id: null };
      roster.epochStartIndex = index;
      return record;
    }
  }
}

function checkProof(record, space, by) {
  const valid = joinProofValid({ proof: record.proof, space, member: record.member, device: record.device, by });
  if (!valid) throw new AccordError(ErrorCode.BAD_SIGNATURE, 'the join proof does not verify');
}

function addDevice(roster, device, member, addedBy) {
  const memberKey = toHex(member);
  roster.devices.set(toHex(device), { key: device, member: memberKey, cut: null, addedBy });
  if (!roster.members.has(memberKey)) roster.members.set(memberKey, { id: member, devices: new Set() });
  roster.members.get(memberKey).devices.add(toHex(device));
}

/**
 * Fold the roster from every entry held (SPEC.md 5.4).
 * @param {Array<{entry: object, id: Uint8Array}>} items decoded entries, data and roster,
 *   duplicates allowed
 * @param {Uint8Array} space
 * @returns {{ roster: Roster, refused: Array<{id: Uint8Array, code: string}>, order: object[],
 *   floors: Map<string, number>, pasts: Map<string, Map<string, number>> }} `order` is
 *   the causal order used; `floors` and `pasts` give each ranked entry's epoch floor and
 *   causal past (by entry id hex), for opening data entries (6.1)
 */
export function foldRoster(items, space) {
  const { order } = causalOrder(items);
  const forkedFrom = forkedSeqs(items);
  const bans = new Map();
  for (;;) {
    const pass = foldPass(order, space, forkedFrom, bans);
    if (pass.newBans.length === 0) return pass;
    for (const [device, cut] of pass.newBans) bans.set(device, Math.min(bans.get(device) ?? cut, cut));
  }
}

/** device hex -> the lowest seq at which its held feed forks. */
function forkedSeqs(items) {
  const seen = new Map();
  const forked = new Map();
  for (const { entry, id } of items) {
    const key = `${toHex(entry.device)}:${entry.seq}`;
    const idHex = toHex(id);
    if (!seen.has(key)) seen.set(key, idHex);
    else if (seen.get(key) !== idHex) {
      const device = toHex(entry.device);
      const seq = Number(entry.seq);
      forked.set(device, Math.min(forked.get(device) ?? seq, seq));
    }
  }
  return forked;
}

function foldPass(order, space, forkedFrom, bans) {
  const roster = new Roster();
  const refused = [];
  const pasts = new Map();
  const reaches = new Map();
  const floors = new Map();
  const epochs = new Map();
  const appliedRoster = new Map();
  let newBans = [];
  order.forEach(({ entry, id }, index) => {
    const idHex = toHex(id);
    const device = toHex(entry.device);
    const seq = Number(entry.seq);
    const past = new Map();
    // 6.1: the highest accepted rotation in the causal past; it alone propagates (`reach`).
    let rotated = 0;
    for (const [refDevice, refSeq, refId] of refsOf(entry)) {
      for (const [d, s] of pasts.get(refId)) past.set(d, Math.max(past.get(d) ?? 0, s));
      past.set(refDevice, Math.max(past.get(refDevice) ?? 0, refSeq));
      rotated = Math.max(rotated, reaches.get(refId));
    }
    // 5.4 step 3: the floor also holds the epoch of the entry before it in its own feed.
    const floor = Math.max(rotated, entry.prev === null ? 0 : (epochs.get(toHex(entry.prev)) ?? 0));
    pasts.set(idHex, past);
    floors.set(idHex, floor);
    epochs.set(idHex, Number(entry.epoch));
    let reach = rotated;
    if (entry.type === EntryType.ROSTER && newBans.length === 0) {
      try {
        if (forkedFrom.has(device) && seq >= forkedFrom.get(device)) {
          throw new AccordError(ErrorCode.FORK, 'the feed forks at or before this entry');
        }
        if (bans.has(device) && seq > bans.get(device)) {
          throw new AccordError(ErrorCode.DEVICE_REMOVED, 'written after its device was cut');
        }
        const record = applyRosterEntry(roster, entry, { space, past, floor, index });
        if (record.op === Op.EPOCH) {
          roster.epochStart.id = id;
          reach = Math.max(reach, record.epoch);
        }
        if (!appliedRoster.has(device)) appliedRoster.set(device, []);
        appliedRoster.get(device).push(seq);
        newBans = bansFor(roster, appliedRoster, bans);
      } catch (error) {
        if (!(error instanceof AccordError)) throw error;
        refused.push({ id, code: error.code });
      }
    }
    reaches.set(idHex, reach);
  });
  refused.sort((a, b) => (toHex(a.id) < toHex(b.id) ? -1 : 1));
  return { roster, refused, order, floors, pasts, newBans };
}

/**
 * Every device that a removal just cut below one of its roster entries applied earlier in
 * this pass (a removal of a member cuts all its devices at once): `[device, cut]` pairs.
 */
function bansFor(roster, appliedRoster, bans) {
  const found = [];
  for (const [device, cut] of roster.cuts()) {
    const applied = appliedRoster.get(device) ?? [];
    if (applied.some((seq) => seq > cut) && !(bans.has(device) && bans.get(device) <= cut)) found.push([device, cut]);
  }
  return found;
}
