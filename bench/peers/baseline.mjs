// An earlier build of this package, for before/after comparisons in one run with equal
// settings: BENCH_BASELINE=<a checkout of an earlier commit, with its addon built>
// (e.g. `git worktree add /tmp/base <commit> && (cd /tmp/base && npm ci && npm run build)`).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createWith } from './ours.mjs';

const dir = process.env.BENCH_BASELINE;
if (!dir) throw new Error('the baseline peer needs BENCH_BASELINE=<checkout of an earlier commit with its addon built>');
const { S3StorageBackend } = await import(pathToFileURL(path.join(path.resolve(dir), 'lib', 'index.mjs')).href);

export const label = `baseline (${path.basename(path.resolve(dir))})`;

export function create(s) {
  return createWith(S3StorageBackend, s);
}
