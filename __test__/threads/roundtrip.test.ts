// Runs in the 'threads' project (vitest pool: threads): the package loaded in a
// worker thread, as in a host whose test runner uses worker_threads.
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import { isMainThread } from 'node:worker_threads';
import { describe, expect, inject, it } from 'vitest';
import { FileNotFoundError, S3StorageBackend } from '../../lib/index.mjs';
import { uniqueKey } from '../helpers/s3';

const s3 = inject('s3');
const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe('in a vitest worker thread', () => {
  it('runs in a worker thread with the shared server injected', () => {
    expect(isMainThread).toBe(false);
    expect(s3).toMatchObject({ bucket: expect.any(String), endpoint: expect.stringMatching(/^https?:\/\//), port: expect.any(Number) });
  });

  it('uploads, downloads, checks, signs and deletes', async () => {
    const backend = new S3StorageBackend({ bucket: s3.bucket, region: s3.region, endpoint: s3.endpoint, credentials });
    const key = uniqueKey('threads');
    const body = Buffer.from('from a worker thread\n'.repeat(500));

    const result = await backend.upload({ key, body, contentType: 'text/plain' });
    expect(result.key).toBe(key);
    expect(await backend.exists(key)).toBe(true);

    const down = await backend.download(key);
    expect(down.contentType).toBe('text/plain');
    expect(down.contentLength).toBe(body.length);
    expect((await readAll(down)).equals(body)).toBe(true);

    const { url, expiresAt } = await backend.getSignedUrl(key, { expiresIn: 60 });
    expect(Date.parse(expiresAt)).toBeGreaterThan(Date.now());
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);

    await backend.delete(key);
    expect(await backend.exists(key)).toBe(false);
    await expect(backend.download(key)).rejects.toBeInstanceOf(FileNotFoundError);
  });

  it('works through the CommonJS entry too (stream upload)', async () => {
    const cjs = createRequire(import.meta.url)('../../lib/index.cjs') as typeof import('../../index');
    const backend = new cjs.S3StorageBackend({ bucket: s3.bucket, region: s3.region, endpoint: s3.endpoint, credentials });
    const key = uniqueKey('threads-cjs');
    await backend.upload({ key, body: Readable.from(['a', 'b', 'c']), contentType: 'text/plain' });
    expect((await readAll(await backend.download(key))).toString()).toBe('abc');
    await backend.delete(key);
    expect(await backend.exists(key)).toBe(false);
  });
});
