/**
 * The pieces that run on one device: the passphrase-sealed keystore, the IndexedDB store
 * (fake-indexeddb, an in-memory IndexedDB), the sync loop's backoff, and the live socket
 * against a recording stand-in for the browser's WebSocket.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import { IDBFactory } from 'fake-indexeddb';
import { ready, randomBytes, toHex } from '../src/protocol/crypto.js';
import { Keystore, WrongPassphrase } from '../src/app/keystore.js';
import { LocalStore } from '../src/app/store.js';
import { SyncLoop } from '../src/app/sync.js';
import { LiveSocket, socketUrl } from '../src/app/live.js';
import { RelayError, OFFLINE } from '../src/app/relay-client.js';
import { b64encode } from '../src/protocol/pairing-uri.js';

await ready();

test('the keystore opens with its passphrase only, and keeps epoch keys', () => {
  const keystore = Keystore.create('long enough passphrase');
  const space = randomBytes(16);
  const key = randomBytes(32);
  keystore.epochKeys(space).set(0, key);
  const blob = keystore.seal();
  assert.throws(() => Keystore.open(blob, 'another passphrase'), WrongPassphrase);
  const opened = Keystore.open(blob, 'long enough passphrase');
  assert.equal(toHex(opened.device.publicKey), toHex(keystore.device.publicKey));
  assert.equal(toHex(opened.epochKeys(space).get(0)), toHex(key));
  const tampered = { ...blob, box: blob.box.slice() };
  tampered.box[5] ^= 1;
  assert.throws(() => Keystore.open(tampered, 'long enough passphrase'), WrongPassphrase);
  assert.ok(!JSON.stringify([...blob.box]).includes(JSON.stringify([...keystore.seed])));
});

test('the store keeps bytes and lists keys by prefix; wipe removes everything', async () => {
  const indexedDB = new IDBFactory();
  const store = await LocalStore.open(indexedDB);
  await store.put('space:aa', { entries: [new Uint8Array([1, 2, 3])] });
  await store.put('profile', { name: 'Sam' });
  assert.deepEqual((await store.get('space:aa')).entries[0], new Uint8Array([1, 2, 3]));
  assert.deepEqual(await store.keys('space:'), ['space:aa']);
  store.close();
  await LocalStore.wipe(indexedDB);
  const again = await LocalStore.open(indexedDB);
  assert.equal(await again.get('profile'), undefined);
  again.close();
});

test('the sync loop backs off exponentially with jitter and recovers', async () => {
  const statuses = [];
  let calls = 0;
  const loop = new SyncLoop({
    run: async () => {
      calls += 1;
      if (calls < 3) throw new RelayError(OFFLINE, 'down');
    },
    onStatus: (status) => statuses.push(status),
    pollMs: 60000,
    random: () => 0,
  });
  assert.equal(loop.backoff(1), 500);
  assert.equal(loop.backoff(3), 2000);
  assert.equal(loop.backoff(20), 15000);
  loop.maxBackoffMs = 4;
  loop.start();
  await new Promise((resolve) => setTimeout(resolve, 100));
  loop.stop();
  assert.equal(calls, 3);
  assert.deepEqual(statuses.map((s) => s.state), ['offline', 'offline', 'synced']);
});

class RecordingSocket {
  static all = [];
  constructor(url) {
    this.url = url;
    this.sent = [];
    RecordingSocket.all.push(this);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close() {}
}

test('the live socket signs in by its first message and hands over pushed entries', async () => {
  const space = randomBytes(16);
  assert.equal(socketUrl('https://relay.example.org/base/', space), `wss://relay.example.org/base/v1/spaces/${b64encode(space)}/ws`);
  const received = [];
  const states = [];
  let forgotten = 0;
  const live = new LiveSocket({
    url: 'ws://relay/ws',
    token: async () => 'token-1',
    forgetToken: () => {
      forgotten += 1;
    },
    onEntries: (entries) => received.push(...entries),
    onState: (state) => states.push(state),
    WebSocketImpl: RecordingSocket,
    random: () => 0,
  });
  live.start();
  await new Promise((resolve) => setTimeout(resolve, 10));
  const socket = RecordingSocket.all.at(-1);
  socket.onopen();
  assert.deepEqual(socket.sent, [{ type: 'auth', token: 'token-1' }]);
  assert.ok(!socket.url.includes('token'));
  socket.onmessage({ data: JSON.stringify({ type: 'ready', cursor: 0 }) });
  socket.onmessage({ data: JSON.stringify({ type: 'entries', entries: [b64encode(new Uint8Array([9]))], cursor: 1 }) });
  socket.onmessage({ data: 'not json' });
  assert.deepEqual(received, [new Uint8Array([9])]);
  socket.onclose({ code: 4401 });
  assert.equal(forgotten, 1);
  await new Promise((resolve) => setTimeout(resolve, 600));
  const second = RecordingSocket.all.at(-1);
  assert.notEqual(second, socket);
  second.onclose({ code: 4403 });
  assert.deepEqual(states, ['live', 'closed', 'removed']);
  live.stop();
});
