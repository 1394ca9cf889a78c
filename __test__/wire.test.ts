// What the backend puts on the wire, observed through a proxy that records requests, and
// signed URLs used with plain fetch.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3BackendOptions } from '../index';
import { S3StorageBackend, StorageError } from '../lib/index.mjs';
import { startProxy, type ProxyRequest, type TestProxy } from './helpers/proxy.mjs';
import { localhostResolves, testServer, uniqueKey } from './helpers/s3';
import { startTestServer, type TestServer } from './helpers/servers';

/** Virtual-hosted style needs <bucket>.localhost to resolve here; skipped (visibly) where it does not. */
const vhost = await localhostResolves();

const s3 = testServer();
const credentials = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey };
const MiB = 1024 * 1024;

async function readAll(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Random bytes, so a misplaced or repeated part changes the hash. */
const payload = (size: number) => randomBytes(size);

/** `data` in `chunk`-sized pieces, as a stream without a known length. */
function chunked(data: Buffer, chunk = MiB): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
    })(),
  );
}

/** Checksum-related headers and query parameters of one recorded request. */
function checksumTraces(r: ProxyRequest): string[] {
  const found: string[] = [];
  for (const [name, value] of Object.entries(r.headers)) {
    if (/^x-amz-checksum-/.test(name) || name === 'x-amz-sdk-checksum-algorithm' || name === 'x-amz-trailer') {
      found.push(`header ${name}: ${value}`);
    }
    if (name === 'content-encoding' && /aws-chunked/i.test(value)) found.push(`header ${name}: ${value}`);
    if (name === 'x-amz-content-sha256' && /TRAILER/.test(value)) found.push(`header ${name}: ${value}`);
  }
  for (const name of new URL(r.url, 'http://x').searchParams.keys()) {
    if (/^x-amz-(checksum-|sdk-checksum-algorithm$)/i.test(name)) found.push(`query ${name}`);
  }
  return found;
}

function checksumParamsInUrl(url: string): string[] {
  const u = new URL(url);
  const found = [...u.searchParams.keys()].filter((k) => /^x-amz-(checksum|sdk-checksum)/i.test(k));
  const signed = u.searchParams.get('X-Amz-SignedHeaders') ?? '';
  found.push(...signed.split(';').filter((h) => /checksum|trailer/i.test(h)));
  return found;
}

describe('through a recording proxy (path style)', () => {
  let proxy: TestProxy;
  let backend: S3StorageBackend;
  let multipartBackend: S3StorageBackend;
  beforeAll(async () => {
    proxy = await startProxy({ host: '127.0.0.1', port: s3.port });
    const options: S3BackendOptions = { bucket: s3.bucket, region: s3.region, endpoint: proxy.endpoint, credentials };
    backend = new S3StorageBackend(options);
    multipartBackend = new S3StorageBackend({ ...options, multipart: { partSize: 5 * MiB, threshold: 5 * MiB } });
  });
  afterAll(() => proxy?.close());

  const requestsFor = (key: string) => proxy.requests.filter((r) => r.url.startsWith(`/${s3.bucket}/${key}`));

  it('sends no request checksum on PutObject from a Buffer', async () => {
    const key = uniqueKey('wire-buffer');
    const body = payload(64 * 1024);
    await backend.upload({ key, body, contentType: 'application/octet-stream' });

    const puts = requestsFor(key).filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(1);
    expect(puts[0].headers['content-length']).toBe(String(body.length));
    expect(puts.flatMap(checksumTraces)).toEqual([]);
    expect(sha256(await readAll(await backend.download(key)))).toBe(sha256(body));
  });

  it('sends no request checksum on PutObject from a stream with contentLength', async () => {
    const key = uniqueKey('wire-stream');
    const body = payload(300 * 1024);
    await backend.upload({ key, body: chunked(body, 64 * 1024), contentLength: body.length, contentType: 'text/plain' });

    const puts = requestsFor(key).filter((r) => r.method === 'PUT');
    expect(puts).toHaveLength(1);
    expect(puts[0].headers['content-length']).toBe(String(body.length));
    expect(puts.flatMap(checksumTraces)).toEqual([]);
    expect(sha256(await readAll(await backend.download(key)))).toBe(sha256(body));
  });

  // direct.rs: with static credentials, HeadObject, GetObject, PutObject and DeleteObject are
  // sent without the SDK's orchestrator, which puts its invocation id on every request it sends.
  it('sends HeadObject, GetObject, PutObject and DeleteObject without the SDK orchestrator (no amz-sdk-invocation-id), multipart requests through it', async () => {
    const key = uniqueKey('wire-direct');
    const body = payload(4096);
    await backend.upload({ key, body, contentType: 'application/octet-stream' });
    expect(await backend.exists(key)).toBe(true);
    expect(sha256(await readAll(await backend.download(key)))).toBe(sha256(body));
    await backend.delete(key);
    const mkey = uniqueKey('wire-direct-multipart');
    await multipartBackend.upload({ key: mkey, body: chunked(payload(6 * MiB)), contentType: 'application/octet-stream' });

    const small = requestsFor(key);
    expect(small.map((r) => r.method).sort()).toEqual(['DELETE', 'GET', 'HEAD', 'PUT']);
    expect(small.filter((r) => 'amz-sdk-invocation-id' in r.headers)).toEqual([]);
    // Signed as the SDK signs S3 requests (the body streams from its chunks: UNSIGNED-PAYLOAD,
    // as the next test shows the SDK sending), in the Authorization header.
    const put = small.find((r) => r.method === 'PUT')!;
    expect(put.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    expect(small.find((r) => r.method === 'HEAD')!.headers['x-amz-content-sha256']).toBe(sha256(Buffer.alloc(0)));
    expect(put.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=.*SignedHeaders=.*x-amz-content-sha256.*Signature=[0-9a-f]{64}$/);
    const multipart = requestsFor(mkey).filter((r) => r.method === 'POST');
    expect(multipart).toHaveLength(2);
    expect(multipart.every((r) => 'amz-sdk-invocation-id' in r.headers)).toBe(true);
  });

  it('sends the same requests through the SDK when the credentials come from the default chain (environment), and they succeed', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey;
    try {
      const chained = new S3StorageBackend({ bucket: s3.bucket, region: s3.region, endpoint: proxy.endpoint });
      const key = uniqueKey('wire-chain');
      const body = payload(4096);
      await chained.upload({ key, body, contentType: 'application/octet-stream' });
      expect(await chained.exists(key)).toBe(true);
      expect(sha256(await readAll(await chained.download(key)))).toBe(sha256(body));
      await chained.delete(key);
      expect(await chained.exists(key)).toBe(false);

      const sent = requestsFor(key);
      expect(sent.map((r) => r.method).sort()).toEqual(['DELETE', 'GET', 'HEAD', 'HEAD', 'PUT']);
      expect(sent.every((r) => 'amz-sdk-invocation-id' in r.headers)).toBe(true);
      expect(sent.find((r) => r.method === 'PUT')!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
      expect(sent.find((r) => r.method === 'HEAD')!.headers['x-amz-content-sha256']).toBe(sha256(Buffer.alloc(0)));
    } finally {
      for (const [name, value] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('sends no request checksum on CreateMultipartUpload, UploadPart and CompleteMultipartUpload', async () => {
    const key = uniqueKey('wire-multipart');
    const body = payload(12 * MiB);
    await multipartBackend.upload({ key, body: chunked(body), contentType: 'application/octet-stream' });

    const recorded = requestsFor(key);
    const create = recorded.filter((r) => r.method === 'POST' && new URL(r.url, 'http://x').searchParams.has('uploads'));
    const parts = recorded.filter((r) => r.method === 'PUT' && /[?&]partNumber=\d+/.test(r.url));
    const complete = recorded.filter((r) => r.method === 'POST' && /[?&]uploadId=/.test(r.url));
    expect(create).toHaveLength(1);
    expect(parts.map((r) => new URL(r.url, 'http://x').searchParams.get('partNumber')).sort()).toEqual(['1', '2', '3']);
    expect(complete).toHaveLength(1);
    expect(recorded.flatMap(checksumTraces)).toEqual([]);

    const down = await backend.download(key);
    expect(down.contentLength).toBe(body.length);
    expect(sha256(await readAll(down))).toBe(sha256(body));
  });

  it('puts no checksum parameter in a presigned PUT URL', async () => {
    const key = uniqueKey('wire-presign');
    const plain = await backend.getSignedUrl(key, { method: 'PUT' });
    const typed = await backend.getSignedUrl(key, { method: 'PUT', contentType: 'image/png' });
    for (const { url } of [plain, typed]) {
      expect(new URL(url).searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
      expect(checksumParamsInUrl(url)).toEqual([]);
    }
    expect(new URL(typed.url).searchParams.get('X-Amz-SignedHeaders')).toBe('content-type;host');

    // And the URL is usable through the proxy it was signed for.
    proxy.clearLog();
    const res = await fetch(typed.url, { method: 'PUT', body: 'png bytes', headers: { 'Content-Type': 'image/png' } });
    expect(res.status).toBe(200);
    expect(proxy.requests.map((r) => r.method)).toEqual(['PUT']);
    expect((await readAll(await backend.download(key))).toString()).toBe('png bytes');
  });

  it('uses path style by default with an endpoint: /<bucket>/<key> on the endpoint host', async () => {
    const key = uniqueKey('wire-path');
    expect(backend.describe().forcePathStyle).toBe(true);
    await backend.upload({ key, body: Buffer.from('path style'), contentType: 'text/plain' });
    expect(await backend.exists(key)).toBe(true);
    expect((await readAll(await backend.download(key))).toString()).toBe('path style');
    await backend.delete(key);
    expect(await backend.exists(key)).toBe(false);

    const recorded = requestsFor(key);
    expect(recorded.map((r) => r.method)).toEqual(['PUT', 'HEAD', 'GET', 'DELETE', 'HEAD']);
    for (const r of recorded) {
      expect(r.url.startsWith(`/${s3.bucket}/${key}`)).toBe(true);
      expect(r.headers.host).toBe(`127.0.0.1:${proxy.port}`);
    }

    const signed = new URL((await backend.getSignedUrl(key)).url);
    expect(signed.host).toBe(`127.0.0.1:${proxy.port}`);
    expect(signed.pathname).toBe(`/${s3.bucket}/${key}`);
  });
});

// Skipped (visibly) where <bucket>.localhost does not resolve: see localhostResolves().
describe.skipIf(!vhost)('virtual-hosted style (forcePathStyle: false)', () => {
  const target = { host: '127.0.0.1', port: 0 };
  let proxy: TestProxy;
  let server: TestServer;
  let backend: S3StorageBackend;
  beforeAll(async () => {
    // The client signs Host <bucket>.localhost:<proxy port>, so the server must know that domain.
    proxy = await startProxy(target);
    server = await startTestServer({ domain: ['localhost', `localhost:${proxy.port}`] });
    target.port = server.port;
    backend = new S3StorageBackend({
      bucket: server.bucket,
      region: server.region,
      endpoint: `http://localhost:${proxy.port}`,
      forcePathStyle: false,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    });
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.stop();
  });

  it('sends Host <bucket>.localhost:<port> and keeps the bucket out of the path, for a full round trip', async () => {
    const key = uniqueKey('vhost');
    const body = payload(200 * 1024);
    expect(backend.describe().forcePathStyle).toBe(false);
    proxy.clearLog();
    await backend.upload({ key, body, contentType: 'application/x-test' });
    expect(await backend.exists(key)).toBe(true);
    const down = await backend.download(key);
    expect(down.contentType).toBe('application/x-test');
    expect(sha256(await readAll(down))).toBe(sha256(body));
    await backend.delete(key);
    expect(await backend.exists(key)).toBe(false);

    expect(proxy.requests.map((r) => [r.method, r.url.split('?')[0]])).toEqual([
      ['PUT', `/${key}`],
      ['HEAD', `/${key}`],
      ['GET', `/${key}`],
      ['DELETE', `/${key}`],
      ['HEAD', `/${key}`],
    ]);
    for (const r of proxy.requests) {
      expect(r.headers.host).toBe(`${server.bucket}.localhost:${proxy.port}`);
      expect(r.url).not.toContain(server.bucket);
    }
  });

  it('signs GET URLs that plain fetch can use', async () => {
    const key = uniqueKey('vhost-signed');
    await backend.upload({ key, body: Buffer.from('virtual host'), contentType: 'text/plain' });
    const { url } = await backend.getSignedUrl(key);
    const u = new URL(url);
    expect(u.host).toBe(`${server.bucket}.localhost:${proxy.port}`);
    expect(u.pathname).toBe(`/${key}`);

    proxy.clearLog();
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('virtual host');
    expect(proxy.requests.map((r) => [r.method, r.headers.host])).toEqual([['GET', `${server.bucket}.localhost:${proxy.port}`]]);
  });
});

describe('signed URLs with plain fetch', () => {
  const backend = new S3StorageBackend({ bucket: s3.bucket, region: s3.region, endpoint: s3.endpoint, credentials });

  const names = [
    'with space.txt',
    '(parens) and [brackets].txt',
    'a+b=c&d.txt',
    'hash#tag.txt',
    'question?mark.txt',
    'percent%20literal.txt',
    'unicodé 文件 🎉.txt',
    'deep/a/b/c/d/e/f/g/h/file.txt',
    "mixed/it's ~*!$@,;:.txt",
  ];

  it.each(names)('GET and PUT work for key %j', async (name) => {
    const key = `${uniqueKey('signed')}/${name}`;
    const original = Buffer.from(`original of ${name}\n`);
    await backend.upload({ key, body: original, contentType: 'text/plain' });

    const get = await backend.getSignedUrl(key);
    const got = await fetch(get.url);
    expect(got.status).toBe(200);
    expect(Buffer.from(await got.arrayBuffer()).equals(original)).toBe(true);

    const replacement = Buffer.from(`replacement of ${name}`);
    const put = await backend.getSignedUrl(key, { method: 'PUT', contentType: 'application/x-replaced' });
    const res = await fetch(put.url, { method: 'PUT', body: replacement, headers: { 'Content-Type': 'application/x-replaced' } });
    expect(res.status, await res.text()).toBe(200);

    const down = await backend.download(key);
    expect(down.contentType).toBe('application/x-replaced');
    expect((await readAll(down)).equals(replacement)).toBe(true);
  });

  // moto does not verify signatures (presigned URLs included): it takes any Content-Type and
  // any expired URL.
  const checksSignatures = s3.server !== 'moto';

  it.skipIf(!checksSignatures)('binds the signed Content-Type: another one is refused with 403 and nothing changes', async () => {
    const key = uniqueKey('signed-ct');
    await backend.upload({ key, body: Buffer.from('kept'), contentType: 'text/plain' });
    const { url } = await backend.getSignedUrl(key, { method: 'PUT', contentType: 'image/jpeg' });

    const wrong = await fetch(url, { method: 'PUT', body: 'not a jpeg', headers: { 'Content-Type': 'text/html' } });
    expect(wrong.status).toBe(403);
    const down = await backend.download(key);
    expect(down.contentType).toBe('text/plain');
    expect((await readAll(down)).toString()).toBe('kept');
  });

  it.skipIf(!checksSignatures)('refuses an expired URL', async () => {
    const key = uniqueKey('signed-expired');
    await backend.upload({ key, body: Buffer.from('soon gone'), contentType: 'text/plain' });
    // X-Amz-Date is in whole seconds and servers compare whole seconds, so the moment a URL
    // stops working depends on when in a second it was signed. Sign just after a second
    // begins, with expiresIn 2: the fresh fetch is then well inside the window, and the wait
    // below well past it, whatever the time of day.
    await sleep(1000 - (Date.now() % 1000) + 20);
    const get = await backend.getSignedUrl(key, { expiresIn: 2 });
    const put = await backend.getSignedUrl(key, { method: 'PUT', expiresIn: 2 });
    expect((await fetch(get.url)).status).toBe(200); // valid while fresh
    // Servers compare whole seconds: wait until more than a second after the later expiry.
    await sleep(Math.max(Date.parse(get.expiresAt), Date.parse(put.expiresAt)) + 1100 - Date.now());
    // S3 answers 403 AccessDenied ("Request has expired"); Garage 400 InvalidRequest
    // ("Bad request: Date is too old").
    const refused = s3.server === 'garage' ? 400 : 403;
    const expiredGet = await fetch(get.url);
    expect(expiredGet.status).toBe(refused);
    const expiredPut = await fetch(put.url, { method: 'PUT', body: 'overwritten' });
    expect(expiredPut.status).toBe(refused);
    expect((await readAll(await backend.download(key))).toString()).toBe('soon gone');
  });

  it('answers 404 to a GET URL for a missing key', async () => {
    const { url } = await backend.getSignedUrl(uniqueKey('signed-missing'));
    const res = await fetch(url);
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('NoSuchKey');
  });

  it('reports expiresAt as ISO 8601, about now + expiresIn', async () => {
    for (const expiresIn of [1, 60, 3600, 604800]) {
      const before = Date.now();
      const signed = await backend.getSignedUrl('any/key.txt', { expiresIn });
      const after = Date.now();
      expect(signed.expiresAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/);
      const at = Date.parse(signed.expiresAt);
      expect(at).toBeGreaterThanOrEqual(before + expiresIn * 1000 - 3000);
      expect(at).toBeLessThanOrEqual(after + expiresIn * 1000 + 3000);
      expect(new URL(signed.url).searchParams.get('X-Amz-Expires')).toBe(String(expiresIn));
    }
  });

  // X-Amz-Date has whole seconds: an expiresAt with the signing time's milliseconds would
  // promise up to 999 ms that the URL does not have.
  it('reports an expiresAt no later than the moment the URL stops working', async () => {
    for (let i = 0; i < 3; i++) {
      const signed = await backend.getSignedUrl('any/key.txt', { expiresIn: 60 });
      const params = new URL(signed.url).searchParams;
      const d = params.get('X-Amz-Date') ?? '';
      const signedAt = Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +d.slice(9, 11), +d.slice(11, 13), +d.slice(13, 15));
      const validUntil = signedAt + Number(params.get('X-Amz-Expires')) * 1000;
      expect(Date.parse(signed.expiresAt), `${signed.expiresAt} vs X-Amz-Date ${d}`).toBeLessThanOrEqual(validUntil);
      await sleep(137); // another sub-second offset
    }
  });

  it('expires after 900 s by default, or after the backend option signedUrlExpiration', async () => {
    const byDefault = await backend.getSignedUrl('any/key.txt');
    expect(new URL(byDefault.url).searchParams.get('X-Amz-Expires')).toBe('900');
    expect(Math.abs(Date.parse(byDefault.expiresAt) - (Date.now() + 900_000))).toBeLessThan(5000);
    expect(backend.describe().signedUrlExpiration).toBe(900);

    const custom = new S3StorageBackend({ bucket: s3.bucket, region: s3.region, endpoint: s3.endpoint, credentials, signedUrlExpiration: 120 });
    const put = await custom.getSignedUrl('any/key.txt', { method: 'PUT' });
    expect(new URL(put.url).searchParams.get('X-Amz-Expires')).toBe('120');
    expect(Math.abs(Date.parse(put.expiresAt) - (Date.now() + 120_000))).toBeLessThan(5000);
    // an explicit expiresIn still wins
    const explicit = await custom.getSignedUrl('any/key.txt', { expiresIn: 30 });
    expect(new URL(explicit.url).searchParams.get('X-Amz-Expires')).toBe('30');
  });

  it.each([0, -1, 1.5, 604801, '60', Number.NaN, Number.POSITIVE_INFINITY])(
    'rejects expiresIn %o with invalid_argument',
    async (expiresIn) => {
      const err = await backend.getSignedUrl('any/key.txt', { expiresIn: expiresIn as number }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageError);
      expect(err).toMatchObject({ code: 'STORAGE_ERROR', statusCode: 400, reason: 'invalid_argument' });
      expect((err as StorageError).details).toMatchObject({ reason: 'invalid_argument', operation: 'getSignedUrl', field: 'expiresIn' });
    },
  );

  it.each(['DELETE', 'get', 'HEAD', ''])('rejects method %j with invalid_argument', async (method) => {
    const err = await backend.getSignedUrl('any/key.txt', { method: method as 'GET' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err).toMatchObject({ code: 'STORAGE_ERROR', statusCode: 400, reason: 'invalid_argument' });
    expect((err as StorageError).details).toMatchObject({ operation: 'getSignedUrl', field: 'method' });
  });
});

// The SDK's stalled-stream protection allows DEFAULT_GRACE_PERIOD (20 s in
// aws-smithy-runtime-api 1.20; older SDKs: 5 s) of zero throughput, then fails the request.
// The pause must outlast it, or this test cannot tell whether upload protection is off
// (checked: with upload protection on, a 22 s pause fails the sized upload).
describe('a source that pauses longer than the SDK stalled-stream grace period', () => {
  const PAUSE_MS = 23_000;
  const backend = new S3StorageBackend({
    bucket: s3.bucket,
    region: s3.region,
    endpoint: s3.endpoint,
    credentials,
    multipart: { partSize: 5 * MiB, threshold: 5 * MiB },
  });

  /** Yields `before`, pauses, then yields `after`. */
  function pausing(before: Buffer[], after: Buffer[]): Readable {
    return Readable.from(
      (async function* () {
        yield* before;
        await sleep(PAUSE_MS);
        yield* after;
      })(),
    );
  }

  it('still uploads, with and without contentLength', async () => {
    // With a length above a part: one streaming PutObject whose body goes quiet mid-request.
    const sized = payload(5 * MiB + 256 * 1024);
    const sizedKey = uniqueKey('slow-sized');
    // Without a length and above one part: multipart, with the pause between parts.
    const unsized = payload(6 * MiB + 12345);
    const unsizedKey = uniqueKey('slow-unsized');

    const [a, b] = await Promise.all([
      backend.upload({
        key: sizedKey,
        body: pausing([sized.subarray(0, 1000)], [sized.subarray(1000)]),
        contentLength: sized.length,
        contentType: 'application/octet-stream',
      }),
      backend.upload({
        key: unsizedKey,
        body: pausing([unsized.subarray(0, 5 * MiB + 1)], [unsized.subarray(5 * MiB + 1)]),
        contentType: 'application/octet-stream',
      }),
    ]);
    expect(a.key).toBe(sizedKey);
    expect(b.key).toBe(unsizedKey);
    expect(sha256(await readAll(await backend.download(sizedKey)))).toBe(sha256(sized));
    expect(sha256(await readAll(await backend.download(unsizedKey)))).toBe(sha256(unsized));
  });
});

describe('a connection that stops accepting the request body', () => {
  // The proxy stops reading each request after 1 MiB, as a stalled service or network would.
  // The backend's no-progress watchdog (timeouts.requestMs) must turn that into an error.
  it.each([
    // 12 MiB with contentLength, under the default 64 MiB threshold: one streaming PutObject.
    { kind: 'a stream with contentLength (one streaming PutObject)', sized: true, multipart: undefined },
    { kind: 'a stream without length (multipart)', sized: false, multipart: { partSize: 5 * MiB } },
    { kind: 'a Buffer', sized: false, multipart: undefined },
  ])(
    'fails an upload of $kind with reason unavailable',
    async ({ kind, sized, multipart }) => {
      const proxy = await startProxy({ host: '127.0.0.1', port: s3.port });
      proxy.stallRequest(MiB);
      try {
        const backend = new S3StorageBackend({
          bucket: s3.bucket,
          region: s3.region,
          endpoint: proxy.endpoint,
          credentials,
          timeouts: { requestMs: 1000 },
          retry: { maxAttempts: 1 },
          multipart,
        });
        const data = payload(12 * MiB);
        const key = uniqueKey('held');
        const body = kind === 'a Buffer' ? data : chunked(data, 256 * 1024);
        const err = await backend
          .upload({ key, body, contentType: 'application/octet-stream', contentLength: sized ? data.length : undefined })
          .catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageError);
        expect((err as StorageError).details).toMatchObject({ reason: 'unavailable', operation: 'upload', key });
      } finally {
        await proxy.close();
      }
    },
    // A hang guard only (the failure is expected after about 1 s); the default would spend
    // a minute on a hung upload.
    10_000,
  );
});
