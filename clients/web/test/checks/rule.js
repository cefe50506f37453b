/**
 * Kind `rule` (rule-*.json): the agreement rule, SPEC.md 8.3 and 8.4, cases written with
 * short names (12.x). Each case is evaluated three times: records in the given order, in
 * reverse order, and with every record delivered twice; each answer must be the expected
 * one, and every list in it must be sorted bytewise.
 */
import { compareBytes } from '../../src/protocol/cbor.js';
import { toHex } from '../../src/protocol/crypto.js';
import { evaluate } from '../../src/protocol/agreement.js';
import { makeVersion, uniqueSorted } from '../../src/protocol/agreement-records.js';
import { Mismatch, expectEqual, fromHex, onlyFields } from './helpers.js';

const CASE_FIELDS = ['name', 'description', 'members', 'now', 'versions', 'affirmations', 'pauses', 'resumes', 'expect'];
const VERSION_FIELDS = [
  'label', 'item', 'author', 'level', 'parents', 'kind', 'title', 'details', 'revisit', 'created_at', 'expires_at', 'known',
];
const AFFIRMATION_FIELDS = ['member', 'version', 'item', 'at', 'expires_at'];
const PAUSE_FIELDS = ['member', 'id', 'at'];
const RESUME_FIELDS = ['member', 'id', 'at', 'lifts'];
const ITEM_FIELDS = ['status', 'level', 'heads', 'waiting_for', 'last_agreed', 'stances'];
const NAME_BYTES = 16;

/** A name (1 to 16 UTF-8 bytes, no NUL) as its 16-byte id. */
export function nameId(name) {
  const bytes = new TextEncoder().encode(name);
  if (typeof name !== 'string' || bytes.length < 1 || bytes.length > NAME_BYTES || bytes.includes(0)) {
    throw new Mismatch(`not a valid name: ${JSON.stringify(name)}`);
  }
  const id = new Uint8Array(NAME_BYTES);
  id.set(bytes);
  return id;
}

/** Build the records of a case: `{ versions (known only), affirmations, pauses, resumes, labels }`. */
export function buildRecords(c) {
  const specs = c.versions ?? [];
  const byLabel = new Map();
  for (const spec of specs) {
    onlyFields(spec, VERSION_FIELDS, `version ${spec.label}`);
    if (byLabel.has(spec.label)) throw new Mismatch(`label ${spec.label} used twice`);
    byLabel.set(spec.label, spec);
  }
  const built = new Map();
  const building = new Set();
  const build = (label) => {
    if (built.has(label)) return built.get(label);
    const spec = byLabel.get(label);
    if (spec === undefined) throw new Mismatch(`no version labelled ${label}`);
    if (building.has(label)) throw new Mismatch(`the parents of ${label} form a cycle`);
    building.add(label);
    const version = makeVersion({
      item: nameId(spec.item),
      kind: spec.kind ?? 'limit',
      level: spec.level,
      title: spec.title ?? spec.label,
      details: spec.details ?? '',
      revisit: spec.revisit ?? null,
      parents: uniqueSorted((spec.parents ?? []).map((parent) => build(parent).id)),
      author: nameId(spec.author),
      created_at: spec.created_at ?? 0,
      expires_at: spec.expires_at ?? null,
    });
    built.set(label, version);
    return version;
  };
  specs.forEach((spec) => build(spec.label));
  const labels = new Map([...built.entries()].map(([label, version]) => [toHex(version.id), label]));

  const affirmations = (c.affirmations ?? []).map((a) => {
    onlyFields(a, AFFIRMATION_FIELDS, 'affirmation');
    const version = build(a.version);
    return {
      v: 1,
      type: 'affirmation',
      member: nameId(a.member),
      version: version.id,
      item: a.item === undefined ? version.item : nameId(a.item),
      at: a.at ?? 0,
      expires_at: a.expires_at ?? null,
    };
  });
  const pauses = (c.pauses ?? []).map((p) => {
    onlyFields(p, PAUSE_FIELDS, 'pause');
    return { v: 1, type: 'pause', member: nameId(p.member), id: nameId(p.id), at: p.at ?? 0 };
  });
  const resumes = (c.resumes ?? []).map((r) => {
    onlyFields(r, RESUME_FIELDS, 'resume');
    return {
      v: 1,
      type: 'resume',
      member: nameId(r.member),
      id: nameId(r.id),
      at: r.at ?? 0,
      lifts: uniqueSorted(r.lifts.map(nameId)),
    };
  });
  const versions = specs.filter((spec) => spec.known !== false).map((spec) => built.get(spec.label));
  return { versions, affirmations, pauses, resumes, labels };
}

function nameOf(id) {
  let end = id.length;
  while (end > 0 && id[end - 1] === 0) end -= 1;
  return new TextDecoder().decode(id.subarray(0, end));
}

function requireSorted(list, what) {
  for (let i = 1; i < list.length; i += 1) {
    if (compareBytes(list[i - 1], list[i]) >= 0) throw new Mismatch(`${what} is not sorted bytewise`);
  }
}

/** The answer in the case's own terms: names for ids, labels for version ids. */
function describe(answer, labels) {
  requireSorted(answer.paused, 'paused');
  const items = {};
  for (const [itemHex, item] of answer.items) {
    requireSorted(item.heads, 'heads');
    requireSorted(item.lastAgreed, 'last_agreed');
    const waiting = {};
    for (const [headHex, members] of item.waitingFor) {
      requireSorted(members, 'waiting_for');
      waiting[labels.get(headHex)] = members.map(nameOf);
    }
    const stances = {};
    for (const [memberHex, level] of item.stances) stances[nameOf(fromHex(memberHex))] = level;
    items[nameOf(fromHex(itemHex))] = {
      status: item.status,
      level: item.level,
      heads: item.heads.map((id) => labels.get(toHex(id))).sort(),
      waiting_for: waiting,
      last_agreed: item.lastAgreed.map((id) => labels.get(toHex(id))).sort(),
      stances,
    };
  }
  return { paused: answer.paused.map(nameOf), items };
}

function expected(c) {
  const items = {};
  for (const [name, item] of Object.entries(c.expect.items)) {
    onlyFields(item, ITEM_FIELDS, `expected item ${name}`);
    items[name] = { ...item, heads: [...item.heads].sort(), last_agreed: [...item.last_agreed].sort() };
  }
  return { paused: c.expect.paused, items };
}

export function checkRule(c) {
  onlyFields(c, CASE_FIELDS);
  onlyFields(c.expect, ['paused', 'items'], 'expect');
  const records = buildRecords(c);
  const members = c.members.map(nameId);
  const orders = {
    'given order': (list) => list,
    'reverse order': (list) => [...list].reverse(),
    'every record twice': (list) => [...list, ...list],
  };
  const want = expected(c);
  for (const [what, order] of Object.entries(orders)) {
    const answer = evaluate({
      members: order(members),
      now: c.now,
      versions: order(records.versions),
      affirmations: order(records.affirmations),
      pauses: order(records.pauses),
      resumes: order(records.resumes),
    });
    const got = describe(answer, records.labels);
    for (const [name, item] of Object.entries(want.items)) {
      if (item.stances === undefined && got.items[name] !== undefined) delete got.items[name].stances;
    }
    expectEqual(got, want, `answer (${what})`);
  }
}
