/**
 * Random roster histories, written as a vector file of kind `roster` (check `fold`), so
 * that another implementation's conformance runner can be compared with this one:
 *
 *   node test/fuzz/roster-scenarios.js SEED COUNT [STEPS] > /tmp/roster-fuzz.json
 *   python -m protocol.conformance /tmp/roster-fuzz.json
 *
 * Devices of two or three members each keep their own view of the space, write roster
 * records and data entries from what they have seen (adding devices and members,
 * removing, rotating keys, sometimes something the rules refuse), and exchange views at
 * random, so that histories are concurrent. The `expect` of each case is this
 * implementation's fold.
 */
import { ready, toHex } from '../../src/protocol/crypto.js';
import { decodeEntry, sealData, sealRoster } from '../../src/protocol/entry.js';
import { deviceFromSeed, memberIdOf } from '../../src/protocol/identity.js';
import { foldRoster } from '../../src/protocol/roster.js';
import { encodeRosterRecord, joinProof } from '../../src/protocol/roster-records.js';
import { keyId } from '../../src/protocol/envelopes.js';

await ready();

/** A small deterministic generator (mulberry32). */
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

function bytesFrom(random, count) {
  return Uint8Array.from({ length: count }, () => Math.floor(random() * 256));
}

function scenario(seed, steps) {
  const random = rng(seed);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const space = bytesFrom(random, 16);
  const epochKeys = new Map([[0, bytesFrom(random, 32)]]);
  const devices = [];
  const newDevice = () => {
    const device = { keys: deviceFromSeed(bytesFrom(random, 32)), view: new Map(), seq: 0, prev: null, epoch: 0 };
    device.hex = toHex(device.keys.publicKey);
    devices.push(device);
    return device;
  };
  const items = (view) => [...view.values()];
  const write = (device, sealed) => {
    device.seq += 1;
    device.prev = sealed.id;
    device.view.set(toHex(sealed.id), { ...decodeEntry(sealed.bytes), bytes: sealed.bytes });
  };
  const headsSeen = (device) => {
    const heads = new Map();
    for (const { entry, id } of items(device.view)) {
      const key = toHex(entry.device);
      if (key === device.hex) continue;
      if (!heads.has(key) || heads.get(key)[1] < entry.seq) heads.set(key, [entry.device, entry.seq, id]);
    }
    // Only name a head whose whole chain is held (4.5.5): keep it simple by checking counts.
    return [...heads.values()].filter(([dev, seq]) => items(device.view).filter((i) => toHex(i.entry.device) === toHex(dev)).length >= seq);
  };
  const epochFor = (device, roster) => Math.max(device.epoch, Math.min(roster.epoch, Math.max(...epochKeys.keys())));
  const roster = (device) => foldRoster(items(device.view), space).roster;
  const writeRoster = (device, record, rosterNow) => {
    const epoch = epochFor(device, rosterNow);
    device.epoch = epoch;
    write(device, sealRoster({ secretKey: device.keys.secretKey, device: device.keys.publicKey, space, seq: device.seq + 1, prev: device.prev, epoch, seen: headsSeen(device), record: encodeRosterRecord(record) }));
  };
  const writeData = (device, rosterNow) => {
    const epoch = epochFor(device, rosterNow);
    device.epoch = epoch;
    write(device, sealData({ secretKey: device.keys.secretKey, device: device.keys.publicKey, space, seq: device.seq + 1, prev: device.prev, epoch, epochKey: epochKeys.get(epoch), seen: headsSeen(device), plaintext: new Uint8Array([1]), nonce: bytesFrom(random, 24) }));
  };

  const founder = newDevice();
  writeRoster(founder, { op: 'found', member: memberIdOf(founder.keys.publicKey), device: founder.keys.publicKey }, roster(founder));
  for (let step = 0; step < steps; step += 1) {
    const actors = devices.filter((d) => d.view.size > 0);
    const device = pick(actors);
    const now = roster(device);
    const member = now.memberOf(device.hex);
    const choice = random();
    if (choice < 0.25) {
      const other = pick(actors);
      for (const [id, item] of other.view) device.view.set(id, item);
    } else if (choice < 0.4) {
      writeData(device, now);
    } else if (choice < 0.5 && devices.length < 6) {
      const joining = newDevice();
      const proof = joinProof({ secretKey: joining.keys.secretKey, space, member: memberIdOf(joining.keys.publicKey), by: device.keys.publicKey });
      writeRoster(device, { op: 'add_member', member: memberIdOf(joining.keys.publicKey), device: joining.keys.publicKey, proof }, now);
      for (const [id, item] of device.view) joining.view.set(id, item);
    } else if (choice < 0.6 && devices.length < 6 && member) {
      const joining = newDevice();
      const proof = joinProof({ secretKey: joining.keys.secretKey, space, member: now.members.get(member)?.id ?? memberIdOf(device.keys.publicKey), by: device.keys.publicKey });
      writeRoster(device, { op: 'add_device', member: now.members.get(member)?.id ?? memberIdOf(device.keys.publicKey), device: joining.keys.publicKey, proof }, now);
      for (const [id, item] of device.view) joining.view.set(id, item);
    } else if (choice < 0.7) {
      const candidates = [...now.devices.entries()].filter(([hex, d]) => d.cut === null && (random() < 0.2 || d.member === member));
      if (candidates.length === 0) continue;
      const [target] = pick(candidates);
      const past = items(device.view).filter((i) => toHex(i.entry.device) === target).length;
      const lastSeq = target === device.hex ? device.seq + 1 : past + (random() < 0.15 ? -1 : 0);
      writeRoster(device, { op: 'remove_device', device: Uint8Array.from(target.match(/../g).map((h) => parseInt(h, 16))), last_seq: Math.max(0, lastSeq) }, now);
    } else if (choice < 0.78) {
      const others = [...now.currentMembers().keys()].filter((m) => m !== member || random() < 0.1);
      if (others.length === 0) continue;
      const target = pick(others);
      const lastSeqs = [...now.members.get(target).devices]
        .filter((hex) => now.isActive(hex))
        .map((hex) => [Uint8Array.from(hex.match(/../g).map((h) => parseInt(h, 16))), hex === device.hex ? device.seq + 1 : items(device.view).filter((i) => toHex(i.entry.device) === hex).length])
        .sort((a, b) => (toHex(a[0]) < toHex(b[0]) ? -1 : 1));
      writeRoster(device, { op: 'remove_member', member: now.members.get(target).id, last_seqs: lastSeqs }, now);
    } else if (choice < 0.9) {
      const epoch = now.epoch + (random() < 0.1 ? 2 : 1);
      if (!epochKeys.has(epoch)) epochKeys.set(epoch, bytesFrom(random, 32));
      writeRoster(device, { op: 'epoch', epoch, key_id: keyId(epochKeys.get(epoch)) }, now);
    } else {
      writeData(device, now);
    }
  }
  const all = new Map();
  for (const device of devices) for (const [id, item] of device.view) all.set(id, item);
  return { space, all: [...all.values()], devices };
}

function report(space, entries) {
  const { roster, refused } = foldRoster(entries, space);
  const accepts = [];
  for (const { entry } of entries) {
    accepts.push([toHex(entry.device), Number(entry.seq), roster.accepts(toHex(entry.device), Number(entry.seq))]);
  }
  return {
    members: Object.fromEntries(roster.currentMembers()),
    cuts: Object.fromEntries(roster.cuts()),
    epoch: roster.epoch,
    epoch_key_ids: Object.fromEntries([...roster.keyIds].map(([epoch, id]) => [String(epoch), toHex(id)])),
    rotation_due: roster.rotationDue(),
    refused: refused.map((item) => [toHex(item.id), item.code]),
    accepts: accepts.sort(),
  };
}

const seed = Number(process.argv[2] ?? 1);
const count = Number(process.argv[3] ?? 20);
const steps = Number(process.argv[4] ?? 30);
const cases = [];
for (let i = 0; i < count; i += 1) {
  const { space, all, devices } = scenario(seed * 1000 + i, steps);
  cases.push({ name: `random history ${seed}/${i}`, check: 'fold', space: toHex(space), entries: all.map((e) => toHex(e.bytes)), expect: report(space, all) });
  const view = devices[Math.floor(devices.length / 2)];
  const seen = [...view.view.values()];
  cases.push({ name: `random history ${seed}/${i}, one device's view`, check: 'fold', space: toHex(space), entries: seen.map((e) => toHex(e.bytes)), expect: report(space, seen) });
}
process.stdout.write(`${JSON.stringify({ kind: 'roster', description: 'random roster histories (web client fuzz)', cases }, null, 1)}\n`);
