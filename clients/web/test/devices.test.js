/**
 * Replicas of one space joined in memory: a device removed by its own member, with the
 * key rotation that keeps it from reading what comes after (SPEC.md 5.3, 6.3); and what
 * the relay shows, checked against the high-water marks (rollback, withholding: 4.5.5).
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { ready, randomBytes, toHex } from '../src/protocol/crypto.js';
import { deviceFromSeed, memberIdOf } from '../src/protocol/identity.js';
import { joinProof } from '../src/protocol/roster-records.js';
import { wrapKey } from '../src/protocol/envelopes.js';
import { Replica, foundSpace } from '../src/app/replica.js';
import { SyncLoop } from '../src/app/sync.js';
import { RelayError } from '../src/app/relay-client.js';
import { agreementView, proposeItem } from '../src/app/agreements.js';
import { problemSentences, statusNotices } from '../src/ui/problems.js';

await ready();

/** Alex founds a space; Sam joins as a partner and links a second device (Sam's laptop). */
function threeDevices() {
  let now = 1_000_000;
  const clock = () => (now += 10);
  const alex = deviceFromSeed(randomBytes(32));
  const sam = deviceFromSeed(randomBytes(32));
  const laptop = deviceFromSeed(randomBytes(32));
  const { replica: a } = foundSpace({ device: alex, clock });
  const samMember = memberIdOf(sam.publicKey);
  a.writeRoster({
    op: 'add_member',
    member: samMember,
    device: sam.publicKey,
    proof: joinProof({ secretKey: sam.secretKey, space: a.space, member: samMember, by: alex.publicKey }),
  });
  const s = new Replica({ space: a.space, device: sam, clock });
  s.receive(a.entryBytes());
  s.receiveEnvelopes(a.envelopesFor(sam.publicKey));
  s.writeRoster({
    op: 'add_device',
    member: samMember,
    device: laptop.publicKey,
    proof: joinProof({ secretKey: laptop.secretKey, space: a.space, member: samMember, by: sam.publicKey }),
  });
  const l = new Replica({ space: a.space, device: laptop, clock });
  l.receive([...a.entryBytes(), ...s.entryBytes()]);
  l.receiveEnvelopes(s.envelopesFor(laptop.publicKey));
  a.receive(s.entryBytes());
  return { a, s, l };
}

const titles = (replica) => agreementView(replica).items.map((item) => item.title).sort();

test('the device list names every device, its member, and which one is this device', () => {
  const { a, s, l } = threeDevices();
  const list = s.deviceList();
  assert.equal(list.length, 3);
  assert.deepEqual(
    list.map((d) => [d.device === a.deviceHex, d.device === s.deviceHex, d.mine, d.thisDevice, d.active]),
    [
      [true, false, false, false, true],
      [false, true, true, true, true],
      [false, false, true, false, true],
    ],
  );
  assert.equal(s.canRemove(l.deviceHex), true, "Sam may remove Sam's laptop");
  assert.equal(s.canRemove(a.deviceHex), false, "nobody removes a partner's device here");
  assert.equal(s.canRemove(s.deviceHex), false, 'this device is not removed from itself');
});

test('a removed device gets no new key and cannot read what is written after', () => {
  const { a, s, l } = threeDevices();
  proposeItem(a, { kind: 'limit', level: 'no', title: 'Before' });
  s.receive(a.entryBytes());
  l.receive(a.entryBytes());
  assert.deepEqual(titles(l), ['Before']);

  const epoch = s.newEpochKey();
  assert.equal(epoch, 1);
  s.removeDevice(l.deviceHex);
  const envelopes = s.startEpoch(epoch);
  assert.equal(envelopes.length, 1, "one envelope: for Alex's device, none for the laptop");
  assert.equal(s.roster.isActive(l.deviceHex), false);
  assert.equal(s.roster.epoch, 1);

  a.receive(s.entryBytes());
  a.receiveEnvelopes(envelopes);
  assert.equal(a.roster.isActive(l.deviceHex), false, 'Alex sees the laptop removed');
  assert.equal(a.keyMatches(1), true, 'Alex holds the new key');
  proposeItem(a, { kind: 'limit', level: 'no', title: 'After' });
  const written = a.entryBytes();
  s.receive(written);
  assert.deepEqual(titles(s), ['After', 'Before']);
  assert.deepEqual(titles(a), ['After', 'Before']);

  // The laptop, not knowing yet, writes after its cut: that counts for nobody.
  proposeItem(l, { kind: 'permission', level: 'yes', title: 'From the laptop' });
  a.receive(l.entryBytes());
  assert.deepEqual(titles(a), ['After', 'Before']);
  assert.ok(a.refusedContent.some((item) => item.code === 'device_removed'));

  // The laptop gets every entry and even the envelopes, and still cannot read "After".
  l.receive([...written, ...s.entryBytes()]);
  l.receiveEnvelopes(envelopes);
  assert.equal(l.epochKeys.has(1), false);
  assert.deepEqual(titles(l), ['Before'], 'once it knows of its removal, its own late entry does not count either');
  assert.ok(l.waiting.length > 0, 'the entry written after waits for a key that never comes');
  assert.throws(() => proposeItem(l, { kind: 'limit', level: 'no', title: 'Again' }), (error) => error.code === 'wrong_epoch');
});

test('a removal this device may not make writes nothing', () => {
  const { a, s } = threeDevices();
  const before = s.ownHead().seq;
  assert.throws(() => s.removeDevice(a.deviceHex), (error) => error.code === 'roster_invalid');
  assert.throws(() => s.removeDevice(s.deviceHex), (error) => error.code === 'roster_invalid');
  assert.throws(() => s.startEpoch(2), (error) => error.code === 'roster_invalid');
  assert.equal(s.ownHead().seq, before);
  assert.equal(s.outbox.length > 0, true);
});

test('a rotation is due after a removal made elsewhere without one, and a new key clears it', () => {
  const { a, s, l } = threeDevices();
  s.removeDevice(l.deviceHex); // a removal, with no rotation after it
  a.receive(s.entryBytes());
  assert.equal(s.rotationDue(), true);
  assert.equal(a.rotationDue(), true, 'any remaining device may make the new key');
  const envelopes = a.startEpoch(a.newEpochKey());
  assert.equal(a.rotationDue(), false);
  s.receive(a.entryBytes());
  s.receiveEnvelopes(envelopes);
  assert.equal(s.rotationDue(), false);
  assert.equal(s.keyMatches(1), true);
});

test('an envelope never replaces an epoch key already held', () => {
  const { a, s } = threeDevices();
  const held = toHex(s.epochKeys.get(0));
  const other = randomBytes(32);
  const forged = wrapKey({ senderSecretKey: a.device.secretKey, sender: a.device.publicKey, recipient: s.device.publicKey, space: a.space, epoch: 0, epochKey: other });
  assert.equal(s.receiveEnvelopes([forged]), 0);
  assert.equal(toHex(s.epochKeys.get(0)), held);
});

test("the relay's heads below the high-water marks are a rollback, noted once; nothing held is given up", () => {
  const { a, s } = threeDevices();
  for (const title of ['One', 'Two', 'Three']) proposeItem(a, { kind: 'limit', level: 'no', title });
  s.receive(a.entryBytes());
  s.noteAcknowledged(s.ownHead().seq);
  const alexHead = s.haveVector().get(a.deviceHex);
  const samHead = s.ownHead().seq;
  const held = s.held.size;
  const full = new Map([[a.deviceHex, alexHead], [s.deviceHex, samHead]]);
  assert.deepEqual(s.noteRelayHeads(full, 1), []);
  assert.deepEqual(s.openRollbacks(), []);

  const older = new Map([[a.deviceHex, alexHead - 2]]); // and nothing at all of Sam's feed
  const found = s.noteRelayHeads(older, 2);
  assert.deepEqual(
    found.map((r) => [r.device, r.storedSeq, r.reportedSeq]).sort(),
    [
      [a.deviceHex, alexHead, alexHead - 2],
      [s.deviceHex, samHead, 0],
    ].sort(),
  );
  assert.deepEqual(s.noteRelayHeads(older, 3), [], 'the same rollback is noted once');
  assert.equal(s.openRollbacks().length, 2);
  assert.equal(s.held.size, held);
  assert.equal(s.marks.get(a.deviceHex), alexHead, 'a mark never goes down');
  assert.equal(s.ownEntries(1, samHead).length, samHead, "this device's own entries, to send again");
  assert.deepEqual(
    statusNotices({ replica: s, status: { state: 'synced' } }).map((n) => n.kind),
    ['rollback'],
  );
  assert.match(problemSentences(s, 3).join(' '), /went back to an older copy.*has not caught up yet/);

  // This device sends its own entries again; the relay catches up on Alex's feed later.
  s.noteAcknowledged(samHead);
  assert.deepEqual(s.openRollbacks().map((r) => r.device), [a.deviceHex]);
  s.noteRelayHeads(full, 4);
  assert.deepEqual(s.openRollbacks(), []);
  assert.equal(s.rollbacks.length, 2, 'what was seen stays on record');
  assert.match(problemSentences(s, 4).join(' '), /has caught up since/);
  assert.deepEqual(statusNotices({ replica: s, status: { state: 'synced' } }), []);
});

test('a seen claim above what the relay gave is withholding, told once a sync round went well', () => {
  const { a, s } = threeDevices();
  for (const title of ['One', 'Two', 'Three']) proposeItem(a, { kind: 'limit', level: 'no', title });
  s.receive(a.entryBytes());
  proposeItem(s, { kind: 'limit', level: 'no', title: 'Seen them all' });
  // A third view of the space gets Sam's entries but only the start of Alex's feed.
  const reader = new Replica({ space: a.space, device: deviceFromSeed(randomBytes(32)), epochKeys: new Map(a.epochKeys) });
  const alexFeed = a.feeds.get(a.deviceHex).chain.map((item) => item.bytes);
  const samFeed = s.feeds.get(s.deviceHex).chain.map((item) => item.bytes);
  reader.receive([...alexFeed.slice(0, 2), ...samFeed]);
  assert.equal(reader.withheld.length, 1);
  assert.equal(reader.withheld[0].device, a.deviceHex);
  assert.equal(reader.withheld[0].haveSeq, 2);
  assert.deepEqual(statusNotices({ replica: reader, status: { state: 'problem' } }), []);
  assert.deepEqual(
    statusNotices({ replica: reader, status: { state: 'synced' } }).map((n) => n.kind),
    ['withholding'],
  );
  assert.match(problemSentences(reader).join(' '), /had already read up to entry \d+ .* up to 2 so far/);
  reader.receive(alexFeed);
  assert.deepEqual(reader.withheld, []);
});

test('a device told removed by the relay says so calmly', async () => {
  const statuses = [];
  const loop = new SyncLoop({
    run: async () => {
      throw new RelayError('device_removed', 'the device was removed', 403);
    },
    onStatus: (status) => statuses.push(status),
    random: () => 0,
  });
  loop.start();
  await new Promise((resolve) => setTimeout(resolve, 20));
  loop.stop();
  assert.deepEqual(statuses.map((status) => status.state), ['removed']);

  const { s, l } = threeDevices();
  assert.deepEqual(statusNotices({ replica: l, status: statuses[0] }).map((n) => n.kind), ['removed']);
  // The same once its own roster says so, whatever the relay answers.
  s.removeDevice(l.deviceHex);
  l.receive(s.entryBytes());
  assert.deepEqual(statusNotices({ replica: l, status: { state: 'synced' } }).map((n) => n.kind), ['removed']);
  assert.deepEqual(statusNotices({ replica: s, status: { state: 'synced' } }), []);
});
