/** Kind `keys` (keys.json): identities, hashes and key derivations, SPEC.md section 3. */
import { contentKey } from '../../src/protocol/entry.js';
import { keyId } from '../../src/protocol/envelopes.js';
import { deviceFromSeed, fingerprint, memberIdOf, safetyNumber } from '../../src/protocol/identity.js';
import { joinProof } from '../../src/protocol/roster.js';
import { Mismatch, expectEqual, fromHex, toHex } from './helpers.js';

export function checkKeys(c) {
  switch (c.check) {
    case 'device': {
      const device = deviceFromSeed(fromHex(c.seed));
      expectEqual(
        {
          ed25519_public: toHex(device.publicKey),
          x25519_public: toHex(device.x25519Public),
          member_id: toHex(memberIdOf(device.publicKey)),
          fingerprint: fingerprint(device.publicKey),
        },
        c.expect,
        'device',
      );
      return;
    }
    case 'safety_number': {
      const a = c.keys_a.map(fromHex);
      const b = c.keys_b.map(fromHex);
      expectEqual(safetyNumber(a, b), c.expect, 'safety number');
      expectEqual(safetyNumber(b, a), c.expect, 'safety number, sides swapped');
      return;
    }
    case 'content_key':
      expectEqual(toHex(contentKey(fromHex(c.epoch_key), fromHex(c.space), c.epoch)), c.expect, 'content key');
      return;
    case 'key_id':
      expectEqual(toHex(keyId(fromHex(c.epoch_key))), c.expect, 'key id');
      return;
    case 'join_proof': {
      const device = deviceFromSeed(fromHex(c.seed));
      const proof = joinProof({
        secretKey: device.secretKey,
        space: fromHex(c.space),
        member: fromHex(c.member),
        by: fromHex(c.by),
      });
      expectEqual(toHex(proof), c.expect, 'join proof');
      return;
    }
    default:
      throw new Mismatch(`unknown keys check "${c.check}"`);
  }
}
