/** Kind `padding` (padding.json): size buckets and 7816-4 padding, SPEC.md 4.4. */
import { bucketFor, pad, unpad } from '../../src/protocol/padding.js';
import { Mismatch, expectEqual, fromHex, resultOrError, toHex } from './helpers.js';

export function checkPadding(c) {
  switch (c.check) {
    case 'pad': {
      const plaintext = fromHex(c.plaintext);
      const padded = pad(plaintext);
      expectEqual({ bucket: bucketFor(plaintext.length), padded: toHex(padded) }, c.expect, 'pad');
      expectEqual(toHex(unpad(padded)), c.plaintext, 'unpad of pad');
      return;
    }
    case 'bucket':
      resultOrError(c.expect, () => bucketFor(c.length), (bucket) => expectEqual({ bucket }, c.expect, 'bucket'), 'bucket');
      return;
    case 'unpad':
      resultOrError(
        c.expect,
        () => unpad(fromHex(c.padded)),
        (plaintext) => expectEqual({ plaintext: toHex(plaintext) }, c.expect, 'unpad'),
        'unpad',
      );
      return;
    default:
      throw new Mismatch(`unknown padding check "${c.check}"`);
  }
}
