/**
 * What the feeds, the roster and the relay's heads showed, in plain words (SPEC.md 4.5.6).
 * The words say what was seen, what it can mean and what the app does meanwhile; they
 * never accuse anyone.
 *
 * `statusNotices` gives the short notices of the status area under the header (one per
 * kind, each with a `kind` that tests and styles can find); `problemSentences` gives the
 * full list of the More screen, one sentence per problem.
 */
import { fromHex, toHex } from '../protocol/crypto.js';
import { fingerprint } from '../protocol/identity.js';
import { profileName } from '../app/agreements.js';

/** The first two groups of a device's fingerprint: enough to tell devices apart. */
export function shortFingerprint(deviceHex) {
  return fingerprint(fromHex(deviceHex)).split(' ').slice(0, 2).join(' ');
}

/** "this device", "your device 1a2b 3c4d", "Alex’s device 1a2b 3c4d" or "the device 1a2b 3c4d". */
export function deviceWords(replica, deviceHex) {
  if (deviceHex === replica.deviceHex) return 'this device';
  const member = replica.roster.memberOf(deviceHex);
  const short = shortFingerprint(deviceHex);
  if (member !== null && member === replica.memberHex) return `your device ${short}`;
  const name = member === null ? null : profileName(replica, member);
  return name ? `${name}’s device ${short}` : `the device ${short}`;
}

function capital(words) {
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function day(ms) {
  return new Date(ms).toLocaleDateString(undefined, { day: 'numeric', month: 'long' });
}

/** Has this device been removed from the space (the relay says so, or the roster does)? */
export function isRemoved(state) {
  const { replica } = state;
  const inRoster = replica.roster.devices.has(replica.deviceHex);
  return state.status?.state === 'removed' || (inRoster && !replica.roster.isActive(replica.deviceHex));
}

/**
 * The notices of the status area: `{ kind, text }`, most important first. Withholding is
 * told only after a whole sync round went well, so that entries still on their way are
 * never taken for entries held back.
 */
export function statusNotices(state) {
  const { replica } = state;
  const out = [];
  if (isRemoved(state)) {
    out.push({
      kind: 'removed',
      text:
        'This device is no longer part of this space: it was removed, perhaps from another of your devices. ' +
        'It cannot read anything written from now on. What it already holds stays here until you erase it.',
    });
  }
  if (replica.openRollbacks().length > 0) {
    out.push({
      kind: 'rollback',
      text:
        'The relay is showing an older copy of this space than the one this device has already seen. ' +
        'Nothing is lost here: this device keeps everything it holds and sends its own entries back. ' +
        'The relay may have been restored from a backup. More tells what was noticed.',
    });
  }
  if (state.status?.state === 'synced' && replica.withheld.length > 0) {
    out.push({
      kind: 'withholding',
      text:
        'Some entries that another device has already read have not reached this device yet. ' +
        'It keeps asking the relay for them; everything else goes on as usual.',
    });
  }
  const history = [...replica.feeds.values()].some((feed) => feed.forks.length > 0 || feed.broken.length > 0) || replica.conflicts.length > 0;
  if (history) {
    out.push({
      kind: 'history',
      text:
        'This device noticed two different versions of a device’s history. ' +
        'The entries concerned are set aside until it is sorted out; More says which device and what this can mean.',
    });
  }
  return out;
}

/** Plain sentences for every problem the replica holds. */
export function problemSentences(replica, now = Date.now()) {
  const out = [];
  const words = (device) => deviceWords(replica, device);
  for (const [device, feed] of replica.feeds) {
    for (const fork of feed.forks) {
      out.push(
        `${capital(words(device))} signed two different entries as number ${fork.seq} of its history. ` +
          'A device never does this on its own: its key may have been copied, or its storage restored from an old backup. ' +
          `Its entries from number ${fork.seq} on are not used until this is sorted out.`,
      );
    }
    for (const link of feed.broken) {
      out.push(
        `Entry ${link.seq} of ${words(device)} does not follow the entry before it: its history has two versions. ` +
          'The entries after it are not used until this is sorted out.',
      );
    }
  }
  for (const conflict of replica.conflicts) {
    out.push(
      `${capital(words(toHex(conflict.claimedBy)))} had read a different entry number ${conflict.seq} of ${words(conflict.device)} ` +
        'than the one this device holds. The device may have written two versions of its history (a copied key or a restored backup). ' +
        'This device keeps the entry it holds and waits.',
    );
  }
  for (const item of replica.withheld) {
    out.push(
      `${capital(words(toHex(item.claimedBy)))} had already read up to entry ${item.claimedSeq} of ${words(item.device)}; ` +
        `the relay has given this device up to ${item.haveSeq} so far. It keeps asking for the rest.`,
    );
  }
  const open = new Set(replica.openRollbacks().map((item) => item.device));
  for (const item of replica.rollbacks) {
    const when = day(item.at) === day(now) ? 'Today' : `On ${day(item.at)}`;
    out.push(
      `${when} the relay showed entries of ${words(item.device)} only up to number ${item.reportedSeq}, ` +
        `after it had shown up to ${item.storedSeq}: it went back to an older copy. This device kept everything it held. ` +
        (open.has(item.device) ? 'The relay has not caught up yet.' : 'The relay has caught up since.'),
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
