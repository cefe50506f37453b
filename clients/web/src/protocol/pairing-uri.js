/**
 * The QR invite (SPEC.md 11.2):
 *
 *   accord://pair/1?r=<relay>&c=<channel>&k=<key>&s=<secret>&x=<expiry>&m=<purpose>
 *
 * Only the canonical form is accepted: each parameter once, in this order, non-empty;
 * base64url without padding and canonical; the relay percent-encoded exactly as every
 * byte outside `A-Z a-z 0-9 - _ . ~` written `%XX` in upper-case hex. Parsing and then
 * encoding gives back the input byte for byte.
 */
import { AccordError, ErrorCode } from './errors.js';

export const INVITE_VERSION = 1;
export const MAX_INVITE_CHARS = 1024;
export const MAX_RELAY_CHARS = 256;
export const INVITE_KEY_BYTES = 32;
export const INVITE_SECRET_BYTES = 32;
export const Purpose = Object.freeze({ PARTNER: 'partner', SELF: 'self' });

const PREFIX = 'accord://pair/';
const PARAMETERS = ['r', 'c', 'k', 's', 'x', 'm'];
const CHANNEL = /^[A-Za-z0-9_-]{1,64}$/;
const EXPIRY = /^(0|[1-9][0-9]{0,11})$/;
const UNRESERVED = /^[A-Za-z0-9\-_.~]$/;
// http(s), a host (name, IPv4 or bracketed IPv6), an optional port, an optional path.
const RELAY_URL = /^https?:\/\/([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?(\/[^?#\s]*)?$/;

/** @returns {never} */
function malformed(message) {
  throw new AccordError(ErrorCode.MALFORMED, message);
}

/** base64url without padding (RFC 4648 section 5). */
export function b64encode(bytes) {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * Decode canonical base64url without padding.
 * @throws {AccordError} `malformed` for padding, other alphabets or non-canonical text
 */
export function b64decode(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    malformed('not base64url without padding');
  }
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
  if (b64encode(bytes) !== text) malformed('not canonical base64url');
  return bytes;
}

/** Percent-encode every byte of the UTF-8 text outside `A-Z a-z 0-9 - _ . ~`. */
export function percentEncode(text) {
  let out = '';
  for (const byte of new TextEncoder().encode(text)) {
    const ch = String.fromCharCode(byte);
    out += UNRESERVED.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function percentDecode(text) {
  const bytes = [];
  for (let i = 0; i < text.length; ) {
    if (text[i] === '%') {
      const hex = text.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) malformed('a percent escape is %XX in upper-case hex');
      bytes.push(parseInt(hex, 16));
      i += 3;
    } else {
      if (!UNRESERVED.test(text[i])) malformed('the relay URL is not percent-encoded');
      bytes.push(text.charCodeAt(i));
      i += 1;
    }
  }
  let decoded;
  try {
    decoded = new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    malformed('the relay URL is not UTF-8');
  }
  if (percentEncode(decoded) !== text) malformed('the relay URL is not encoded canonically');
  return decoded;
}

/**
 * Check a relay base URL (SPEC.md 11.2): http or https, a host, an optional port and
 * path, no user info, query or fragment, at most 256 characters.
 * @throws {AccordError} `malformed`
 */
export function checkRelayUrl(relay) {
  if (typeof relay !== 'string' || relay.length === 0 || relay.length > MAX_RELAY_CHARS) {
    malformed(`a relay URL is 1 to ${MAX_RELAY_CHARS} characters`);
  }
  const match = RELAY_URL.exec(relay);
  if (match === null) malformed('a relay URL is http(s)://host[:port][/path]');
  if (match[2] !== undefined && Number(match[2].slice(1)) > 65535) malformed('a port is at most 65535');
  return relay;
}

/**
 * Write the invite URI for its fields.
 * @param {object} invite relay, channel, key (32 bytes), secret (32 bytes), expires (Unix s), purpose
 * @throws {AccordError} `malformed` when a field is out of its form
 */
export function encodeInvite({ relay, channel, key, secret, expires, purpose }) {
  checkRelayUrl(relay);
  if (!CHANNEL.test(channel)) malformed('a channel id is 1 to 64 of A-Z a-z 0-9 - _');
  if (!(key instanceof Uint8Array) || key.length !== INVITE_KEY_BYTES) malformed('the key is 32 bytes');
  if (!(secret instanceof Uint8Array) || secret.length !== INVITE_SECRET_BYTES) malformed('the secret is 32 bytes');
  if (!EXPIRY.test(String(expires))) malformed('the expiry is at most 12 decimal digits');
  if (purpose !== Purpose.PARTNER && purpose !== Purpose.SELF) malformed('the purpose is partner or self');
  const uri =
    `${PREFIX}${INVITE_VERSION}?r=${percentEncode(relay)}&c=${channel}&k=${b64encode(key)}` +
    `&s=${b64encode(secret)}&x=${expires}&m=${purpose}`;
  if (uri.length > MAX_INVITE_CHARS) malformed(`an invite is at most ${MAX_INVITE_CHARS} characters`);
  return uri;
}

/**
 * Parse an invite URI at time `now` (Unix seconds).
 * @returns {{ relay: string, channel: string, key: Uint8Array, secret: Uint8Array, expires: number, purpose: string }}
 * @throws {AccordError} `unsupported_version` for another version, `expired` at or past
 *   the expiry, `malformed` for anything else that is not the canonical form
 */
export function parseInvite(uri, now) {
  if (typeof uri !== 'string' || uri.length > MAX_INVITE_CHARS || !/^[\x21-\x7e]*$/.test(uri)) {
    malformed(`an invite is at most ${MAX_INVITE_CHARS} printable ASCII characters`);
  }
  if (!uri.startsWith(PREFIX)) malformed('an invite starts with accord://pair/');
  const rest = uri.slice(PREFIX.length);
  const question = rest.indexOf('?');
  if (question < 0) malformed('an invite has parameters');
  const version = rest.slice(0, question);
  if (!/^[1-9][0-9]*$/.test(version)) malformed('the invite version is a decimal number');
  if (version !== String(INVITE_VERSION)) {
    throw new AccordError(ErrorCode.UNSUPPORTED_VERSION, `invite version ${version}`);
  }
  const pairs = rest.slice(question + 1).split('&');
  if (pairs.length !== PARAMETERS.length) malformed('an invite has exactly the parameters r, c, k, s, x, m');
  const values = {};
  pairs.forEach((pair, i) => {
    const equals = pair.indexOf('=');
    const name = equals < 0 ? pair : pair.slice(0, equals);
    const value = equals < 0 ? '' : pair.slice(equals + 1);
    if (name !== PARAMETERS[i]) malformed('the invite parameters are r, c, k, s, x, m in this order');
    if (value.length === 0) malformed(`the parameter ${name} is empty`);
    values[name] = value;
  });
  const invite = {
    relay: checkRelayUrl(percentDecode(values.r)),
    channel: values.c,
    key: b64decode(values.k),
    secret: b64decode(values.s),
    expires: EXPIRY.test(values.x) ? Number(values.x) : malformed('the expiry is decimal without a leading zero'),
    purpose: values.m,
  };
  if (encodeInvite(invite) !== uri) malformed('not the canonical form of an invite');
  if (now >= invite.expires) throw new AccordError(ErrorCode.EXPIRED, 'the invite has expired');
  return invite;
}
