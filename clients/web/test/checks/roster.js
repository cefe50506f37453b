/** Kind `roster` (roster.json): roster records and the fold, SPEC.md 5. */
import { encode } from '../../src/protocol/cbor.js';
import { decodeEntry } from '../../src/protocol/entry.js';
import { foldRoster } from '../../src/protocol/roster.js';
import { decodeRosterRecord } from '../../src/protocol/roster-records.js';
import { AccordError } from '../../src/protocol/errors.js';
import { Mismatch, expectEqual, fromHex, resultOrError, toHex } from './helpers.js';

function foldReport(space, entries, accepts) {
  const items = [];
  for (const hex of entries) {
    try {
      items.push(decodeEntry(fromHex(hex)));
    } catch (error) {
      if (!(error instanceof AccordError)) throw error;
    }
  }
  const { roster, refused } = foldRoster(items, space);
  return {
    members: Object.fromEntries(roster.currentMembers()),
    cuts: Object.fromEntries(roster.cuts()),
    epoch: roster.epoch,
    epoch_key_ids: Object.fromEntries([...roster.keyIds].map(([epoch, id]) => [String(epoch), toHex(id)])),
    rotation_due: roster.rotationDue(),
    refused: refused.map((item) => [toHex(item.id), item.code]),
    accepts: accepts.map(([device, seq]) => [device, seq, roster.accepts(device, seq)]),
  };
}

export function checkRoster(c) {
  switch (c.check) {
    case 'fold': {
      const space = fromHex(c.space);
      const forward = foldReport(space, c.entries, c.expect.accepts);
      expectEqual(forward, c.expect, 'roster fold');
      expectEqual(foldReport(space, [...c.entries].reverse(), c.expect.accepts), c.expect, 'roster fold, entries reversed');
      return;
    }
    case 'record':
      resultOrError(
        c.expect,
        () => decodeRosterRecord(fromHex(c.record)),
        (record) => {
          expectEqual({ op: record.op }, c.expect, 'record');
          expectEqual(toHex(encode(record)), c.record, 'record encoded again');
        },
        'record',
      );
      return;
    default:
      throw new Mismatch(`unknown roster check "${c.check}"`);
  }
}
