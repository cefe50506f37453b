/**
 * The agreements of one space, for the screens: items with their level in force, what is
 * pending and for whom, and the acts a member can take (propose, change, affirm, pause,
 * resume). Everything is read from the replica's verified records and the agreement rule
 * (SPEC.md 8); every act is a new record in this member's own voice, never an edit.
 */
import { fromHex, randomBytes, toHex } from '../protocol/crypto.js';
import { evaluate, nextExpiry } from '../protocol/agreement.js';
import { RecordType, makeVersion, uniqueSorted } from '../protocol/agreement-records.js';
import { encodeVoiceRecord } from '../protocol/voice-records.js';

/** What the rule says about every item, with the versions to show. */
export function agreementView(replica, now = replica.clock()) {
  const byType = { version: [], affirmation: [], pause: [], resume: [] };
  for (const record of replica.records) if (byType[record.type]) byType[record.type].push(record);
  const members = replica.memberIds();
  if (members.length === 0) return { paused: [], items: [], pausedByMe: false, next: null };
  const answer = evaluate({
    members,
    now,
    versions: byType.version,
    affirmations: byType.affirmation,
    pauses: byType.pause,
    resumes: byType.resume,
  });
  const versions = new Map(byType.version.map((version) => [toHex(version.id), version]));
  const me = replica.memberHex;
  const items = [];
  for (const [itemHex, item] of answer.items) {
    const heads = item.heads.map((id) => versions.get(toHex(id)));
    const waiting = new Map([...item.waitingFor].map(([head, list]) => [head, list.map(toHex)]));
    const needsMe = heads.filter((head) => waiting.get(toHex(head.id)).includes(me));
    const lastAgreed = item.lastAgreed.map((id) => versions.get(toHex(id)));
    items.push({
      item: itemHex,
      status: item.status,
      level: item.level,
      heads,
      lastAgreed,
      waitingFor: waiting,
      needsMe,
      myStance: item.stances.get(me) ?? 'no',
      title: heads[0].title,
      kind: heads[0].kind,
      history: byType.version.filter((v) => toHex(v.item) === itemHex).sort((a, b) => a.created_at - b.created_at),
    });
  }
  items.sort((a, b) => a.title.localeCompare(b.title));
  const paused = answer.paused.map(toHex);
  return {
    paused,
    pausedByMe: paused.includes(me),
    items,
    next: nextExpiry({ now, versions: byType.version, affirmations: byType.affirmation }),
  };
}

/** A new item: its first version, written by me (which counts as my affirmation). */
export function proposeItem(replica, { kind, level, title, details = '', revisit = null }) {
  return writeVersion(replica, { item: randomBytes(16), kind, level, title, details, revisit, parents: [] });
}

/** A change: a new version whose parents are the item's current heads. */
export function changeItem(replica, itemView, { kind, level, title, details, revisit = null }) {
  return writeVersion(replica, {
    item: fromHex(itemView.item),
    kind: kind ?? itemView.kind,
    level,
    title: title ?? itemView.title,
    details: details ?? itemView.heads[0].details,
    revisit,
    parents: itemView.heads.map((head) => head.id),
  });
}

function writeVersion(replica, fields) {
  const version = makeVersion({
    ...fields,
    parents: uniqueSorted(fields.parents),
    author: fromHex(replica.memberHex),
    created_at: replica.clock(),
    expires_at: null,
  });
  const encoded = encodeVoiceRecord(version);
  replica.writeVoice([encoded]);
  return version;
}

/** Affirm exactly this version. */
export function affirm(replica, version) {
  const encoded = encodeVoiceRecord({
    v: 1,
    type: RecordType.AFFIRMATION,
    member: fromHex(replica.memberHex),
    version: version.id,
    item: version.item,
    at: replica.clock(),
    expires_at: null,
  });
  replica.writeVoice([encoded]);
}

/** Pause everything, at once. No reason is asked or stored. */
export function pause(replica) {
  const encoded = encodeVoiceRecord({
    v: 1,
    type: RecordType.PAUSE,
    member: fromHex(replica.memberHex),
    id: randomBytes(16),
    at: replica.clock(),
  });
  replica.writeVoice([encoded]);
}

/** Lift every pause of mine that I know to be active. */
export function resume(replica) {
  const me = replica.memberHex;
  const lifted = new Set();
  for (const record of replica.records) {
    if (record.type === RecordType.RESUME && toHex(record.member) === me) record.lifts.forEach((id) => lifted.add(toHex(id)));
  }
  const active = replica.records
    .filter((r) => r.type === RecordType.PAUSE && toHex(r.member) === me && !lifted.has(toHex(r.id)))
    .map((r) => r.id);
  if (active.length === 0) return false;
  const encoded = encodeVoiceRecord({
    v: 1,
    type: RecordType.RESUME,
    member: fromHex(me),
    id: randomBytes(16),
    at: replica.clock(),
    lifts: uniqueSorted(active).slice(0, 64),
  });
  replica.writeVoice([encoded]);
  return true;
}

/** The name a member shows in this space (the latest profile record), or null. */
export function profileName(replica, memberHex) {
  let best = null;
  for (const record of replica.records) {
    if (record.type !== 'profile' || toHex(record.member) !== memberHex) continue;
    if (best === null || record.at > best.at || (record.at === best.at && record.name > best.name)) best = record;
  }
  return best?.name ?? null;
}

/** Set the name I show in this space. */
export function setProfileName(replica, name) {
  const encoded = encodeVoiceRecord({ v: 1, type: 'profile', member: fromHex(replica.memberHex), name, at: replica.clock() });
  replica.writeVoice([encoded]);
}
