// Runs in the 'threads' project: a worker thread's process.env is its own copy, not the
// process environment, and its hooks are called on its own event loop.
import { isMainThread } from 'node:worker_threads';
import { describe, expect, inject, it } from 'vitest';
import { S3StorageBackend } from '../../lib/index.mjs';
import type { RequestEvent } from '../../index';
import { startForwardProxy } from '../helpers/network.mjs';
import { uniqueKey } from '../helpers/s3';

const s3 = inject('s3');
const options = {
  bucket: s3.bucket,
  region: s3.region,
  endpoint: s3.endpoint,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
};

describe('proxy and onRequest in a worker thread', () => {
  it('HTTP_PROXY set in the worker`s own process.env applies to a backend built there', async () => {
    expect(isMainThread).toBe(false);
    const proxy = await startForwardProxy();
    const saved = process.env.HTTP_PROXY;
    process.env.HTTP_PROXY = proxy.url;
    let b: S3StorageBackend;
    try {
      b = new S3StorageBackend(options);
    } finally {
      if (saved === undefined) delete process.env.HTTP_PROXY;
      else process.env.HTTP_PROXY = saved;
    }
    try {
      expect(await b.exists(uniqueKey('threads-proxy'))).toBe(false);
      expect(proxy.forwarded.length).toBeGreaterThan(0);
    } finally {
      await proxy.close();
    }
  });

  it('onRequest events reach a hook in the worker', async () => {
    const events: RequestEvent[] = [];
    const b = new S3StorageBackend({ ...options, proxy: false, onRequest: (e) => events.push(e) });
    const key = uniqueKey('threads-observe');
    await b.upload({ key, body: Buffer.from('x'), contentType: 'text/plain' });
    await expect.poll(() => events.length).toBe(1);
    expect(events[0]).toMatchObject({ operation: 'upload', s3Operation: 'PutObject', status: 200, key });
    await b.delete(key);
  });
});
