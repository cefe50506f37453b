/**
 * What the feeds and the roster noticed, in plain words (SPEC.md 4.5.6). The words say what
 * was seen, what it can mean and what the app does meanwhile; they never accuse anyone.
 */
import { fromHex, toHex } from '../protocol/crypto.js';
import { fingerprint } from '../protocol/identity.js';

function deviceName(deviceHex) {
  return fingerprint(fromHex(deviceHex)).split(' ').slice(0, 2).join(' ');
}

/** Plain sentences for every problem the replica holds. */
export function problemSentences(replica) {
  const out = [];
  for (const [device, feed] of replica.feeds) {
    for (const fork of feed.forks) {
      out.push(
        `The device ${deviceName(device)} signed two different entries as number ${fork.seq} of its history. ` +
          'A device never does this on its own: its key may have been copied, or its storage restored from an old backup. ' +
          `Its entries from number ${fork.seq} on are not used until this is sorted out.`,
      );
    }
    for (const link of feed.broken) {
      out.push(
        `Entry ${link.seq} of the device ${deviceName(device)} does not follow the entry before it. ` +
          'The entries after it are not used until this is sorted out.',
      );
    }
  }
  for (const item of replica.withheld) {
    out.push(
      `Another device had read ${item.claimedSeq} entries of the device ${deviceName(item.device)}; ` +
        `the relay has given this one ${item.haveSeq} so far. This device keeps asking for the rest.`,
    );
  }
  for (const item of replica.rosterRefused) {
    out.push(`A change to who is in this space was not accepted (${item.code}, entry ${toHex(item.id).slice(0, 8)}).`);
  }
  for (const item of replica.refusedContent) {
    out.push(`An entry could not be used (${item.code}, entry ${item.id.slice(0, 8)}). Everything else goes on as usual.`);
  }
  if (replica.voiceProblems.length > 0) {
    out.push(`${replica.voiceProblems.length === 1 ? 'One record' : 'Some records'} could not be read and are left out.`);
  }
  return out;
}
