// Small helpers for tests that talk to the shared S3 test server.
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';
import type { S3TestConfig } from './vitest';

export type { S3TestConfig };

/** The server started by global-setup.ts. */
export function testServer(): S3TestConfig {
  return inject('s3');
}

/** A key no other test (or earlier run) uses: `${prefix}/${Date.now()}-${random}`. */
export function uniqueKey(prefix = 'test'): string {
  return `${prefix}/${Date.now()}-${randomBytes(4).toString('hex')}`;
}

// State files s3s-fs 0.14.1 keeps for an unfinished multipart upload (all in the data dir root):
//   .upload-<uuid>.json                                    upload id -> access key
//   .upload_id-<uuid>.part-<n>                             uploaded parts
//   .bucket-<b64>.object-<b64>.upload-<uuid>.metadata.json metadata given at create
const UPLOAD_STATE = /^\.upload[-_]|\.upload-[0-9a-f-]{36}\.metadata\.json$/;

/**
 * Paths (relative to dataDir) of s3s-fs multipart upload state files, to assert that no
 * upload was left orphaned. Note: the data dir is shared by all test files running in
 * parallel, so compare against a snapshot or use a dedicated server when that matters.
 */
export function listLeftovers(dataDir: string): string[] {
  return readdirSync(dataDir, { recursive: true, encoding: 'utf8' })
    .filter((rel) => UPLOAD_STATE.test(path.basename(rel)))
    .sort();
}
