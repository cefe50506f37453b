/**
 * The JavaScript conformance runner: every file in protocol/vectors/*.json, dispatched by
 * its `kind` (SPEC.md section 12) to a checker in ./checks, each case checked on its own.
 *
 *   node test/conformance.js [vector directory]     (default: ../../protocol/vectors)
 *
 * Prints one line per failure, then `N passed, N failed`, and exits non-zero when anything
 * failed. A file of a kind this client does not know counts as one failure per case, with
 * a message that says so: a new kind is work to do, never something to skip quietly.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ready } from '../src/protocol/crypto.js';
import { CHECKERS } from './checks/index.js';

const here = dirname(fileURLToPath(import.meta.url));
const vectorDir = resolve(process.argv[2] ?? process.env.ACCORD_VECTORS ?? join(here, '..', '..', '..', 'protocol', 'vectors'));

await ready();

let passed = 0;
let failed = 0;
const tally = new Map();

function record(kind, ok) {
  const entry = tally.get(kind) ?? { passed: 0, failed: 0 };
  if (ok) entry.passed += 1;
  else entry.failed += 1;
  tally.set(kind, entry);
  if (ok) passed += 1;
  else failed += 1;
}

const files = readdirSync(vectorDir).filter((name) => name.endsWith('.json')).sort();
if (files.length === 0) {
  console.log(`FAIL no vector files in ${vectorDir}`);
  failed += 1;
}
for (const name of files) {
  let document;
  try {
    document = JSON.parse(readFileSync(join(vectorDir, name), 'utf8'));
  } catch (error) {
    console.log(`FAIL ${name}: not readable JSON (${error.message})`);
    record('(unreadable)', false);
    continue;
  }
  const kind = document.kind;
  const cases = Array.isArray(document.cases) ? document.cases : null;
  if (cases === null) {
    console.log(`FAIL ${name}: no "cases" array`);
    record(String(kind), false);
    continue;
  }
  const checker = CHECKERS[kind];
  if (checker === undefined) {
    console.log(`FAIL ${name}: kind "${kind}" is not implemented by the JavaScript client (${cases.length} cases)`);
    for (let i = 0; i < Math.max(cases.length, 1); i += 1) record(String(kind), false);
    continue;
  }
  cases.forEach((testCase, index) => {
    const label = `${name} #${index} ${testCase?.name ?? ''}`.trim();
    try {
      checker(testCase);
      record(kind, true);
    } catch (error) {
      record(kind, false);
      const detail = error instanceof Error ? error.message : String(error);
      console.log(`FAIL ${label}: ${detail}`);
      if (process.env.ACCORD_VERBOSE && error instanceof Error) console.log(error.stack);
    }
  });
}

for (const [kind, counts] of [...tally.entries()].sort()) {
  console.log(`  ${kind}: ${counts.passed} passed, ${counts.failed} failed`);
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;
