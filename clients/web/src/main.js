/**
 * The web client's screens: one controller, plain DOM, re-rendered on every change.
 * Routes: setup, unlock, home, items, item, add, checkin, plan, invite, join, more.
 */
import { fromHex, ready } from './protocol/crypto.js';
import { safetyNumber } from './protocol/identity.js';
import { App } from './app/app.js';
import { h, mount } from './ui/dom.js';
import { setupView, startView, unlockView } from './ui/views-setup.js';
import { addView, checkinView, itemView, itemsView, pauseBar, planView } from './ui/views-space.js';
import { inviteView, joinView } from './ui/views-pairing.js';
import { problemSentences, statusNotices } from './ui/problems.js';
import { devicesView } from './ui/views-devices.js';

const SYNC_WORDS = {
  synced: 'Saved here and synced.',
  offline: 'Saved on this device. It will sync when the connection returns.',
  problem: 'Saved on this device. Syncing is taking a moment; it will keep trying.',
  removed: 'Kept on this device only.',
  idle: 'Saved on this device.',
};

class Screens {
  constructor(root, app) {
    this.root = root;
    this.app = app;
    this.route = app.phase === 'new' ? 'setup' : 'unlock';
    this.param = null;
    this.space = null;
    this.pairing = null;
    this.message = null;
    /** the device whose removal is being asked about on the More screen */
    this.removing = null;
    app.onChange(() => this.refresh());
  }

  /**
   * Something changed underneath (a sync, a key): redraw the whole screen only where
   * nothing is being typed; elsewhere redraw the header and the pause bar alone.
   */
  refresh() {
    const typing = ['add', 'item', 'checkin', 'plan', 'join', 'setup'].includes(this.route) || this.app.phase !== 'ready';
    if (!typing) return this.render();
    const state = this.app.phase === 'ready' ? this.currentSpace() : null;
    const header = this.root.querySelector('header');
    if (header && state) header.replaceWith(this.header(state));
    const bar = this.root.querySelector('.pause-bar');
    if (bar && state) bar.replaceWith(pauseBar(this.app, this, state));
    return undefined;
  }

  defaultRelay() {
    const fromQuery = new URLSearchParams(location.search).get('relay');
    return fromQuery ?? '';
  }

  go(route, param = null) {
    this.route = route;
    this.param = param;
    this.message = null;
    this.removing = null;
    this.render();
  }

  /** Ask about removing a device (null: the question is dropped). */
  askRemoval(deviceHex) {
    this.removing = deviceHex;
    this.message = null;
    this.render();
  }

  async removeDevice(deviceHex) {
    this.removing = null;
    await this.app.removeDevice(deviceHex);
    this.say(
      'The device was removed and a new key was made for the devices that stay. ' +
        'It cannot read anything written from now on; what it already holds stays with it.',
    );
  }

  async rotateKey(state) {
    await this.app.rotateKey(state);
    this.say('A new key was made. Only the devices in this space now receive it.');
  }

  say(message) {
    this.message = message;
    this.render();
  }

  busy(message) {
    mount(this.root, h('p', { class: 'busy' }, message));
  }

  openSpace(state) {
    this.space = state;
  }

  finishPairing() {
    this.pairing = null;
    this.go(this.space ? 'items' : 'home');
  }

  async quickExit() {
    await this.app.wipe();
    location.replace('about:blank');
  }

  currentSpace() {
    if (this.space && [...this.app.spaces.values()].includes(this.space)) return this.space;
    const spaces = this.app.relationshipSpaces();
    this.space = spaces.find((s) => s.replica.roster.currentMembers().size > 1) ?? spaces[0] ?? null;
    return this.space;
  }

  render() {
    const { app } = this;
    if (app.phase === 'new') return mount(this.root, setupView(app, this), this.flash());
    if (app.phase === 'locked') return mount(this.root, unlockView(app, this), this.flash());
    if (this.route === 'join') return mount(this.root, this.header(null), joinView(app, this), this.flash());
    const state = this.currentSpace();
    if (state === null) return mount(this.root, startView(app, this), this.flash());
    if (this.route === 'invite') return mount(this.root, this.header(state), inviteView(app, this, state), this.flash());
    let body;
    switch (this.route) {
      case 'item':
        body = itemView(app, this, state, this.param);
        break;
      case 'add':
        body = addView(app, this, state);
        break;
      case 'checkin':
        body = checkinView(app, this, state);
        break;
      case 'plan':
        body = planView(app, this, state);
        break;
      case 'more':
        body = this.moreView(state);
        break;
      default:
        body = itemsView(app, this, state);
    }
    return mount(this.root, this.header(state), pauseBar(app, this, state), this.flash(), body, this.nav());
  }

  /** The header: the sync words, and under them the status area's notices (SPEC.md 4.5.6). */
  header(state) {
    const status = state?.status?.state ?? 'idle';
    const notices = state ? statusNotices(state) : [];
    return h(
      'header',
      {},
      h(
        'div',
        { class: 'bar' },
        h('span', { class: 'brand' }, 'Accord'),
        state ? h('span', { class: `sync ${status}`, 'data-sync': status }, SYNC_WORDS[status] ?? SYNC_WORDS.idle) : null,
      ),
      notices.map((notice) => h('p', { class: `notice ${notice.kind}`, role: 'status', 'data-notice': notice.kind }, notice.text)),
    );
  }

  flash() {
    return this.message ? h('p', { class: 'message', role: 'status' }, this.message) : null;
  }

  nav() {
    const tab = (route, words) => h('button', { class: this.route === route ? 'active' : '', onclick: () => this.go(route) }, words);
    return h('nav', {}, tab('items', 'Agreements'), tab('checkin', 'Check-in'), tab('plan', 'Crisis plan'), tab('more', 'More'));
  }

  moreView(state) {
    const current = state.replica.roster.currentMembers();
    const members = [...current.keys()];
    const me = state.replica.memberHex;
    const partner = members.find((member) => member !== me);
    const safety =
      partner && current.has(me) ? safetyNumber(current.get(me).map(fromHex), current.get(partner).map(fromHex)) : null;
    return h(
      'section',
      { class: 'card' },
      h('h2', {}, 'More'),
      h('p', {}, `People in this space: ${members.length}.`),
      members.length < 2 ? h('button', { onclick: () => this.go('invite') }, 'Invite your partner') : null,
      h('button', { onclick: () => this.go('invite', 'self') }, 'Link another device of mine'),
      devicesView(this.app, this, state),
      safety
        ? h(
            'div',
            { class: 'safety-number' },
            h('p', {}, 'Safety number. When you are together, you can check that both phones show the same digits:'),
            h('p', { class: 'code', 'data-safety': safety }, safety),
          )
        : null,
      (() => {
        const problems = problemSentences(state.replica);
        return problems.length === 0
          ? h('p', { class: 'note' }, 'Every entry checks out.')
          : h('div', { class: 'problems' }, h('h3', {}, 'What this device noticed'), h('ul', {}, problems.map((p) => h('li', {}, p))));
      })(),
      h('button', { onclick: () => this.app.lock() }, 'Lock'),
      h('button', { class: 'quiet', onclick: () => this.quickExit() }, 'Quick exit and erase this device'),
      h('p', { class: 'note' }, 'Erasing removes everything from this device. It cannot pull back what another device already holds.'),
    );
  }
}

/** Install the offline shell (public/sw.js) and hand it the files this page loaded. */
async function installOfflineShell() {
  if (!('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register('./sw.js');
    const registration = await navigator.serviceWorker.ready;
    const urls = [location.href.split('?')[0], ...performance.getEntriesByType('resource').map((entry) => entry.name)];
    registration.active?.postMessage({ type: 'cache', urls });
  } catch {
    // Without a service worker the app still works; it only needs the network to open.
  }
}

async function start() {
  installOfflineShell();
  await ready();
  const app = await App.load();
  window.addEventListener('online', () => app.setOnline(true));
  window.addEventListener('offline', () => app.setOnline(false));
  const screens = new Screens(document.getElementById('app'), app);
  window.addEventListener('unhandledrejection', (event) => {
    const code = event.reason?.code;
    screens.say(
      code === 'wrong_epoch'
        ? 'This device is waiting for the newest key before it can save changes. It will arrive with the next sync.'
        : `That did not go through${code ? ` (${code})` : ''}. Nothing else was changed.`,
    );
  });
  window.accordScreens = screens;
  screens.render();
}

start().catch((error) => {
  document.getElementById('app').textContent = `Accord could not start: ${error.message}`;
});

