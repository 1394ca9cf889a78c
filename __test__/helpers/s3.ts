// Small helpers for tests that talk to the shared S3 test server.
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { inject } from 'vitest';
import { listS3sFsLeftovers } from './servers';
import type { S3TestConfig } from './vitest';

export type { S3TestConfig };
export { unfinishedUploads } from './servers';

/** The server started by global-setup.ts. */
export function testServer(): S3TestConfig {
  return inject('s3');
}

/** A key no other test (or earlier run) uses: `${prefix}/${Date.now()}-${random}`. */
export function uniqueKey(prefix = 'test'): string {
  return `${prefix}/${Date.now()}-${randomBytes(4).toString('hex')}`;
}

/**
 * Paths (relative to dataDir) of s3s-fs multipart upload state files, to assert that no
 * upload was left orphaned. s3s-fs only (it has no ListMultipartUploads); for any server use
 * `unfinishedUploads(server)`. Note: the data dir is shared by all test files running in
 * parallel, so compare against a snapshot or use a dedicated server when that matters.
 */
export function listLeftovers(dataDir: string): string[] {
  return listS3sFsLeftovers(dataDir);
}

/**
 * Whether `<bucket>.localhost` resolves to 127.0.0.1 here, as virtual-hosted-style requests
 * to the test servers need. Debian's default NSS does not know *.localhost; `npm run
 * test:matrix` (and .ci/run) installs libnss-myhostname, which needs root, so `npm test` on a
 * machine without it skips those tests, and the skip shows in the report.
 */
export async function localhostResolves(name = 'test-bucket.localhost'): Promise<boolean> {
  try {
    return (await lookup(name, { family: 4 })).address === '127.0.0.1';
  } catch {
    return false;
  }
}
