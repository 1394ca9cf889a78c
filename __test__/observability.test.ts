// The onRequest hook: one event per HTTP attempt (retries included, presigning none), with
// the operation, S3 call, method, status, attempt, duration, request id and key, and never a
// credential or a signature. The backend talks to the shared test server through the tests'
// relay proxy (helpers/proxy.mjs), which injects the 503s and stalls.
//
// Events reach JS asynchronously (queued to the JS thread while the request goes on), so the
// tests wait for the expected count and then a little longer, to see that no more come.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError, createS3Backend, S3StorageBackend } from '../lib/index.mjs';
import type { RequestEvent, S3BackendOptions } from '../index';
import { startProxy, type TestProxy } from './helpers/proxy.mjs';
import { freePort } from './helpers/servers';
import { testServer, uniqueKey } from './helpers/s3';
import { readAll, sleep } from './helpers/streams';

const server = testServer();
const OCTET = 'application/octet-stream';
const MiB = 1024 * 1024;
const credentials = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };

/** Every event any backend of this file reported, for the leak check at the end. */
const everything: RequestEvent[] = [];

function observed(endpoint: string, extra: Partial<S3BackendOptions> = {}) {
  const events: RequestEvent[] = [];
  const b = new S3StorageBackend({
    bucket: server.bucket,
    region: server.region,
    endpoint,
    credentials,
    retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
    timeouts: { connectMs: 2000, requestMs: 10_000 },
    onRequest: (e) => {
      events.push(e);
      everything.push(e);
    },
    ...extra,
  });
  /** Waits for at least `n` events, then 50 ms more; returns them all and starts afresh. */
  const take = async (n: number): Promise<RequestEvent[]> => {
    const deadline = Date.now() + 5000;
    while (events.length < n && Date.now() < deadline) await sleep(5);
    await sleep(50);
    return events.splice(0);
  };
  return { b, take };
}

describe('onRequest', () => {
  let proxy: TestProxy;
  let b: S3StorageBackend;
  let take: (n: number) => Promise<RequestEvent[]>;
  beforeAll(async () => {
    proxy = await startProxy({ host: '127.0.0.1', port: server.port });
    ({ b, take } = observed(proxy.endpoint));
  });
  afterAll(() => proxy?.close());

  it('a successful upload fires one event: upload, PutObject, PUT, status 200, attempt 1, with key and bucket', async () => {
    proxy.reset();
    const key = uniqueKey('observe');
    await b.upload({ key, body: Buffer.from('hello'), contentType: OCTET });
    const events = await take(1);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ operation: 'upload', s3Operation: 'PutObject', method: 'PUT', status: 200, attempt: 1, key, bucket: server.bucket });
    expect(events[0].error).toBeUndefined();
    expect(events[0].durationMs).toBeGreaterThan(0);
    expect(events[0].durationMs).toBeLessThan(10_000);
  });

  it('a 503 SlowDown once: two events, attempts 1 and 2, statuses 503 then 200; the 503 carries its x-amz-request-id', async () => {
    proxy.reset();
    proxy.slowDown(1);
    const key = uniqueKey('observe-503');
    await b.upload({ key, body: Buffer.from('retried'), contentType: OCTET });
    const events = await take(2);
    expect(proxy.requests.map((r) => r.action)).toEqual(['slowDown', 'forward']);
    expect(events.map((e) => [e.s3Operation, e.attempt, e.status])).toEqual([
      ['PutObject', 1, 503],
      ['PutObject', 2, 200],
    ]);
    expect(events[0].requestId).toMatch(/^proxy-\d+$/);
  });

  it.runIf(server.server === 's3s-fs')('s3s-fs sends no x-amz-request-id: its answers give events without requestId', async () => {
    const key = uniqueKey('observe-id');
    await b.upload({ key, body: Buffer.from('x'), contentType: OCTET });
    const [event] = await take(1);
    expect(event.status).toBe(200);
    expect('requestId' in event && event.requestId !== undefined).toBe(false);
  });

  it('a HEAD of a missing key gives an exists event with status 404', async () => {
    proxy.reset();
    const key = uniqueKey('observe-missing');
    expect(await b.exists(key)).toBe(false);
    const events = await take(1);
    const head = events.find((e) => e.s3Operation === 'HeadObject');
    expect(head).toMatchObject({ operation: 'exists', method: 'HEAD', status: 404, attempt: 1, key });
    // A HeadBucket may follow (is it the key or the bucket that is missing?): the same operation.
    expect(events.every((e) => e.operation === 'exists')).toBe(true);
  });

  it('a download: one GetObject event with status 200', async () => {
    const key = uniqueKey('observe-get');
    await b.upload({ key, body: Buffer.from('body'), contentType: OCTET });
    await take(1);
    expect((await readAll(await b.download(key))).toString()).toBe('body');
    expect((await take(1)).map((e) => [e.operation, e.s3Operation, e.method, e.status])).toEqual([['download', 'GetObject', 'GET', 200]]);
  });

  it('a multipart upload: CreateMultipartUpload, each UploadPart and CompleteMultipartUpload, all "upload"', async () => {
    const { b: mp, take: takeMp } = observed(proxy.endpoint, { multipart: { partSize: 5 * MiB, threshold: 5 * MiB } });
    const key = uniqueKey('observe-mp');
    await mp.upload({ key, body: Buffer.alloc(6 * MiB, 1), contentType: OCTET });
    // moto's CompleteMultipartUpload answer has a root element the SDK cannot read, so the
    // backend checks with a HEAD that the object landed (docs/compatibility.md): one more event.
    const moto = server.server === 'moto';
    const events = await takeMp(moto ? 5 : 4);
    const expected = ['CompleteMultipartUpload', 'CreateMultipartUpload', ...(moto ? ['HeadObject'] : []), 'UploadPart', 'UploadPart'];
    expect(events.map((e) => e.s3Operation).sort()).toEqual(expected);
    expect(events.every((e) => e.operation === 'upload' && e.key === key)).toBe(true);
    // moto answers the Complete with 200 too; the SDK just cannot parse it.
    expect(events.map((e) => e.status)).toEqual(events.map(() => 200));
  });

  it('attempts that get no answer: no status, a short error, one event per attempt', async () => {
    const { b: dead, take: takeDead } = observed(`http://127.0.0.1:${await freePort()}`);
    await expect(dead.exists(uniqueKey('observe-refused'))).rejects.toThrow(/unavailable/);
    const events = await takeDead(3);
    expect(events.map((e) => e.attempt)).toEqual([1, 2, 3]);
    for (const e of events) {
      expect(e.status).toBeUndefined();
      expect(e.error).toMatch(/refused/i);
      expect(e.error!.length).toBeLessThanOrEqual(200);
    }
  });

  it('an attempt dropped by an abort is reported, as abandoned', async () => {
    proxy.reset();
    proxy.stallRequest(undefined, 1);
    const ac = new AbortController();
    const call = b.exists(uniqueKey('observe-abort'), { signal: ac.signal });
    while (proxy.requests.length === 0) await sleep(5);
    ac.abort();
    await expect(call).rejects.toThrow(/aborted/);
    const events = await take(1);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ operation: 'exists', s3Operation: 'HeadObject', attempt: 1 });
    expect(events[0].status).toBeUndefined();
    expect(events[0].error).toMatch(/^abandoned/);
    proxy.dropAll();
  });

  it('presigning fires nothing: static credentials, and the SDK presigner (default credential chain)', async () => {
    const key = uniqueKey('observe-sign');
    await b.getSignedUrl(key);
    await b.getSignedUrl(key, { method: 'PUT' });
    await b.createPresignedPost({ key, maxSize: 10 });
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = credentials.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = credentials.secretAccessKey;
    try {
      const { b: chain, take: takeChain } = observed(proxy.endpoint, { credentials: undefined });
      const { url } = await chain.getSignedUrl(key);
      expect(url).toContain('X-Amz-Signature=');
      expect(await takeChain(0)).toEqual([]);
    } finally {
      for (const [name, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
    expect(await take(0)).toEqual([]);
  });

  it('list, copy and deleteMany report their operations (list: the prefix as key; deleteMany: no key)', async () => {
    const prefix = uniqueKey('observe-ops');
    await b.upload({ key: `${prefix}/a`, body: Buffer.from('a'), contentType: OCTET });
    await b.copy(`${prefix}/a`, `${prefix}/b`);
    await b.list({ prefix });
    await b.deleteMany([`${prefix}/a`, `${prefix}/b`]);
    const events = (await take(5)).map((e) => [e.operation, e.s3Operation, e.key]);
    expect(events).toEqual([
      ['upload', 'PutObject', `${prefix}/a`],
      ['copy', 'HeadObject', `${prefix}/a`],
      ['copy', 'CopyObject', `${prefix}/b`],
      ['list', 'ListObjectsV2', prefix],
      ['deleteMany', 'DeleteObjects', undefined],
    ]);
  });

  it('a hook that throws: the request succeeds, and the first error is one process warning', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const thrower = new S3StorageBackend({
        bucket: server.bucket,
        region: server.region,
        endpoint: server.endpoint,
        credentials,
        onRequest: () => {
          throw new Error('hook bug');
        },
      });
      const key = uniqueKey('observe-throw');
      await thrower.upload({ key, body: Buffer.from('x'), contentType: OCTET });
      expect(await thrower.exists(key)).toBe(true);
      await thrower.delete(key);
      await sleep(100);
    } finally {
      process.off('warning', onWarning);
    }
    const ours = warnings.filter((w) => (w as Error & { code?: string }).code === 'STORAGE_S3_ON_REQUEST');
    expect(ours).toHaveLength(1);
    expect(ours[0].message).toMatch(/hook bug/);
  });

  it('createS3Backend takes onRequest too', async () => {
    const events: RequestEvent[] = [];
    const env = {
      STORAGE_S3_ENDPOINT: server.endpoint,
      STORAGE_S3_REGION: server.region,
      STORAGE_S3_BUCKET: server.bucket,
      STORAGE_S3_ACCESS_KEY_ID: credentials.accessKeyId,
      STORAGE_S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    };
    const fromEnv = createS3Backend(env, { onRequest: (e) => events.push(e) });
    expect(await fromEnv.exists(uniqueKey('observe-env'))).toBe(false);
    while (events.length === 0) await sleep(5);
    expect(events[0]).toMatchObject({ operation: 'exists', s3Operation: 'HeadObject', status: 404 });
  });

  it('onRequest that is not a function is a ConfigurationError naming onRequest', () => {
    expect(() => new S3StorageBackend({ bucket: server.bucket, onRequest: 'log' as never })).toThrow(ConfigurationError);
    try {
      new S3StorageBackend({ bucket: server.bucket, onRequest: 42 as never });
    } catch (err) {
      expect((err as ConfigurationError).details?.issues).toEqual([{ field: 'onRequest', message: 'must be a function, got number' }]);
    }
  });

  // Last: every event of this file, failures and aborts included.
  it('no event carries the secret key, the access key id, a signature or an Authorization header', () => {
    expect(everything.length).toBeGreaterThan(15);
    const text = JSON.stringify(everything);
    for (const secret of [credentials.secretAccessKey, credentials.accessKeyId, 'X-Amz-Signature', 'Authorization', 'AWS4-HMAC-SHA256']) {
      expect(text).not.toContain(secret);
    }
    // Only the documented fields, nothing else (no headers, no URL).
    const documented = ['attempt', 'bucket', 'durationMs', 'error', 'key', 'method', 'operation', 'requestId', 's3Operation', 'status'];
    expect([...new Set(everything.flatMap((e) => Object.keys(e)))].filter((f) => !documented.includes(f))).toEqual([]);
  });
});
