/**
 * The agreement rule (SPEC.md 8.3 and 8.4): a pure function from the verified records,
 * the current members and `now` to what each item means right now.
 *
 * Theory of operation. Records are sets: each is keyed (versions by id, other records by
 * their canonical encoding), so duplicates collapse and arrival order cannot matter. Each
 * item is evaluated on its own over its versions `V` and the affirmations that name both
 * the item and a version of `V`. The definitions are numbered as in SPEC.md 8.3; the code
 * follows them one by one, with ids as lowercase hex strings for map keys.
 */
import { compareBytes, encode } from './cbor.js';
import { toHex } from './crypto.js';
import { Level, minLevel } from './agreement-records.js';

export const Status = Object.freeze({ AGREED: 'agreed', PENDING: 'pending' });

/** `live(e)`: e is null, or now < e (at now = e it has expired). */
function live(expiresAt, now) {
  return expiresAt === null || BigInt(now) < BigInt(expiresAt);
}

function bySortedBytes(ids) {
  return [...ids].sort(compareBytes);
}

/**
 * Evaluate the rule.
 * @param {object} input
 * @param {Uint8Array[]} input.members the current members' ids (at least one)
 * @param {number|bigint} input.now milliseconds since the Unix epoch
 * @param {object[]} [input.versions] stored versions (with `id`)
 * @param {object[]} [input.affirmations]
 * @param {object[]} [input.pauses]
 * @param {object[]} [input.resumes]
 * @returns {{ paused: Uint8Array[], items: Map<string, ItemAnswer> }} items keyed by the
 *   item id in hex; see `evaluateItem` for the answer of one item
 */
export function evaluate({ members, now, versions = [], affirmations = [], pauses = [], resumes = [] }) {
  const memberIds = uniqueBytes(members);
  const versionSet = new Map(versions.map((version) => [toHex(version.id), version]));
  const affirmationSet = [...new Map(affirmations.map((a) => [toHex(encode(a)), a])).values()];

  const byItem = new Map();
  for (const version of versionSet.values()) {
    const key = toHex(version.item);
    if (!byItem.has(key)) byItem.set(key, []);
    byItem.get(key).push(version);
  }
  const paused = pausedMembers(memberIds, pauses, resumes);
  const items = new Map();
  for (const [itemKey, itemVersions] of [...byItem.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    items.set(itemKey, evaluateItem(itemKey, itemVersions, affirmationSet, memberIds, now, paused.length > 0));
  }
  return { paused, items };
}

function uniqueBytes(list) {
  return [...new Map(list.map((bytes) => [toHex(bytes), bytes])).values()].sort(compareBytes);
}

/**
 * @typedef {object} ItemAnswer
 * @property {string} status 'agreed' or 'pending' (definition 6)
 * @property {string} level the level in force (definition 7)
 * @property {Uint8Array[]} heads sorted bytewise
 * @property {Map<string, Uint8Array[]>} waitingFor head id (hex) to the members who do not endorse it, sorted
 * @property {Uint8Array[]} lastAgreed sorted bytewise
 * @property {Map<string, string>} stances member id (hex) to stance(m)
 */

function evaluateItem(itemKey, versions, affirmations, members, now, anyPause) {
  const byId = new Map(versions.map((version) => [toHex(version.id), version]));
  const itemAffirmations = affirmations.filter(
    (a) => toHex(a.item) === itemKey && byId.has(toHex(a.version)) && toHex(byId.get(toHex(a.version)).item) === itemKey,
  );
  const memberKeys = members.map(toHex);

  // Definition 1: endorsement. E(m) as a set of version ids (hex).
  const endorsed = new Map(memberKeys.map((m) => [m, new Set()]));
  for (const version of versions) {
    const author = toHex(version.author);
    if (endorsed.has(author) && live(version.expires_at, now)) endorsed.get(author).add(toHex(version.id));
  }
  for (const a of itemAffirmations) {
    const member = toHex(a.member);
    if (endorsed.has(member) && live(a.expires_at, now)) endorsed.get(member).add(toHex(a.version));
  }
  const endorses = (memberKey, versionKey) => endorsed.get(memberKey).has(versionKey);

  // Definition 3: known parents, heads, ancestry.
  const knownParents = new Map();
  const namedAsParent = new Set();
  for (const [key, version] of byId) {
    const parents = version.parents.map(toHex).filter((p) => byId.has(p));
    knownParents.set(key, parents);
    parents.forEach((p) => namedAsParent.add(p));
  }
  const heads = [...byId.keys()].filter((key) => !namedAsParent.has(key));
  const ancestryCache = new Map();
  const ancestors = (key) => {
    if (ancestryCache.has(key)) return ancestryCache.get(key);
    const seen = new Set([key]);
    const stack = [key];
    while (stack.length > 0) {
      for (const parent of knownParents.get(stack.pop())) {
        if (!seen.has(parent)) {
          seen.add(parent);
          stack.push(parent);
        }
      }
    }
    ancestryCache.set(key, seen);
    return seen;
  };
  const maximal = (set) => {
    const dominated = new Set();
    for (const w of set) for (const u of ancestors(w)) if (u !== w) dominated.add(u);
    return [...set].filter((v) => !dominated.has(v));
  };
  const levelOf = (key) => byId.get(key).level;

  // Definition 4: stance.
  const stances = new Map();
  for (const m of memberKeys) {
    const own = endorsed.get(m);
    stances.set(m, own.size === 0 ? Level.NO : minLevel(maximal(own).map(levelOf)));
  }

  // Definitions 2 and 5: agreed versions and the last agreed.
  const agreed = (key) => memberKeys.every((m) => endorses(m, key));
  const underHeads = new Set();
  for (const head of heads) for (const key of ancestors(head)) underHeads.add(key);
  const lastAgreed = maximal([...underHeads].filter(agreed));

  // Definitions 6 to 8.
  const isAgreed = heads.length === 1 && agreed(heads[0]);
  let level;
  if (anyPause) level = Level.NO;
  else if (isAgreed) level = levelOf(heads[0]);
  else {
    const candidates = [...heads.map(levelOf), ...stances.values(), ...lastAgreed.map(levelOf)];
    if (lastAgreed.length === 0) candidates.push(Level.NO);
    level = minLevel(candidates);
  }
  const waitingFor = new Map();
  for (const head of heads) {
    waitingFor.set(head, members.filter((m) => !endorses(toHex(m), head)));
  }
  return {
    status: isAgreed ? Status.AGREED : Status.PENDING,
    level,
    heads: bySortedBytes(heads.map((key) => byId.get(key).id)),
    waitingFor,
    lastAgreed: bySortedBytes(lastAgreed.map((key) => byId.get(key).id)),
    stances,
  };
}

/** Definition 9: the members of M with an active pause, sorted bytewise. */
function pausedMembers(members, pauses, resumes) {
  const lifted = new Set();
  for (const resume of resumes) {
    for (const pauseId of resume.lifts) lifted.add(`${toHex(resume.member)}:${toHex(pauseId)}`);
  }
  return members.filter((member) => {
    const key = toHex(member);
    return pauses.some((p) => toHex(p.member) === key && !lifted.has(`${key}:${toHex(p.id)}`));
  });
}

/**
 * The earliest `expires_at` after `now` among the records, or null: when the client should
 * evaluate the rule again even if nothing new arrives (SPEC.md 8.3, last paragraph).
 */
export function nextExpiry({ now, versions = [], affirmations = [] }) {
  let next = null;
  for (const record of [...versions, ...affirmations]) {
    const at = record.expires_at;
    if (at !== null && BigInt(at) > BigInt(now) && (next === null || BigInt(at) < BigInt(next))) next = at;
  }
  return next;
}
