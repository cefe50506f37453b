/** Kind `envelope` (envelopes.json): key envelopes, SPEC.md 6.2. */
import { decodeEnvelope, unwrapKey, wrapKey } from '../../src/protocol/envelopes.js';
import { encode } from '../../src/protocol/cbor.js';
import { deviceFromSeed } from '../../src/protocol/identity.js';
import { Mismatch, expectEqual, fromHex, resultOrError, toHex } from './helpers.js';

export function checkEnvelope(c) {
  switch (c.check) {
    case 'wrap': {
      const sender = deviceFromSeed(fromHex(c.sender_seed));
      const envelope = wrapKey({
        senderSecretKey: sender.secretKey,
        sender: sender.publicKey,
        recipient: fromHex(c.recipient),
        space: fromHex(c.space),
        epoch: c.epoch,
        epochKey: fromHex(c.epoch_key),
        ephemeralSecret: fromHex(c.ephemeral_secret),
      });
      expectEqual({ envelope: toHex(envelope) }, c.expect, 'envelope');
      expectEqual(toHex(encode(decodeEnvelope(envelope))), toHex(envelope), 'envelope decoded and encoded again');
      return;
    }
    case 'unwrap': {
      const device = deviceFromSeed(fromHex(c.recipient_seed));
      resultOrError(
        c.expect,
        () =>
          unwrapKey(fromHex(c.envelope), {
            device,
            trustedSenders: c.trusted_senders.map(fromHex),
            space: fromHex(c.space),
          }),
        (opened) => expectEqual({ epoch_key: toHex(opened.epochKey) }, c.expect, 'unwrapped key'),
        'unwrap',
      );
      return;
    }
    default:
      throw new Mismatch(`unknown envelope check "${c.check}"`);
  }
}
