/** Kind `rule-record` (rule-records.json): byte-exact agreement records, SPEC.md 8.1 and 8.2. */
import { encode, newMap } from '../../src/protocol/cbor.js';
import { decodeRecord, encodeRecord, versionId } from '../../src/protocol/agreement-records.js';
import { expectEqual, expectError, fromHex, onlyFields, toHex } from './helpers.js';

const BYTE_FIELDS = new Set(['item', 'author', 'member', 'version', 'id']);
const BYTE_LISTS = new Set(['parents', 'lifts']);

function recordFromJson(json) {
  return newMap(
    Object.entries(json).map(([field, value]) => {
      if (BYTE_FIELDS.has(field)) return [field, fromHex(value)];
      if (BYTE_LISTS.has(field)) return [field, value.map(fromHex)];
      return [field, value];
    }),
  );
}

export function checkRuleRecord(c) {
  onlyFields(c, ['name', 'description', 'record', 'bytes', 'version_id', 'error']);
  const bytes = fromHex(c.bytes);
  if (c.error !== undefined) {
    expectError(() => decodeRecord(bytes), c.error, 'decoding the stored record');
    return;
  }
  const record = recordFromJson(c.record);
  expectEqual(toHex(encode(record)), c.bytes, 'canonical encoding');
  if (record.type === 'version') {
    expectEqual(toHex(versionId(record)), c.version_id, 'version id');
    encodeRecord(record, { stored: false });
    const stored = newMap([...Object.entries(record), ['id', fromHex(c.version_id)]]);
    expectEqual(decodeRecord(encode(stored)), stored, 'decoded stored version');
  } else {
    expectEqual(decodeRecord(bytes), record, 'decoded record');
  }
}
