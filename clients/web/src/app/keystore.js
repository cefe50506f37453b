/**
 * Keys at rest (DESIGN.md 5): the device seed and every epoch key, sealed under a key
 * derived from the person's passphrase with Argon2id (`crypto_pwhash`) and
 * `crypto_secretbox`. Only the sealed blob is ever stored; the passphrase and the derived
 * key stay in memory while the app is unlocked.
 */
import { decode, encode, newMap } from '../protocol/cbor.js';
import { lib, randomBytes, toHex } from '../protocol/crypto.js';
import { deviceFromSeed } from '../protocol/identity.js';

export const KEYSTORE_VERSION = 1;

/** The passphrase does not open the keystore (or the blob was damaged). */
export class WrongPassphrase extends Error {
  constructor() {
    super('the passphrase does not open this keystore');
    this.name = 'WrongPassphrase';
  }
}

function deriveKey(passphrase, salt, opslimit, memlimit) {
  const s = lib();
  return s.crypto_pwhash(s.crypto_secretbox_KEYBYTES, passphrase, salt, opslimit, memlimit, s.crypto_pwhash_ALG_ARGON2ID13);
}

/** The unlocked keystore: the device and the epoch keys of each space. */
export class Keystore {
  constructor({ seed, spaces, boxKey, salt, opslimit, memlimit }) {
    this.seed = seed;
    this.device = deviceFromSeed(seed);
    /** space hex -> Map<epoch, key> */
    this.spaces = spaces;
    this.boxKey = boxKey;
    this.salt = salt;
    this.opslimit = opslimit;
    this.memlimit = memlimit;
  }

  /** A new keystore with a fresh device key. */
  static create(passphrase, { interactive = true } = {}) {
    const s = lib();
    const opslimit = interactive ? s.crypto_pwhash_OPSLIMIT_INTERACTIVE : s.crypto_pwhash_OPSLIMIT_MODERATE;
    const memlimit = interactive ? s.crypto_pwhash_MEMLIMIT_INTERACTIVE : s.crypto_pwhash_MEMLIMIT_MODERATE;
    const salt = randomBytes(s.crypto_pwhash_SALTBYTES);
    return new Keystore({
      seed: randomBytes(s.crypto_sign_SEEDBYTES),
      spaces: new Map(),
      boxKey: deriveKey(passphrase, salt, opslimit, memlimit),
      salt,
      opslimit,
      memlimit,
    });
  }

  /**
   * Open a sealed blob.
   * @throws {WrongPassphrase}
   */
  static open(blob, passphrase) {
    const s = lib();
    const boxKey = deriveKey(passphrase, blob.salt, blob.opslimit, blob.memlimit);
    let plain;
    try {
      plain = decode(s.crypto_secretbox_open_easy(blob.box, blob.nonce, boxKey));
    } catch {
      throw new WrongPassphrase();
    }
    const spaces = new Map();
    for (const [spaceHex, epochs] of Object.entries(plain.spaces)) {
      spaces.set(spaceHex, new Map(epochs.map(([epoch, key]) => [epoch, key])));
    }
    return new Keystore({ seed: plain.seed, spaces, boxKey, salt: blob.salt, opslimit: blob.opslimit, memlimit: blob.memlimit });
  }

  /** The sealed blob to store. */
  seal() {
    const s = lib();
    const spaces = newMap([...this.spaces].map(([hex, epochs]) => [hex, [...epochs].sort((a, b) => a[0] - b[0])]));
    const plain = encode(newMap([['v', KEYSTORE_VERSION], ['seed', this.seed], ['spaces', spaces]]));
    const nonce = randomBytes(s.crypto_secretbox_NONCEBYTES);
    return {
      v: KEYSTORE_VERSION,
      salt: this.salt,
      opslimit: this.opslimit,
      memlimit: this.memlimit,
      nonce,
      box: s.crypto_secretbox_easy(plain, nonce, this.boxKey),
    };
  }

  /** The epoch keys of a space (a live map: the replica adds to it). */
  epochKeys(space) {
    const hex = toHex(space);
    if (!this.spaces.has(hex)) this.spaces.set(hex, new Map());
    return this.spaces.get(hex);
  }

  forget(space) {
    this.spaces.delete(toHex(space));
  }

  /** Forget the keys in memory (lock). */
  lock() {
    this.seed.fill(0);
    this.boxKey.fill(0);
  }
}

