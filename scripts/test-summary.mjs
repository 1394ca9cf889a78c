// Prints, at the end of .ci/run, one line per server for the integration suite and then each
// failed test with the start of its message, read from vitest's JSON reports
// (test-results/vitest-<server>.json, written by scripts/matrix.mjs). CI keeps only the tail of
// the output, so the names of failed tests must be there and not only in vitest's own log.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVER_KINDS } from './s3-server.mjs';
import { reportFile } from './test-reports.mjs';

const MESSAGE_LINES = 8;
const ROOT = fileURLToPath(new URL('..', import.meta.url));

const failures = [];
for (const server of SERVER_KINDS) {
  let report;
  try {
    report = JSON.parse(readFileSync(path.join(ROOT, reportFile(server)), 'utf8'));
  } catch {
    console.log(`vitest ${server}: no report (not run)`);
    continue;
  }
  const skipped = report.numPendingTests + report.numTodoTests;
  console.log(
    `vitest ${server}: ${report.numPassedTests} passed, ${report.numFailedTests} failed` +
      (skipped ? `, ${skipped} skipped` : ''),
  );
  for (const file of report.testResults) {
    const name = path.relative(ROOT, file.name);
    const failed = file.assertionResults.filter((t) => t.status === 'failed');
    for (const t of failed) failures.push({ server, where: `${name} › ${t.fullName}`, message: t.failureMessages.join('\n') });
    // A file can fail outside any test (an import error, a failing hook).
    if (file.status === 'failed' && failed.length === 0) failures.push({ server, where: name, message: file.message });
  }
}
for (const f of failures) {
  console.log(`\nFAILED on ${f.server}: ${f.where}`);
  const lines = String(f.message ?? '').split('\n').filter((l) => l.trim() !== '');
  for (const line of lines.slice(0, MESSAGE_LINES)) console.log(`  ${line}`);
  if (lines.length > MESSAGE_LINES) console.log(`  … (${lines.length - MESSAGE_LINES} more lines)`);
}
