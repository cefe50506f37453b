/**
 * The documents of one space (SPEC.md 7.2), as Yjs documents, and how to read them.
 *
 * `voice/<member>` holds a Map `records` (record key -> canonical record bytes);
 * `shared` holds a Text `plan`, a Map `plan_steps`, a Map `notes` of nested Texts and a Map
 * `schedule`. Each root is created with its type before any remote update is applied, so
 * a remote update cannot change what a root means. Writes are captured as Yjs v1 updates
 * (`encodeStateAsUpdate` against the state before the write).
 */
import * as Y from 'yjs';
import { toHex } from '../protocol/crypto.js';
import { AccordError, ErrorCode } from '../protocol/errors.js';
import { SHARED_DOC, voiceOwner } from '../protocol/payload.js';
import { readPlanStep, readVoiceValue } from '../protocol/voice-records.js';

/** A fresh Yjs document with the roots of its kind created. */
export function newDocument(name) {
  const doc = new Y.Doc();
  if (name === SHARED_DOC) {
    doc.getText('plan');
    doc.getMap('plan_steps');
    doc.getMap('notes');
    doc.getMap('schedule');
  } else {
    voiceOwner(name);
    doc.getMap('records');
  }
  return doc;
}

/**
 * Check that bytes decode as a Yjs v1 update.
 * @throws {AccordError} `malformed`
 */
export function checkUpdate(update) {
  try {
    Y.decodeUpdate(update);
  } catch {
    throw new AccordError(ErrorCode.MALFORMED, 'not a Yjs update');
  }
}

/** The documents of a space, by name. */
export class Documents {
  constructor() {
    /** @type {Map<string, Y.Doc>} */
    this.docs = new Map();
  }

  get(name) {
    if (!this.docs.has(name)) this.docs.set(name, newDocument(name));
    return this.docs.get(name);
  }

  /** Apply one update to its document (checked beforehand with `checkUpdate`). */
  apply(name, update) {
    Y.applyUpdate(this.get(name), update, 'remote');
  }

  /**
   * Change a document locally and return the update that the change made, or null when
   * it changed nothing.
   * @param {string} name
   * @param {(doc: Y.Doc) => void} change
   */
  change(name, change) {
    const doc = this.get(name);
    const before = Y.encodeStateVector(doc);
    doc.transact(() => change(doc), 'local');
    const update = Y.encodeStateAsUpdate(doc, before);
    // An update that adds nothing is two zero bytes (no structs, empty delete set).
    return update.length <= 2 ? null : update;
  }

  /** Names of the voice documents held. */
  voiceNames() {
    return [...this.docs.keys()].filter((name) => name !== SHARED_DOC);
  }
}

/**
 * Read every voice (SPEC.md 7.3): the records that pass the checks, and the problems.
 * @param {Documents} documents
 * @returns {{ records: object[], problems: Array<{doc: string, key: string, code: string}> }}
 */
export function readVoices(documents) {
  const records = [];
  const problems = [];
  for (const name of documents.voiceNames()) {
    const owner = voiceOwner(name);
    const map = documents.get(name).getMap('records');
    for (const [key, value] of map.entries()) {
      try {
        const { record, known } = readVoiceValue(key, value, owner);
        if (known) records.push(record);
      } catch (error) {
        if (!(error instanceof AccordError)) throw error;
        problems.push({ doc: name, key, code: error.code });
      }
    }
  }
  return { records, problems };
}

/** The crisis plan's steps, by section then position then id; invalid steps skipped. */
export function readPlanSteps(documents) {
  const steps = [];
  for (const [key, value] of documents.get(SHARED_DOC).getMap('plan_steps').entries()) {
    try {
      steps.push(readPlanStep(key, value));
    } catch (error) {
      if (!(error instanceof AccordError)) throw error;
    }
  }
  return steps.sort(
    (a, b) => a.section.localeCompare(b.section) || a.position - b.position || (toHex(a.id) < toHex(b.id) ? -1 : 1),
  );
}

/** The check-in schedule, with values of the wrong type skipped (SPEC.md 7.2). */
export function readSchedule(documents) {
  const map = documents.get(SHARED_DOC).getMap('schedule');
  const every = map.get('every_days');
  const time = map.get('time');
  const note = map.get('note');
  return {
    everyDays: Number.isInteger(every) && every >= 1 && every <= 366 ? every : null,
    time: typeof time === 'string' && /^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(time) ? time : null,
    note: typeof note === 'string' ? note : '',
  };
}

/** The free wording of the crisis plan. */
export function readPlanText(documents) {
  return documents.get(SHARED_DOC).getText('plan').toString();
}

