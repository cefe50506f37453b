/**
 * A browser device for the cross-client tests: headless Chromium driven with
 * playwright-core, controlled over stdin/stdout with one JSON command per line.
 *
 *   {"id": 1, "cmd": "launch", "url": "http://127.0.0.1:PORT/"}  ->  {"id": 1, "ok": true, ...}
 *
 * Every command acts as a person would: it clicks the buttons and fills the fields the
 * screens show, and reads the answers from the page. `state` also reads the outbox size
 * through the page's test hook, only to know when syncing has settled.
 */
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browser = null;
let context = null;
let page = null;
const consoleLines = [];

const commands = {
  async launch({ url, executable = '/usr/bin/chromium', camera = null }) {
    // With `camera`, Chromium's fake capture device plays that Y4M file as the camera.
    const cameraFlags = camera
      ? ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${camera}`]
      : [];
    browser = await chromium.launch({ executablePath: executable, args: [...FLAGS, ...cameraFlags], headless: true });
    context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    if (camera) await context.grantPermissions(['camera'], { origin: new URL(url).origin });
    page = await context.newPage();
    page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => consoleLines.push(`pageerror: ${error.message}`));
    await page.goto(url);
    return {};
  },

  async setup({ name, passphrase, relay }) {
    await page.getByLabel('Your name, as your partner will see it').fill(name);
    await page.getByLabel('Passphrase', { exact: true }).fill(passphrase);
    await page.getByLabel('Passphrase again').fill(passphrase);
    await page.getByLabel('Relay address').fill(relay);
    await page.getByRole('button', { name: 'Create my keys' }).click();
    await page.getByText('Start our space and invite my partner').waitFor({ timeout: 60000 });
    return {};
  },

  async start_and_invite() {
    await page.getByRole('button', { name: 'Start our space and invite my partner' }).click();
    const qr = page.locator('canvas.qr');
    await qr.waitFor({ timeout: 30000 });
    const png = await qr.screenshot();
    const code = await page.locator('.code').getAttribute('data-code');
    return { png: png.toString('base64'), code };
  },

  async invite_my_device() {
    await commands.goto({ route: 'more' });
    await page.getByRole('button', { name: 'Link another device of mine' }).click();
    const qr = page.locator('canvas.qr');
    await qr.waitFor({ timeout: 30000 });
    const code = await page.locator('.code').getAttribute('data-code');
    return { png: (await qr.screenshot()).toString('base64'), code };
  },

  async approve({ accept = true, shot = null }) {
    await page.locator('[data-step="request"]').waitFor({ timeout: 60000 });
    if (shot) await page.screenshot({ path: shot });
    const name = await page.locator('.joiner-name').textContent();
    const sas = await page.locator('.sas').getAttribute('data-sas');
    await page.getByRole('button', { name: accept ? 'Yes, let them in' : 'No, not this device' }).click();
    await page.locator('[data-step="ended"]').waitFor({ timeout: 60000 });
    const title = await page.locator('[data-step="ended"] h2').textContent();
    await page.getByRole('button', { name: 'Done' }).click();
    return { name, sas, title };
  },

  async join({ png, code, camera = false, shot = null }) {
    await page.getByRole('button', { name: 'Join my partner’s space' }).click();
    if (camera) {
      await page.getByRole('button', { name: 'Scan with the camera' }).click();
    } else if (png) {
      await page.locator('input[type=file]').setInputFiles({ name: 'invite.png', mimeType: 'image/png', buffer: Buffer.from(png, 'base64') });
    } else {
      await page.getByLabel('Type the code').fill(code);
      await page.getByRole('button', { name: 'Join with this code' }).click();
    }
    await page.locator('[data-step="offered"], [data-step="ended"]').first().waitFor({ timeout: 60000 });
    const sas = await page.locator('.sas').getAttribute('data-sas').catch(() => null);
    if (shot && sas !== null) await page.screenshot({ path: shot });
    await page.locator('[data-step="ended"]').waitFor({ timeout: 120000 });
    const title = await page.locator('[data-step="ended"] h2').textContent();
    const text = await page.locator('[data-step="ended"] p').first().textContent();
    await page.getByRole('button', { name: 'Continue' }).click();
    return { sas, title, text };
  },

  async add_item({ title, kind = 'limit', level }) {
    await page.getByRole('button', { name: 'Agreements' }).click();
    await page.getByRole('button', { name: 'Add an agreement' }).click();
    await page.getByLabel('What it is about').fill(title);
    await page.getByLabel('Kind').selectOption(kind);
    await page.locator(`input[name=level][value=${level}]`).check();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator(`li.item[data-title="${title}"]`).waitFor();
    return {};
  },

  async open_item({ title }) {
    await page.getByRole('button', { name: 'Agreements' }).click();
    await page.locator(`li.item[data-title="${title}"]`).click();
    await page.locator('[data-item]').waitFor();
  },

  async screenshot_item({ title, path }) {
    await commands.open_item({ title });
    await page.screenshot({ path, fullPage: false });
    await page.getByRole('button', { name: 'Back' }).click();
    return {};
  },

  async set_level({ title, level }) {
    await commands.open_item({ title });
    await page.locator(`form.change input[name=level][value=${level}]`).check();
    await page.getByRole('button', { name: 'Save as a new version' }).click();
    await page.getByRole('button', { name: 'Back' }).click();
    return {};
  },

  async affirm({ title }) {
    await commands.open_item({ title });
    const buttons = page.getByRole('button', { name: 'I agree to this version' });
    const count = await buttons.count();
    for (let i = 0; i < count; i += 1) await buttons.first().click();
    await page.getByRole('button', { name: 'Back' }).click();
    return { affirmed: count };
  },

  async pause() {
    await page.getByRole('button', { name: 'Pause everything' }).click();
    await page.getByRole('button', { name: 'Resume' }).waitFor();
    return {};
  },

  async resume() {
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.getByRole('button', { name: 'Pause everything' }).waitFor();
    return {};
  },

  async items() {
    await page.getByRole('button', { name: 'Agreements' }).click();
    const items = await page.locator('li.item').evaluateAll((nodes) =>
      nodes.map((node) => ({ title: node.dataset.title, level: node.dataset.level, status: node.dataset.status })),
    );
    return { items };
  },

  /** The status area's notices under the header (rollback, withholding, removed...). */
  async notices() {
    const notices = await page
      .locator('header [data-notice]')
      .evaluateAll((nodes) => nodes.map((node) => ({ kind: node.dataset.notice, text: node.textContent })));
    const sync = await page.locator('header [data-sync]').getAttribute('data-sync');
    return { notices, sync };
  },

  /** The devices section and the problem list of the More screen. */
  async devices() {
    await commands.goto({ route: 'more' });
    await page.locator('li.device').first().waitFor();
    const devices = await page.locator('li.device').evaluateAll((nodes) =>
      nodes.map((node) => ({
        device: node.dataset.device,
        fingerprint: node.dataset.fingerprint,
        owner: node.dataset.owner,
        active: node.dataset.active === 'yes',
        this: node.dataset.this === 'yes',
        heard: node.querySelector('.heard')?.textContent ?? null,
        removable: node.querySelector('button.remove-device') !== null,
      })),
    );
    const problems = await page.locator('.problems li').allTextContents();
    return { devices, problems };
  },

  /** Remove one of my devices from the More screen, answering the question with yes. */
  async remove_device({ fingerprint, shot = null }) {
    await commands.goto({ route: 'more' });
    const row = page.locator(`li.device[data-fingerprint="${fingerprint}"]`);
    await row.getByRole('button', { name: 'Remove this device' }).click();
    const question = row.locator('.confirm');
    await question.waitFor();
    if (shot) {
      await question.scrollIntoViewIfNeeded();
      await page.screenshot({ path: shot });
    }
    await row.getByRole('button', { name: 'Yes, remove it' }).click();
    const message = await page.locator('p.message').textContent({ timeout: 30000 });
    return { message };
  },

  async state() {
    return page.evaluate(() => {
      const app = window.accordScreens.app;
      const spaces = [...app.spaces.values()].map((s) => ({
        kind: s.kind,
        epoch: s.replica.roster.epoch,
        outbox: s.replica.outbox.length,
        entries: s.replica.held.size,
        members: s.replica.roster.currentMembers().size,
        status: s.status.state,
        live: s.loop.pollMs > 3000,
      }));
      return { spaces };
    });
  },

  async sync() {
    return page.evaluate(async () => {
      const app = window.accordScreens.app;
      const problems = [];
      for (const state of app.spaces.values()) {
        try {
          await app.syncNow(state);
        } catch (error) {
          problems.push(String(error.code ?? error));
        }
      }
      return { problems };
    });
  },

  async offline({ on }) {
    await context.setOffline(on);
    await page.evaluate((online) => window.dispatchEvent(new Event(online ? 'online' : 'offline')), !on);
    return {};
  },

  async goto({ route }) {
    const words = { items: 'Agreements', checkin: 'Check-in', plan: 'Crisis plan', more: 'More' };
    await page.getByRole('button', { name: words[route] }).click();
    return {};
  },

  async checkin({ safety, feels_safe = '', triggering = '', would_help = '', share = false }) {
    await commands.goto({ route: 'checkin' });
    await page.locator(`input[name=safety][value="${safety}"]`).check();
    await page.getByLabel('What feels safe').fill(feels_safe);
    await page.getByLabel('What feels hard or triggering').fill(triggering);
    await page.getByLabel('What would help').fill(would_help);
    if (share) await page.getByLabel('Share these answers with my partner').check();
    await page.getByRole('button', { name: 'Save check-in' }).click();
    return {};
  },

  async plan({ text, step }) {
    await commands.goto({ route: 'plan' });
    if (text !== undefined) {
      await page.getByLabel('Our plan, in our words').fill(text);
      await page.getByRole('button', { name: 'Save the plan' }).click();
    }
    if (step) {
      await page.getByLabel('Section').selectOption(step.section);
      await page.getByLabel('Step', { exact: true }).fill(step.text);
      if (step.minutes) await page.getByLabel('Minutes (for a cooling-off period)').fill(String(step.minutes));
      await page.getByRole('button', { name: 'Add this step' }).click();
    }
    return { text: await page.getByLabel('Our plan, in our words').inputValue() };
  },

  async safety_number() {
    await commands.goto({ route: 'more' });
    const safety = await page.locator('[data-safety]').getAttribute('data-safety');
    await commands.goto({ route: 'items' });
    return { safety };
  },

  async screenshot({ path }) {
    await page.screenshot({ path, fullPage: false });
    return {};
  },

  async reload({ passphrase }) {
    await page.reload();
    await page.getByLabel('Passphrase', { exact: true }).fill(passphrase);
    await page.getByRole('button', { name: 'Unlock' }).click();
    await page.locator('nav').waitFor({ timeout: 60000 });
    return {};
  },

  async logs() {
    return { lines: consoleLines.splice(0) };
  },

  async close() {
    await browser?.close();
    return {};
  },
};

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const { id, cmd, ...args } = JSON.parse(line);
  let reply;
  try {
    if (!Object.hasOwn(commands, cmd)) throw new Error(`unknown command ${cmd}`);
    reply = { id, ok: true, ...(await commands[cmd](args)) };
  } catch (error) {
    reply = { id, ok: false, error: String(error?.stack ?? error), console: consoleLines.splice(0) };
  }
  process.stdout.write(`${JSON.stringify(reply)}\n`);
  if (cmd === 'close') break;
}
process.exit(0);
