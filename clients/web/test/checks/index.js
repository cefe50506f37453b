/** Vector kinds (SPEC.md section 12) and the checker that runs one case of each. */
import { checkEntry } from './entries.js';
import { checkEnvelope } from './envelopes.js';
import { checkFeed } from './feeds.js';
import { checkKeys } from './keys.js';
import { checkPadding } from './padding.js';
import { checkPairingCode, checkPairingMessage, checkPairingSession, checkPairingUri } from './pairing.js';
import { checkRoster } from './roster.js';
import { checkRule } from './rule.js';
import { checkRuleRecord } from './rule-record.js';

export const CHECKERS = Object.freeze({
  keys: checkKeys,
  padding: checkPadding,
  entry: checkEntry,
  feed: checkFeed,
  envelope: checkEnvelope,
  roster: checkRoster,
  rule: checkRule,
  'rule-record': checkRuleRecord,
  'pairing-code': checkPairingCode,
  'pairing-uri': checkPairingUri,
  'pairing-message': checkPairingMessage,
  'pairing-session': checkPairingSession,
});
