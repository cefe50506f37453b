/** Kind `feed` (feeds.json): chains, gaps, forks, causal ranks and seen heads, SPEC.md 4.5. */
import { AccordError } from '../../src/protocol/errors.js';
import { decodeEntry } from '../../src/protocol/entry.js';
import {
  authenticEntry,
  causalOrder,
  rollbacks,
  seenConflicts,
  verifyFeed,
  verifyForkProof,
  withholding,
} from '../../src/protocol/feeds.js';
import { Mismatch, expectEqual, fromHex, resultOrError, toHex } from './helpers.js';

function verifyReport(space, device, entries) {
  const held = [];
  const rejected = [];
  entries.forEach((hex, index) => {
    try {
      held.push(authenticEntry(fromHex(hex), space, device));
    } catch (error) {
      if (!(error instanceof AccordError)) throw error;
      rejected.push([index, error.code]);
    }
  });
  const feed = verifyFeed(held);
  return {
    report: {
      head: feed.head,
      head_id: feed.headId === null ? null : toHex(feed.headId),
      gap: feed.gaps,
      broken: feed.broken.map((item) => item.seq),
      forks: feed.forks.map((fork) => [fork.seq, toHex(fork.first.id), toHex(fork.second.id)]),
    },
    rejected,
  };
}

const decodeAll = (entries) => entries.map((hex) => ({ ...decodeEntry(fromHex(hex)), bytes: fromHex(hex) }));
const toMap = (object) => new Map(Object.entries(object));

export function checkFeed(c) {
  switch (c.check) {
    case 'verify': {
      const space = fromHex(c.space);
      const device = fromHex(c.device);
      const forward = verifyReport(space, device, c.entries);
      expectEqual({ ...forward.report, rejected: forward.rejected }, c.expect, 'feed report');
      const backward = verifyReport(space, device, [...c.entries].reverse());
      expectEqual(backward.report, forward.report, 'feed report with the entries reversed');
      return;
    }
    case 'fork_proof':
      resultOrError(c.expect, () => verifyForkProof(fromHex(c.proof)), () => expectEqual({ valid: true }, c.expect, 'fork proof'), 'fork proof');
      return;
    case 'ranks': {
      const { ranks } = causalOrder(decodeAll(c.entries));
      expectEqual(Object.fromEntries(ranks), c.expect, 'ranks');
      expectEqual(Object.fromEntries(causalOrder(decodeAll([...c.entries].reverse())).ranks), c.expect, 'ranks, reversed');
      return;
    }
    case 'withholding': {
      const have = toMap(c.have);
      const rows = (entries) =>
        withholding(decodeAll(entries), have).map((item) => ({
          device: item.device,
          claimed_seq: item.claimedSeq,
          have_seq: item.haveSeq,
          claimed_by: toHex(item.claimedBy),
          claim_entry: toHex(item.claimEntry),
        }));
      expectEqual(rows(c.entries), c.expect, 'withholding');
      expectEqual(rows([...c.entries].reverse()), c.expect, 'withholding, entries reversed');
      return;
    }
    case 'rollback': {
      const items = rollbacks(toMap(c.stored), toMap(c.reported)).map((item) => ({
        device: item.device,
        stored_seq: item.storedSeq,
        reported_seq: item.reportedSeq,
      }));
      expectEqual(items, c.expect, 'rollback');
      return;
    }
    case 'seen_conflicts': {
      const rows = (entries) =>
        seenConflicts(decodeAll(entries)).map((item) => ({
          device: item.device,
          seq: item.seq,
          claimed_id: toHex(item.claimedId),
          held_id: toHex(item.heldId),
          claimed_by: toHex(item.claimedBy),
          claim_entry: toHex(item.claimEntry),
        }));
      expectEqual(rows(c.entries), c.expect, 'seen conflicts');
      expectEqual(rows([...c.entries].reverse()), c.expect, 'seen conflicts, entries reversed');
      return;
    }
    default:
      throw new Mismatch(`unknown feed check "${c.check}"`);
  }
}
