/**
 * Feeds (SPEC.md 4.5): the verified chain of one device's feed, gaps, broken links, forks
 * and fork proofs, causal order, and the seen-head checks (withholding, rollback,
 * conflicting claims).
 *
 * Everything here works on signed headers only and is a pure function of the set of
 * entries held: the same set gives the same report, whatever the arrival order.
 * Entries are passed around as `{ entry, id, bytes }` (see `decodeEntry`); ids as hex
 * strings are used for map keys.
 */
import { bytesEqual, compareBytes, decode, encode, isMap, newMap } from './cbor.js';
import { toHex } from './crypto.js';
import { decodeEntry, signatureValid, MAX_ENTRY_BYTES } from './entry.js';
import { AccordError, ErrorCode } from './errors.js';

export const FORK_PROOF_VERSION = 1;
export const MAX_FORK_PROOF_BYTES = 2228320;

/**
 * Decode an entry and check that it is authentic for the feed (space, device).
 * @returns {{ entry: object, id: Uint8Array, bytes: Uint8Array }}
 * @throws {AccordError} the decode errors, `wrong_space`, `unknown_device`, `bad_signature`
 */
export function authenticEntry(bytes, space, device = null) {
  const { entry, id } = decodeEntry(bytes);
  if (!bytesEqual(entry.space, space)) throw new AccordError(ErrorCode.WRONG_SPACE, 'an entry of another space');
  if (device !== null && !bytesEqual(entry.device, device)) {
    throw new AccordError(ErrorCode.UNKNOWN_DEVICE, 'an entry of another feed');
  }
  if (!signatureValid(entry)) throw new AccordError(ErrorCode.BAD_SIGNATURE, 'the entry signature does not verify');
  return { entry, id, bytes };
}

/**
 * The state of one feed from the authentic entries held (4.5.1 to 4.5.3).
 * @param {Array<{entry: object, id: Uint8Array}>} held authentic entries of one feed
 * @returns {{ head: number, headId: Uint8Array|null, chain: object[], gaps: number[][],
 *   broken: object[], forks: object[] }} `chain` is the verified chain's entries in seq
 *   order; `broken` items are `{ seq, prev, expected }`; `forks` items `{ seq, first, second }`
 *   (the two smallest entries at that seq, by id)
 */
export function verifyFeed(held) {
  const bySeq = new Map();
  for (const item of held) {
    const seq = Number(item.entry.seq);
    if (!bySeq.has(seq)) bySeq.set(seq, new Map());
    bySeq.get(seq).set(toHex(item.id), item);
  }
  const single = (seq) => (bySeq.has(seq) && bySeq.get(seq).size === 1 ? [...bySeq.get(seq).values()][0] : null);

  const chain = [];
  for (let seq = 1; ; seq += 1) {
    const item = single(seq);
    if (item === null) break;
    const previous = chain[chain.length - 1];
    const linked = seq === 1 ? item.entry.prev === null : bytesEqual(item.entry.prev, previous.id);
    if (!linked) break;
    chain.push(item);
  }
  const highest = Math.max(0, ...bySeq.keys());
  const gaps = [];
  for (let seq = 1; seq <= highest; seq += 1) {
    if (bySeq.has(seq)) continue;
    const last = gaps[gaps.length - 1];
    if (last && last[1] === seq - 1) last[1] = seq;
    else gaps.push([seq, seq]);
  }
  const broken = [];
  const forks = [];
  for (const seq of [...bySeq.keys()].sort((a, b) => a - b)) {
    const here = single(seq);
    const before = single(seq - 1);
    if (seq > 1 && here !== null && before !== null && !bytesEqual(here.entry.prev, before.id)) {
      broken.push({ seq, prev: here.entry.prev, expected: before.id });
    }
    if (bySeq.get(seq).size > 1) {
      const [first, second] = [...bySeq.get(seq).values()].sort((a, b) => compareBytes(a.id, b.id));
      forks.push({ seq, first, second });
    }
  }
  const head = chain.length;
  return { head, headId: head === 0 ? null : chain[head - 1].id, chain, gaps, broken, forks };
}

/** The fork proof of two entries at one seq (4.5.3). */
export function makeForkProof(first, second) {
  const [a, b] = [first, second].sort((x, y) => compareBytes(x.id, y.id));
  return encode(newMap([['v', FORK_PROOF_VERSION], ['entries', [a.bytes, b.bytes]]]));
}

/**
 * Check a fork proof.
 * @returns {{ space: Uint8Array, device: Uint8Array, seq: number }} the forked position
 * @throws {AccordError} `oversized`, `malformed`, `unsupported_version`, `bad_signature`
 */
export function verifyForkProof(bytes) {
  if (bytes.length > MAX_FORK_PROOF_BYTES) throw new AccordError(ErrorCode.OVERSIZED, 'a fork proof is too large');
  const proof = decode(bytes);
  if (!isMap(proof)) throw new AccordError(ErrorCode.MALFORMED, 'a fork proof is a map');
  if (proof.v !== FORK_PROOF_VERSION) {
    if (Number.isInteger(proof.v)) throw new AccordError(ErrorCode.UNSUPPORTED_VERSION, `fork proof version ${proof.v}`);
    throw new AccordError(ErrorCode.MALFORMED, 'a fork proof has v = 1');
  }
  const fields = Object.keys(proof).sort();
  const entries = proof.entries;
  if (fields.join() !== 'entries,v' || !Array.isArray(entries) || entries.length !== 2) {
    throw new AccordError(ErrorCode.MALFORMED, 'a fork proof is {v, entries: [two entries]}');
  }
  const decoded = entries.map((item) => {
    if (!(item instanceof Uint8Array) || item.length > MAX_ENTRY_BYTES) {
      throw new AccordError(ErrorCode.MALFORMED, 'a fork proof holds encoded entries');
    }
    return decodeEntry(item);
  });
  const [a, b] = decoded;
  const samePosition =
    bytesEqual(a.entry.space, b.entry.space) && bytesEqual(a.entry.device, b.entry.device) && a.entry.seq === b.entry.seq;
  if (!samePosition) throw new AccordError(ErrorCode.MALFORMED, 'the entries are not at one position');
  if (compareBytes(a.id, b.id) >= 0) throw new AccordError(ErrorCode.MALFORMED, 'the entries are not two, in id order');
  if (!signatureValid(a.entry) || !signatureValid(b.entry)) {
    throw new AccordError(ErrorCode.BAD_SIGNATURE, 'an entry of the proof does not verify');
  }
  return { space: a.entry.space, device: a.entry.device, seq: a.entry.seq };
}

/** The entries `e` names (4.5.4): `[device hex, seq, id hex]` for prev and each seen head. */
export function refsOf(entry) {
  const refs = [];
  if (entry.prev !== null) refs.push([toHex(entry.device), Number(entry.seq) - 1, toHex(entry.prev)]);
  for (const [device, seq, id] of entry.seen) refs.push([toHex(device), Number(seq), toHex(id)]);
  return refs;
}

/**
 * Causal ranks (4.5.4) of a set of entries; entries that cannot be ranked are absent.
 * @param {Array<{entry: object, id: Uint8Array}>} items (duplicates allowed)
 * @returns {{ ranks: Map<string, number>, order: object[] }} ranks by id hex, and the
 *   rankable entries in causal order (rank, then id)
 */
export function causalOrder(items) {
  const byId = new Map();
  for (const item of items) byId.set(toHex(item.id), item);
  const waitingOn = new Map();
  const pending = new Map();
  const ranks = new Map();
  const ready = [];
  for (const [id, item] of byId) {
    const refs = refsOf(item.entry);
    let ok = true;
    for (const [device, seq, refId] of refs) {
      const target = byId.get(refId);
      if (target === undefined || toHex(target.entry.device) !== device || Number(target.entry.seq) !== seq) ok = false;
    }
    if (!ok) continue;
    pending.set(id, new Set(refs.map((ref) => ref[2])));
    if (refs.length === 0) ready.push(id);
    for (const [, , refId] of refs) {
      if (!waitingOn.has(refId)) waitingOn.set(refId, []);
      waitingOn.get(refId).push(id);
    }
  }
  while (ready.length > 0) {
    const id = ready.pop();
    const refs = refsOf(byId.get(id).entry);
    ranks.set(id, 1 + Math.max(0, ...refs.map((ref) => ranks.get(ref[2]))));
    for (const dependent of waitingOn.get(id) ?? []) {
      const left = pending.get(dependent);
      if (left === undefined) continue;
      left.delete(id);
      if (left.size === 0 && !ranks.has(dependent)) ready.push(dependent);
    }
  }
  const order = [...ranks.keys()]
    .sort((x, y) => ranks.get(x) - ranks.get(y) || (x < y ? -1 : x > y ? 1 : 0))
    .map((id) => byId.get(id));
  return { ranks, order };
}

/**
 * Withholding (4.5.5): seen claims above this client's heads.
 * @param {Array<{entry: object, id: Uint8Array}>} items verified entries held
 * @param {Map<string, number>} have device hex to the head of its verified chain
 * @returns {Array<{device, claimedSeq, haveSeq, claimedBy, claimEntry}>} sorted by device
 */
export function withholding(items, have) {
  const best = new Map();
  for (const item of items) {
    for (const [device, seq] of item.entry.seen) {
      const key = toHex(device);
      const claim = { seq: Number(seq), by: item.entry.device, entry: item.id };
      const current = best.get(key);
      const better =
        current === undefined ||
        claim.seq > current.seq ||
        (claim.seq === current.seq &&
          (compareBytes(claim.by, current.by) < 0 || (bytesEqual(claim.by, current.by) && compareBytes(claim.entry, current.entry) < 0)));
      if (better) best.set(key, claim);
    }
  }
  return [...best.entries()]
    .filter(([device, claim]) => claim.seq > (have.get(device) ?? 0))
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([device, claim]) => ({
      device,
      claimedSeq: claim.seq,
      haveSeq: have.get(device) ?? 0,
      claimedBy: claim.by,
      claimEntry: claim.entry,
    }));
}

/**
 * Rollback (4.5.5): feeds the relay reports below the high-water marks.
 * @param {Map<string, number>} stored device hex to the highest seq ever shown
 * @param {Map<string, number>} reported device hex to the seq the relay reports now
 */
export function rollbacks(stored, reported) {
  return [...stored.entries()]
    .filter(([device, seq]) => (reported.get(device) ?? 0) < seq)
    .sort((a, b) => (a[0] < b[0] ? -1 : 1))
    .map(([device, seq]) => ({ device, storedSeq: seq, reportedSeq: reported.get(device) ?? 0 }));
}

/**
 * Conflicting claims (4.5.5): seen heads naming an entry other than the one(s) held.
 * @returns {Array<{device, seq, claimedId, heldId, claimedBy, claimEntry}>} sorted by
 *   (device, seq, claimedBy, claimEntry); a claim held twice counts once
 */
export function seenConflicts(items) {
  const held = new Map();
  for (const item of items) {
    const key = `${toHex(item.entry.device)}:${item.entry.seq}`;
    if (!held.has(key)) held.set(key, []);
    held.get(key).push(item.id);
  }
  const out = [];
  const seenKeys = new Set();
  for (const item of items) {
    for (const [device, seq, id] of item.entry.seen) {
      const ids = held.get(`${toHex(device)}:${seq}`);
      if (ids === undefined || ids.some((heldId) => bytesEqual(heldId, id))) continue;
      const dedupe = `${toHex(device)}:${seq}:${toHex(id)}:${toHex(item.id)}`;
      if (seenKeys.has(dedupe)) continue;
      seenKeys.add(dedupe);
      out.push({
        device: toHex(device),
        seq: Number(seq),
        claimedId: id,
        heldId: [...ids].sort(compareBytes)[0],
        claimedBy: item.entry.device,
        claimEntry: item.id,
      });
    }
  }
  return out.sort(
    (a, b) =>
      (a.device < b.device ? -1 : a.device > b.device ? 1 : 0) ||
      a.seq - b.seq ||
      compareBytes(a.claimedBy, b.claimedBy) ||
      compareBytes(a.claimEntry, b.claimEntry),
  );
}
