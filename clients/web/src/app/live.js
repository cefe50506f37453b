/**
 * The space's WebSocket (SPEC.md 9.7): the relay pushes new entries as they land.
 *
 * A browser cannot set headers on a WebSocket, so the token goes in the first message
 * (`{"type": "auth", "token"}`), never in the URL. After `ready` the sync engine fetches
 * what it lacks; pushed entries may also arrive by fetch, and the replica ignores a second
 * copy. A lost socket is reopened after a backoff with jitter; close 4401 means signing in
 * again, 4403 that this device was removed (then it stays closed).
 */
import { b64decode, b64encode } from '../protocol/pairing-uri.js';

export function socketUrl(relay, space) {
  const base = relay.replace(/\/$/, '').replace(/^http/, 'ws');
  return `${base}/v1/spaces/${b64encode(space)}/ws`;
}

export class LiveSocket {
  /**
   * @param {object} args
   * @param {string} args.url
   * @param {() => Promise<string>} args.token a fresh bearer token
   * @param {() => void} args.forgetToken called on close 4401
   * @param {(entries: Uint8Array[]) => void} args.onEntries
   * @param {(state: 'live' | 'closed' | 'removed') => void} args.onState
   * @param {typeof WebSocket} [args.WebSocketImpl]
   */
  constructor({ url, token, forgetToken, onEntries, onState, WebSocketImpl = globalThis.WebSocket, random = Math.random }) {
    Object.assign(this, { url, token, forgetToken, onEntries, onState, WebSocketImpl, random });
    this.socket = null;
    this.stopped = true;
    this.failures = 0;
    this.timer = null;
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    this.open();
  }

  /** Reopen at once if the socket is down (the connection just came back). */
  kick() {
    if (this.stopped || this.socket !== null) return;
    clearTimeout(this.timer);
    this.open();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.socket?.close(1000);
    this.socket = null;
  }

  async open() {
    if (this.stopped) return;
    let token;
    try {
      token = await this.token();
    } catch {
      this.retry();
      return;
    }
    const socket = new this.WebSocketImpl(this.url);
    this.socket = socket;
    socket.onopen = () => socket.send(JSON.stringify({ type: 'auth', token }));
    socket.onmessage = (event) => this.message(event.data);
    socket.onclose = (event) => this.closed(event.code);
    socket.onerror = () => {};
  }

  message(data) {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message.type === 'ready') {
      this.failures = 0;
      this.onState('live');
    } else if (message.type === 'entries' && Array.isArray(message.entries)) {
      try {
        this.onEntries(message.entries.map(b64decode));
      } catch {
        // A malformed push is ignored; fetching will bring the real entries.
      }
    }
  }

  closed(code) {
    this.socket = null;
    if (this.stopped) return;
    if (code === 4403) {
      this.stopped = true;
      this.onState('removed');
      return;
    }
    if (code === 4401) this.forgetToken();
    this.onState('closed');
    this.retry();
  }

  retry() {
    if (this.stopped) return;
    this.failures += 1;
    const ceiling = Math.min(30000, 500 * 2 ** Math.min(this.failures, 10));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), ceiling / 2 + this.random() * (ceiling / 2));
  }
}
