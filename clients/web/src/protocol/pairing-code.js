/**
 * The typed pairing code (SPEC.md 11.3): `<nameplate>-<word>-<word>-<word>-<word>`.
 *
 * The nameplate is the channel's short decimal name from the relay; the four words carry
 * four random bytes, word number i standing for the byte i. The canonical text, in ASCII,
 * is the SPAKE2 password.
 */
import { AccordError, ErrorCode } from './errors.js';

/** The word list of SPEC.md 11.3, in order: word i stands for the byte i. */
export const WORDS = Object.freeze([
  'acorn', 'acrobat', 'adobe', 'album', 'alley', 'almond', 'amber', 'anchor',
  'apple', 'apron', 'arch', 'atlas', 'attic', 'autumn', 'badger', 'bagel',
  'baker', 'bamboo', 'banjo', 'barley', 'basket', 'beaver', 'beetle', 'berry',
  'birch', 'biscuit', 'blossom', 'bonsai', 'bottle', 'bridge', 'brook', 'bucket',
  'buffalo', 'button', 'cabin', 'cactus', 'camel', 'canoe', 'carrot', 'castle',
  'cedar', 'cello', 'chalk', 'cheese', 'chimney', 'cider', 'cinema', 'circle',
  'citrus', 'cloud', 'cobalt', 'cocoa', 'coffee', 'comet', 'copper', 'coral',
  'cotton', 'crayon', 'cricket', 'crystal', 'cymbal', 'dahlia', 'daisy', 'delta',
  'denim', 'desert', 'diamond', 'dolphin', 'domino', 'donkey', 'drum', 'dune',
  'eagle', 'easel', 'echo', 'ember', 'emerald', 'engine', 'fabric', 'falcon',
  'feather', 'fern', 'fiddle', 'field', 'fig', 'flannel', 'flute', 'forest',
  'fossil', 'garden', 'gazelle', 'gecko', 'ginger', 'glacier', 'globe', 'gondola',
  'goose', 'grape', 'guitar', 'harbor', 'hazel', 'helmet', 'heron', 'hockey',
  'icicle', 'igloo', 'iris', 'island', 'ivory', 'jacket', 'jasmine', 'jelly',
  'jigsaw', 'juniper', 'kayak', 'kettle', 'kite', 'kiwi', 'koala', 'ladder',
  'lagoon', 'lantern', 'lemon', 'lentil', 'lettuce', 'lilac', 'lime', 'linen',
  'lizard', 'llama', 'lobby', 'locket', 'magnet', 'mango', 'maple', 'marble',
  'meadow', 'meteor', 'mint', 'mitten', 'mosaic', 'museum', 'napkin', 'nectar',
  'nickel', 'noodle', 'nutmeg', 'oak', 'oasis', 'oboe', 'ocean', 'olive',
  'onion', 'opal', 'orange', 'orbit', 'orchid', 'otter', 'owl', 'paddle',
  'panda', 'paper', 'parrot', 'pasta', 'peanut', 'pebble', 'pecan', 'pelican',
  'pencil', 'pepper', 'piano', 'pickle', 'pigeon', 'pine', 'planet', 'plum',
  'pocket', 'pollen', 'pond', 'poppy', 'potato', 'pretzel', 'prism', 'pumpkin',
  'puzzle', 'quartz', 'quilt', 'rabbit', 'radish', 'raft', 'raisin', 'ranch',
  'raven', 'ribbon', 'river', 'robin', 'rocket', 'saffron', 'sage', 'salad',
  'sandal', 'saucer', 'scarf', 'shell', 'shovel', 'silver', 'sketch', 'sled',
  'snail', 'sofa', 'sparrow', 'spinach', 'spoon', 'spruce', 'squash', 'stamp',
  'stone', 'straw', 'summit', 'sunset', 'swan', 'table', 'teapot', 'tennis',
  'thistle', 'tiger', 'timber', 'toast', 'tomato', 'topaz', 'tower', 'tractor',
  'trolley', 'trumpet', 'tuba', 'tulip', 'tunnel', 'turtle', 'valley', 'vanilla',
  'violin', 'waffle', 'wagon', 'walnut', 'water', 'whale', 'wheat', 'willow',
  'window', 'wombat', 'yacht', 'yarn', 'yogurt', 'zebra', 'zinc', 'zipper',
]);

export const CODE_WORDS = 4;
const MAX_NAMEPLATE_DIGITS = 8;
const WORD_INDEX = new Map(WORDS.map((word, index) => [word, index]));

/** @returns {never} */
function malformed(message) {
  throw new AccordError(ErrorCode.MALFORMED, message);
}

/**
 * A nameplate in canonical form: 1 to 8 digits without leading zeros.
 * @throws {AccordError} `malformed`
 */
export function canonicalNameplate(text) {
  if (typeof text !== 'string' || !/^[0-9]+$/.test(text)) malformed('a nameplate is decimal digits');
  const stripped = text.replace(/^0+(?=[0-9])/, '');
  if (stripped.length > MAX_NAMEPLATE_DIGITS) malformed(`a nameplate has at most ${MAX_NAMEPLATE_DIGITS} digits`);
  return stripped;
}

/**
 * The canonical code for a nameplate and 4 secret bytes.
 * @throws {AccordError} `malformed` for a bad nameplate or secret
 */
export function makeCode(nameplate, secret) {
  if (!(secret instanceof Uint8Array) || secret.length !== CODE_WORDS) malformed('a code secret is 4 bytes');
  return [canonicalNameplate(nameplate), ...Array.from(secret, (byte) => WORDS[byte])].join('-');
}

/**
 * Read a typed code: upper case, surrounding blanks, and blanks or hyphens in any number
 * between the parts are accepted; leading zeros of the nameplate are dropped.
 * @returns {{ code: string, nameplate: string, secret: Uint8Array }}
 * @throws {AccordError} `malformed` for anything else, a word not in the list included
 */
export function readCode(typed) {
  if (typeof typed !== 'string') malformed('a code is text');
  const parts = typed.trim().split(/[\s-]+/).filter((part) => part.length > 0);
  if (parts.length !== CODE_WORDS + 1) malformed('a code is a nameplate and four words');
  const nameplate = canonicalNameplate(parts[0]);
  const secret = new Uint8Array(CODE_WORDS);
  parts.slice(1).forEach((part, i) => {
    const word = /^[A-Za-z]+$/.test(part) ? part.toLowerCase() : null;
    const index = word === null ? undefined : WORD_INDEX.get(word);
    if (index === undefined) malformed(`"${part}" is not a word of the list`);
    secret[i] = index;
  });
  return { code: makeCode(nameplate, secret), nameplate, secret };
}

/** A word of the list sharing the first three letters of `typed`, to suggest; or null. */
export function suggestWord(typed) {
  const prefix = String(typed).trim().toLowerCase().slice(0, 3);
  if (prefix.length < 3) return null;
  return WORDS.find((word) => word.startsWith(prefix)) ?? null;
}

/** The SPAKE2 password of a canonical code: its ASCII bytes. */
export function codePassword(code) {
  return new TextEncoder().encode(code);
}
