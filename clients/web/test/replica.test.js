/**
 * Two replicas of one space, joined in memory: founding, a partner added with a join
 * proof and a key envelope, offline writes on both sides, delivery in any order.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { ready, randomBytes, toHex } from '../src/protocol/crypto.js';
import { deviceFromSeed, memberIdOf } from '../src/protocol/identity.js';
import { joinProof } from '../src/protocol/roster-records.js';
import { Replica, foundSpace } from '../src/app/replica.js';
import { affirm, agreementView, changeItem, pause, proposeItem, resume } from '../src/app/agreements.js';

await ready();

function pair() {
  let now = 1_000_000;
  const clock = () => (now += 10);
  const alex = deviceFromSeed(randomBytes(32));
  const sam = deviceFromSeed(randomBytes(32));
  const { replica: a } = foundSpace({ device: alex, clock });
  const samMember = memberIdOf(sam.publicKey);
  const proof = joinProof({ secretKey: sam.secretKey, space: a.space, member: samMember, by: alex.publicKey });
  a.writeRoster({ op: 'add_member', member: samMember, device: sam.publicKey, proof });
  const b = new Replica({ space: a.space, device: sam, clock });
  b.receive(a.entryBytes());
  b.receiveEnvelopes(a.envelopesFor(sam.publicKey));
  return { a, b };
}

function exchange(x, y) {
  x.receive(y.entryBytes());
  y.receive(x.entryBytes());
}

function levels(replica) {
  return agreementView(replica).items.map((item) => [item.title, item.status, item.level]);
}

test('a partner joins with a join proof and an envelope, and both see two members', () => {
  const { a, b } = pair();
  assert.equal(a.memberIds().length, 2);
  assert.deepEqual(b.memberIds().map(toHex), a.memberIds().map(toHex));
  assert.equal(b.epochKeys.size, 1);
});

test('a yes waits for the partner, then is agreed', () => {
  const { a, b } = pair();
  proposeItem(a, { kind: 'permission', level: 'yes', title: 'Kissing' });
  exchange(a, b);
  assert.deepEqual(levels(b), [['Kissing', 'pending', 'no']]);
  const item = agreementView(b).items[0];
  assert.equal(item.needsMe.length, 1);
  affirm(b, item.needsMe[0]);
  exchange(a, b);
  assert.deepEqual(levels(a), [['Kissing', 'agreed', 'yes']]);
  assert.deepEqual(levels(b), levels(a));
});

test('offline, a concurrent yes and no end at no on both sides', () => {
  const { a, b } = pair();
  proposeItem(a, { kind: 'permission', level: 'ask', title: 'Massage' });
  exchange(a, b);
  affirm(b, agreementView(b).items[0].needsMe[0]);
  exchange(a, b);
  changeItem(a, agreementView(a).items[0], { level: 'yes' });
  changeItem(b, agreementView(b).items[0], { level: 'no' });
  assert.deepEqual(levels(b), [['Massage', 'pending', 'no']]);
  exchange(a, b);
  assert.deepEqual(levels(a), [['Massage', 'pending', 'no']]);
  assert.deepEqual(levels(b), levels(a));
  assert.equal(agreementView(a).items[0].heads.length, 2);
});

test('a pause puts everything at no at once, and only its owner lifts it', () => {
  const { a, b } = pair();
  proposeItem(a, { kind: 'permission', level: 'yes', title: 'Hugs' });
  exchange(a, b);
  affirm(b, agreementView(b).items[0].needsMe[0]);
  pause(b);
  exchange(a, b);
  assert.deepEqual(levels(a), [['Hugs', 'agreed', 'no']]);
  assert.equal(resume(a), false);
  assert.equal(resume(b), true);
  exchange(a, b);
  assert.deepEqual(levels(a), [['Hugs', 'agreed', 'yes']]);
});

test('delivery order does not matter', () => {
  const { a, b } = pair();
  proposeItem(a, { kind: 'limit', level: 'no', title: 'Photos' });
  proposeItem(b, { kind: 'permission', level: 'yes', title: 'Cuddles' });
  const c = new Replica({ space: a.space, device: deviceFromSeed(randomBytes(32)), epochKeys: new Map(a.epochKeys) });
  const all = [...a.entryBytes(), ...b.entryBytes()];
  c.receive([...all].reverse());
  exchange(a, b);
  assert.deepEqual(levels(c), levels(a));
});

test('a forked feed is reported in plain words and not applied past the fork', async () => {
  const { problemSentences } = await import('../src/ui/problems.js');
  const { sealData } = await import('../src/protocol/entry.js');
  const { encodePayload } = await import('../src/protocol/payload.js');
  const { a, b } = pair();
  exchange(a, b);
  assert.deepEqual(problemSentences(b), []);
  // Alex's key, copied: a second entry at the same seq as Alex's next one.
  const head = a.ownHead();
  proposeItem(a, { kind: 'limit', level: 'no', title: 'Original' });
  const twin = sealData({
    secretKey: a.device.secretKey,
    device: a.device.publicKey,
    space: a.space,
    seq: head.seq + 1,
    prev: head.id,
    epoch: 0,
    epochKey: a.epochKeys.get(0),
    seen: a.seenHeads(),
    plaintext: encodePayload(1, [{ doc: 'shared', update: new Uint8Array([0, 0]) }]),
  });
  b.receive([...a.entryBytes(), twin.bytes]);
  const words = problemSentences(b).join(' ');
  assert.match(words, /signed two different entries as number \d+/);
  assert.deepEqual(levels(b), []);
});
