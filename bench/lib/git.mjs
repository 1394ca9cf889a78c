// The commit a result describes, for the scripts that record one.
import { execFileSync } from 'node:child_process';

/** The short hash of `dir`'s checked-out commit; `undefined` outside a git checkout. */
export function gitHead(dir) {
  try {
    return execFileSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}
