/**
 * The relay's HTTP API (SPEC.md section 9, protocol/openapi.yaml), from the browser.
 *
 * Bodies are JSON with bytes in base64url without padding. Every error is
 * `{"error": {"code", "message"}}`; it becomes a RelayError carrying the code. A network
 * failure (offline, relay down) becomes a RelayError with code `offline`, which the sync
 * engine answers with a retry after a backoff. Nothing is sent to any host but the relay.
 */
import { encode, newMap } from '../protocol/cbor.js';
import { Context, fromHex, sign, toHex } from '../protocol/crypto.js';
import { b64decode, b64encode } from '../protocol/pairing-uri.js';

export const OFFLINE = 'offline';

/** A refusal or failure of a relay call, with the relay's stable code. */
export class RelayError extends Error {
  /**
   * @param {string} code the relay's stable code (SPEC.md 10), or `offline`
   * @param {string} message for people; never parsed
   * @param {number} [status] the HTTP status
   * @param {number|null} [index] the position in the batch of the refused entry or envelope
   */
  constructor(code, message, status = 0, index = null) {
    super(`${code}: ${message}`);
    this.name = 'RelayError';
    this.code = code;
    this.status = status;
    this.index = index;
  }
}

async function call(base, method, path, { body, token, signal } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(base.replace(/\/$/, '') + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: 'no-store',
    });
  } catch (error) {
    if (error?.name === 'AbortError') throw error;
    throw new RelayError(OFFLINE, 'the relay cannot be reached');
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const code = data?.error?.code ?? `http_${response.status}`;
    const index = Number.isInteger(data?.error?.index) ? data.error.index : null;
    throw new RelayError(code, data?.error?.message ?? response.statusText, response.status, index);
  }
  return data;
}

/** The calls of one device on one space, with its bearer token (SPEC.md 9.3). */
export class SpaceClient {
  /**
   * @param {string} base the relay's base URL
   * @param {Uint8Array} space
   * @param {{ publicKey: Uint8Array, secretKey: Uint8Array }} device
   */
  constructor(base, space, device) {
    this.base = base;
    this.space = space;
    this.device = device;
    this.token = null;
    this.tokenExpires = 0;
  }

  /** Create the space on the relay from its founding entry (SPEC.md 9.2). */
  async createSpace(foundingEntry) {
    return call(this.base, 'POST', '/v1/spaces', {
      body: {
        space: b64encode(this.space),
        entry: b64encode(foundingEntry),
        sig: b64encode(sign(this.device.secretKey, Context.CREATE_SPACE, this.space)),
      },
    });
  }

  /** A bearer token: a challenge signed over enc({space, device, challenge}) (SPEC.md 9.3). */
  async authenticate() {
    if (this.token !== null && Date.now() / 1000 < this.tokenExpires - 30) return this.token;
    const ids = { space: b64encode(this.space), device: b64encode(this.device.publicKey) };
    const { challenge } = await call(this.base, 'POST', '/v1/auth/challenge', { body: ids });
    const message = encode(
      newMap([['space', this.space], ['device', this.device.publicKey], ['challenge', b64decode(challenge)]]),
    );
    const sig = b64encode(sign(this.device.secretKey, Context.AUTH, message));
    const granted = await call(this.base, 'POST', '/v1/auth/token', { body: { ...ids, challenge, sig } });
    this.token = granted.token;
    this.tokenExpires = granted.expires_at;
    return this.token;
  }

  async authed(method, path, body) {
    const token = await this.authenticate();
    try {
      return await call(this.base, method, path, { body, token });
    } catch (error) {
      if (error instanceof RelayError && error.status === 401) {
        this.token = null;
        return call(this.base, method, path, { body, token: await this.authenticate() });
      }
      throw error;
    }
  }

  get spacePath() {
    return `/v1/spaces/${b64encode(this.space)}`;
  }

  /** Append this device's entries (at most 64), all or nothing (SPEC.md 9.4). */
  async append(entries) {
    const data = await this.authed('POST', `${this.spacePath}/entries`, { entries: entries.map(b64encode) });
    return data.results;
  }

  /**
   * Every entry past the have-vector, page by page (SPEC.md 9.5).
   * @param {Map<string, number>} have device hex to the highest seq held
   */
  async fetchAll(have) {
    const haveB64 = {};
    for (const [deviceHex, seq] of have) {
      if (seq > 0) haveB64[b64encode(fromHex(deviceHex))] = seq;
    }
    const entries = [];
    let after = 0;
    for (;;) {
      const page = await this.authed('POST', `${this.spacePath}/fetch`, { have: haveB64, after });
      entries.push(...page.entries.map(b64decode));
      after = page.cursor;
      if (!page.more) return entries;
    }
  }

  /** The relay's head of every feed it stores (SPEC.md 9.5): device hex -> seq. */
  async heads() {
    const data = await this.authed('GET', `${this.spacePath}/heads`);
    const out = new Map();
    for (const [device, head] of Object.entries(data.heads)) {
      out.set(toHex(b64decode(device)), head.seq);
    }
    return out;
  }

  async putEnvelopes(envelopes) {
    return this.authed('PUT', `${this.spacePath}/keys`, { envelopes: envelopes.map(b64encode) });
  }

  async getEnvelopes() {
    const data = await this.authed('GET', `${this.spacePath}/keys`);
    return data.envelopes.map(b64decode);
  }
}

/** The pairing rendezvous (SPEC.md 9.8): opaque messages between two sides. */
export class Rendezvous {
  constructor(base) {
    this.base = base;
    this.channel = null;
    this.token = null;
    this.after = 0;
    this.nameplate = null;
    this.expiresAt = 0;
  }

  grant(data) {
    this.channel = data.channel;
    this.token = data.side_token;
    this.expiresAt = data.expires_at;
    this.nameplate = data.nameplate ?? null;
    return this;
  }

  /** Open a channel as side a, with a nameplate for the typed code. */
  async create() {
    return this.grant(await call(this.base, 'POST', '/v1/pairing/channels', { body: { nameplate: true } }));
  }

  /** Claim a channel as side b, by id (QR) or by nameplate (typed code). */
  async claim({ channel, nameplate }) {
    const path =
      channel !== undefined
        ? `/v1/pairing/channels/${encodeURIComponent(channel)}/claim`
        : `/v1/pairing/nameplates/${encodeURIComponent(nameplate)}/claim`;
    return this.grant(await call(this.base, 'POST', path));
  }

  async post(body) {
    return call(this.base, 'POST', `/v1/pairing/channels/${this.channel}/messages`, {
      body: { body: b64encode(body) },
      token: this.token,
    });
  }

  /** The other side's next message, waiting for it (long polls of up to `wait` seconds). */
  async next({ wait = 20, deadline = Infinity, signal } = {}) {
    while (Date.now() < deadline) {
      const data = await call(this.base, 'GET', `/v1/pairing/channels/${this.channel}/messages?after=${this.after}&wait=${wait}`, {
        token: this.token,
        signal,
      });
      if (data.messages.length > 0) {
        const message = data.messages[0];
        this.after = message.seq;
        return b64decode(message.body);
      }
    }
    throw new RelayError('expired', 'no message came in time');
  }

  async burn() {
    try {
      await call(this.base, 'DELETE', `/v1/pairing/channels/${this.channel}`, { token: this.token });
    } catch {
      // Already gone: nothing to do.
    }
  }
}
