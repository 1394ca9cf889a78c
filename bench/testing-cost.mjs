#!/usr/bin/env node
// What the test server (`/testing`, startLocalS3) costs, and what it costs the
// production path: the size of each addon, and medians over fresh Node
// processes of
//   - an empty `node` (the baseline),
//   - importing the backend (lib/index.cjs),
//   - importing the backend and the /testing entry (its addon loads on first use),
//   - the first startLocalS3() (loads the test addon, binds, creates the bucket) and stop(),
// and whether importing the backend maps the test addon (it must not).
//
//   node bench/testing-cost.mjs [--runs 15] [--save bench/results/<file>.json]
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gitHead } from './lib/git.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { runs: { type: 'string', default: '15' }, save: { type: 'string' } } });
const runs = Number(values.runs);

const addon = (dir, name) => {
  const file = readdirSync(path.join(root, dir)).find((f) => f.startsWith(`${name}.`) && f.endsWith('.node'));
  return file ? { file: path.join(dir, file), bytes: statSync(path.join(root, dir, file)).size } : undefined;
};

// Each script prints the milliseconds of its measured part (process start to
// the end of the imports: performance.now() counts from the process's start).
const scripts = {
  'empty node': `console.log(performance.now())`,
  'import the backend': `require('./lib/index.cjs'); console.log(performance.now())`,
  'import the backend and /testing': `require('./lib/index.cjs'); require('./testing/index.cjs'); console.log(performance.now())`,
  'first startLocalS3() + stop()': `const { startLocalS3 } = require('./testing/index.cjs'); const t0 = performance.now(); startLocalS3().then(async (s) => { const ms = performance.now() - t0; await s.stop(); console.log(ms) })`,
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const samples = Object.fromEntries(Object.keys(scripts).map((k) => [k, []]));
// Interleaved, so drift (page cache, CPU frequency) hits every case alike.
for (let i = 0; i < runs; i++) {
  for (const [name, script] of Object.entries(scripts)) {
    samples[name].push(Number(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' }).trim()));
  }
}
const mapsTestAddon = execFileSync(
  process.execPath,
  ['-e', `require('./lib/index.cjs'); console.log(process.report.getReport().sharedObjects.some((f) => f.includes('storage-s3-testing')))`],
  { cwd: root, encoding: 'utf8' },
).trim();

const result = {
  date: new Date().toISOString(),
  commit: gitHead(root),
  command: `node bench/testing-cost.mjs --runs ${runs}${values.save ? ` --save ${values.save}` : ''}`,
  node: process.version,
  cpus: (await import('node:os')).cpus().length,
  addons: { backend: addon('.', 'storage-s3-native'), testing: addon('testing', 'storage-s3-testing') },
  medianMs: Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, Number(median(xs).toFixed(2))])),
  runs,
  backendImportMapsTestAddon: mapsTestAddon === 'true',
};
console.log(JSON.stringify(result, null, 2));
if (values.save) writeFileSync(path.join(root, values.save), `${JSON.stringify(result, null, 2)}\n`);
