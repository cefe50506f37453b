/** Kind `entry` (entries.json): sealing and opening entries, SPEC.md 4.1 to 4.4. */
import { encode } from '../../src/protocol/cbor.js';
import { decodeEntry, headerOf, openEntry, sealData, sealRoster } from '../../src/protocol/entry.js';
import { deviceFromSeed } from '../../src/protocol/identity.js';
import { Mismatch, expectEqual, fromHex, resultOrError, toHex } from './helpers.js';

function seenOf(c) {
  return c.seen.map(([device, seq, id]) => [fromHex(device), seq, fromHex(id)]);
}

export function checkEntry(c) {
  switch (c.check) {
    case 'seal': {
      const device = deviceFromSeed(fromHex(c.seed));
      const sealed = sealData({
        secretKey: device.secretKey,
        device: device.publicKey,
        space: fromHex(c.space),
        seq: c.seq,
        prev: c.prev === null ? null : fromHex(c.prev),
        epoch: c.epoch,
        epochKey: fromHex(c.epoch_key),
        seen: seenOf(c),
        plaintext: fromHex(c.plaintext),
        nonce: fromHex(c.nonce),
      });
      expectEqual(
        {
          entry: toHex(sealed.bytes),
          id: toHex(sealed.id),
          header: toHex(encode(headerOf(sealed.entry))),
          padded_length: sealed.entry.body.length - 16,
        },
        c.expect,
        'sealed entry',
      );
      expectEqual(toHex(decodeEntry(sealed.bytes).id), c.expect.id, 'id after decoding');
      return;
    }
    case 'seal_roster': {
      const device = deviceFromSeed(fromHex(c.seed));
      const sealed = sealRoster({
        secretKey: device.secretKey,
        device: device.publicKey,
        space: fromHex(c.space),
        seq: c.seq,
        prev: c.prev === null ? null : fromHex(c.prev),
        epoch: c.epoch,
        seen: seenOf(c),
        record: fromHex(c.record),
      });
      expectEqual({ entry: toHex(sealed.bytes), id: toHex(sealed.id) }, c.expect, 'sealed roster entry');
      return;
    }
    case 'open': {
      const epochKeys = new Map(Object.entries(c.epoch_keys).map(([epoch, key]) => [Number(epoch), fromHex(key)]));
      resultOrError(
        c.expect,
        () =>
          openEntry(fromHex(c.entry), {
            space: fromHex(c.space),
            devices: c.devices.map(fromHex),
            prevId: c.prev_id === null ? null : fromHex(c.prev_id),
            epochKeys,
            minEpoch: c.min_epoch,
          }),
        (opened) => expectEqual({ plaintext: toHex(opened.plaintext) }, c.expect, 'opened entry'),
        'open',
      );
      return;
    }
    default:
      throw new Mismatch(`unknown entry check "${c.check}"`);
  }
}
