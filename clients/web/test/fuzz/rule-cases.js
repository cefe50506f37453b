/**
 * Random agreement-rule cases in the `rule` vector format (SPEC.md 12.x), with this
 * implementation's answer as `expect`, to compare with another implementation's runner:
 *
 *   node test/fuzz/rule-cases.js SEED COUNT > /tmp/rule-fuzz.json
 *   python -m protocol.conformance /tmp/rule-fuzz.json
 *
 * Cases mix several items, version graphs with concurrent heads and unknown parents,
 * affirmations (some of other items' versions, some expiring around `now`), pauses and
 * resumes, and records by people who are not members.
 */
import { ready, toHex } from '../../src/protocol/crypto.js';
import { evaluate } from '../../src/protocol/agreement.js';
import { buildRecords, nameId } from '../checks/rule.js';

await ready();

function rng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomCase(seed) {
  const random = rng(seed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const chance = (p) => random() < p;
  const people = ['A', 'B', 'C', 'D'];
  const members = people.slice(0, 2 + Math.floor(random() * 2));
  const writers = chance(0.2) ? people : members;
  const items = ['i1', 'i2', 'i3'].slice(0, 1 + Math.floor(random() * 3));
  const now = 1000;
  const time = () => (chance(0.6) ? null : pick([now - 1, now, now + 1, now + 500]));
  const versions = [];
  const count = 1 + Math.floor(random() * 7);
  for (let i = 0; i < count; i += 1) {
    const item = pick(items);
    const same = versions.filter((v) => v.item === item);
    const parents = same.filter(() => chance(0.4)).map((v) => v.label);
    const version = { label: `v${i}`, item, author: pick(writers), level: pick(['no', 'ask', 'yes']) };
    if (parents.length > 0) version.parents = parents;
    const expiry = time();
    if (expiry !== null) version.expires_at = expiry;
    if (chance(0.1)) version.known = false;
    versions.push(version);
  }
  const affirmations = [];
  for (let i = 0; i < Math.floor(random() * 16); i += 1) {
    const version = chance(0.7) && versions.length > 1 ? versions[versions.length - 1 - Math.floor(random() * 2)] : pick(versions);
    const affirmation = { member: pick(writers), version: version.label, at: Math.floor(random() * 900) };
    const expiry = time();
    if (expiry !== null) affirmation.expires_at = expiry;
    if (chance(0.1)) affirmation.item = pick(items);
    affirmations.push(affirmation);
  }
  const pauses = [];
  const resumes = [];
  for (let i = 0; i < (chance(0.3) ? 1 + Math.floor(random() * 2) : 0); i += 1) pauses.push({ member: pick(writers), id: `p${i}` });
  for (let i = 0; i < Math.floor(random() * 3); i += 1) {
    if (pauses.length === 0) break;
    const lifts = pauses.filter(() => chance(0.6)).map((p) => p.id);
    if (lifts.length > 0) resumes.push({ member: pick(writers), id: `r${i}`, lifts });
  }
  return { members, now, versions, affirmations, pauses, resumes };
}

function nameOf(id) {
  let end = id.length;
  while (end > 0 && id[end - 1] === 0) end -= 1;
  return new TextDecoder().decode(id.subarray(0, end));
}

function expectOf(c) {
  const records = buildRecords(c);
  const answer = evaluate({ members: c.members.map(nameId), now: c.now, ...records });
  const items = {};
  for (const [itemHex, item] of answer.items) {
    const waiting = {};
    for (const [head, list] of item.waitingFor) waiting[records.labels.get(head)] = list.map(nameOf);
    items[nameOf(Uint8Array.from(itemHex.match(/../g).map((b) => parseInt(b, 16))))] = {
      status: item.status,
      level: item.level,
      heads: item.heads.map((id) => records.labels.get(toHex(id))).sort(),
      waiting_for: waiting,
      last_agreed: item.lastAgreed.map((id) => records.labels.get(toHex(id))).sort(),
      stances: Object.fromEntries([...item.stances].map(([m, level]) => [nameOf(Uint8Array.from(m.match(/../g).map((b) => parseInt(b, 16)))), level])),
    };
  }
  return { paused: answer.paused.map(nameOf), items };
}

const seed = Number(process.argv[2] ?? 1);
const count = Number(process.argv[3] ?? 50);
const cases = [];
for (let i = 0; i < count; i += 1) {
  const c = randomCase(seed * 100000 + i);
  cases.push({ name: `random rule case ${seed}/${i}`, ...c, expect: expectOf(c) });
}
process.stdout.write(`${JSON.stringify({ kind: 'rule', description: 'random rule cases (web client fuzz)', cases }, null, 1)}\n`);
