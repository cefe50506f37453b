/**
 * The devices of a space, on the More screen: whose each one is, its fingerprint, which
 * one is this device, and when something new last came from it here. A person may remove
 * one of their own other devices (a lost phone, an old laptop): the removal is signed in
 * the roster and the space gets a new key that the removed device never receives.
 *
 * Wording follows DESIGN.md 4a: calm, no online status; "last heard" is only the day this
 * device last received something new from that one.
 */
import { h } from './dom.js';
import { fromHex } from '../protocol/crypto.js';
import { fingerprint } from '../protocol/identity.js';
import { profileName } from '../app/agreements.js';
import { isRemoved, shortFingerprint } from './problems.js';

const DAY_MS = 24 * 60 * 60 * 1000;

function heardWords(at, now) {
  if (at === null) return null;
  const start = new Date(now);
  start.setHours(0, 0, 0, 0);
  if (at >= start.getTime()) return 'Last heard from today.';
  if (at >= start.getTime() - DAY_MS) return 'Last heard from yesterday.';
  return `Last heard from on ${new Date(at).toLocaleDateString(undefined, { day: 'numeric', month: 'long' })}.`;
}

function ownerWords(replica, item) {
  if (item.mine) return 'You';
  return profileName(replica, item.member) ?? 'Your partner';
}

/** The devices section of the More screen. */
export function devicesView(app, ui, state, now = Date.now()) {
  const { replica } = state;
  const removedHere = isRemoved(state);
  const list = h('ul', { class: 'devices' });
  for (const item of replica.deviceList()) {
    const print = fingerprint(fromHex(item.device));
    const owner = ownerWords(replica, item);
    const confirming = ui.removing === item.device;
    list.append(
      h(
        'li',
        {
          class: `device${item.active ? '' : ' removed'}`,
          'data-device': item.device,
          'data-fingerprint': print,
          'data-owner': owner,
          'data-active': item.active ? 'yes' : 'no',
          'data-this': item.thisDevice ? 'yes' : 'no',
        },
        h(
          'div',
          { class: 'device-head' },
          h('strong', {}, owner),
          item.thisDevice ? h('span', { class: 'tag' }, 'this device') : item.mine ? h('span', { class: 'tag' }, 'another of your devices') : null,
        ),
        h('div', { class: 'fingerprint' }, print),
        item.active ? null : h('div', { class: 'note' }, 'Removed. Nothing it writes after its removal counts.'),
        item.active && !item.thisDevice ? h('div', { class: 'note heard' }, heardWords(item.heardAt, now)) : null,
        !removedHere && replica.canRemove(item.device) && !confirming
          ? h('button', { class: 'remove-device', onclick: () => ui.askRemoval(item.device) }, 'Remove this device')
          : null,
        confirming ? removalQuestion(app, ui, state, item) : null,
      ),
    );
  }
  return h(
    'div',
    { class: 'devices-section' },
    h('h3', {}, 'Devices in this space'),
    list,
    !removedHere && replica.rotationDue() ? rotationNote(app, ui, state) : null,
  );
}

function removalQuestion(app, ui, state, item) {
  return h(
    'div',
    { class: 'confirm', role: 'group', 'aria-label': 'Remove this device?' },
    h(
      'p',
      {},
      `Remove the device ${shortFingerprint(item.device)}? It will not be able to read anything written from now on. ` +
        'What it already holds stays on it: encryption cannot pull that back.',
    ),
    h('button', { class: 'primary confirm-removal', onclick: () => ui.removeDevice(item.device) }, 'Yes, remove it'),
    h('button', { onclick: () => ui.askRemoval(null) }, 'Keep it'),
  );
}

function rotationNote(app, ui, state) {
  return h(
    'div',
    { class: 'rotation' },
    h(
      'p',
      { class: 'note' },
      'A device left this space after its key was last changed. A new key keeps it from reading what is written from now on.',
    ),
    h('button', { class: 'rotate', onclick: () => ui.rotateKey(state) }, 'Make a new key now'),
  );
}
