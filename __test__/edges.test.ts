// The edges the one-request-layer work closed: an endpoint with a path never reaches another
// bucket, a 404 from something that is not S3 is reported as seen, options that cannot be
// read are a ConfigurationError, and one rule for option names everywhere.
//
// The endpoint and the "not S3" server here are plain HTTP servers on 127.0.0.1 that record
// what reaches them: they stand for a reverse proxy in front of S3 and for a web server that
// is not S3. No S3 behaviour is mocked; what is checked is what the backend sends.
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError, createS3Backend, S3StorageBackend, StorageError } from '../lib/index.mjs';

interface Recorded {
  method: string;
  path: string;
  host: string;
}

/** An HTTP server that records requests and answers each with `status` (and an ETag on 200). */
async function recordingServer(status: number): Promise<{ server: Server; endpoint: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    requests.push({ method: req.method ?? '', path: (req.url ?? '').split('?')[0], host: req.headers.host ?? '' });
    req.resume();
    req.on('end', () => {
      res.writeHead(status, status === 200 ? { ETag: '"0123456789abcdef0123456789abcdef"', 'Content-Length': '0' } : { 'Content-Length': '0' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, endpoint: `http://127.0.0.1:${port}`, requests };
}

const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

async function rejection(p: Promise<unknown>): Promise<StorageError> {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  return err as StorageError;
}

describe('an endpoint with a path', () => {
  let ok: Awaited<ReturnType<typeof recordingServer>>;
  beforeAll(async () => {
    ok = await recordingServer(200);
  });
  afterAll(() => ok.server.close());

  it.each([
    ['/s3/', 'bkt'],
    ['/s3', 'bkt'],
    ['/base/deeper', 'edge-bucket'],
  ])('options endpoint "…%s", bucket %s: the upload goes to <path>/<bucket>/<key> and the signed URL names the same path', async (path, bucket) => {
    ok.requests.length = 0;
    const b = new S3StorageBackend({ bucket, endpoint: ok.endpoint + path, credentials, retry: { maxAttempts: 1 } });
    await b.upload({ key: 'p/a', body: Buffer.from('x'), contentType: 'text/plain' });
    const expected = `${path.replace(/\/$/, '')}/${bucket}/p/a`;
    expect(ok.requests).toEqual([{ method: 'PUT', path: expected, host: new URL(ok.endpoint).host }]);
    const { url } = await b.getSignedUrl('p/a');
    expect(new URL(url).pathname).toBe(expected);
    const put = await b.getSignedUrl('p/a', { method: 'PUT' });
    expect(new URL(put.url).pathname).toBe(expected);
  });

  it('STORAGE_S3_ENDPOINT=http://host/base with bucket edge-bucket: requests and signed URLs use /base/edge-bucket/…', async () => {
    ok.requests.length = 0;
    const b = createS3Backend({
      STORAGE_S3_ENDPOINT: `${ok.endpoint}/base`,
      STORAGE_S3_REGION: 'us-east-1',
      STORAGE_S3_BUCKET: 'edge-bucket',
      STORAGE_S3_ACCESS_KEY_ID: credentials.accessKeyId,
      STORAGE_S3_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    });
    await b.delete('a/b.txt');
    expect(ok.requests).toEqual([{ method: 'DELETE', path: '/base/edge-bucket/a/b.txt', host: new URL(ok.endpoint).host }]);
    const { url } = await b.getSignedUrl('a/b.txt');
    expect(new URL(url).pathname).toBe('/base/edge-bucket/a/b.txt');
    expect(b.describe().endpoint).toBe(`${ok.endpoint}/base/`);
  });

  it('virtual-hosted style keeps the path after the host: <bucket>.<host><path>/<key>', async () => {
    const b = new S3StorageBackend({ bucket: 'bkt', endpoint: 'http://localhost:9000/s3/', forcePathStyle: false, credentials });
    const { url } = await b.getSignedUrl('p/a');
    const u = new URL(url);
    expect([u.host, u.pathname]).toEqual(['bkt.localhost:9000', '/s3/p/a']);
  });
});

describe('a 404 with an empty body from something that is not S3', () => {
  let notS3: Awaited<ReturnType<typeof recordingServer>>;
  let b: S3StorageBackend;
  beforeAll(async () => {
    notS3 = await recordingServer(404);
    b = new S3StorageBackend({ bucket: 'files', endpoint: notS3.endpoint, credentials, retry: { maxAttempts: 1 } });
  });
  afterAll(() => notS3.server.close());

  it.each([
    ['exists', (x: S3StorageBackend) => x.exists('a.txt')],
    ['download', (x: S3StorageBackend) => x.download('a.txt')],
    ['head', (x: S3StorageBackend) => x.head('a.txt')],
  ])('%s: bucket_not_found with status 404, no S3 error code, and a message saying the endpoint may not be S3', async (_name, call) => {
    notS3.requests.length = 0;
    const err = await rejection(call(b));
    expect(err.details).toMatchObject({ reason: 'bucket_not_found', status: 404, bucket: 'files' });
    expect(err.details).not.toHaveProperty('code');
    expect(err.message).toContain('HEAD on the bucket answered 404');
    expect(err.message).toContain('may not be an S3 service');
    // What was seen: the call's own request, then one HEAD on the bucket.
    expect(notS3.requests.at(-1)).toMatchObject({ method: 'HEAD', path: '/files/' });
  });
});

describe('options that cannot be read', () => {
  const cyclic = (): Record<string, unknown> => {
    const multipart: Record<string, unknown> = { partSize: 5 * 1024 * 1024 };
    multipart.self = multipart;
    return { bucket: 'files', multipart };
  };
  const throwing = () =>
    Object.defineProperty({ region: 'us-east-1' }, 'bucket', {
      enumerable: true,
      get() {
        throw new Error('getter exploded');
      },
    });

  it.each([
    ['a cycle, constructor', () => new S3StorageBackend(cyclic() as never)],
    ['a throwing getter, constructor', () => new S3StorageBackend(throwing() as never)],
    ['a cycle, createS3Backend options', () => createS3Backend({}, cyclic() as never)],
    ['a throwing getter, createS3Backend options', () => createS3Backend({}, throwing() as never)],
    ['a throwing getter, createS3Backend env', () => createS3Backend(throwing() as never)],
  ])('%s: ConfigurationError naming what could not be read', (_name, make) => {
    let caught: unknown;
    try {
      make();
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(ConfigurationError);
    const issues = (caught as ConfigurationError).details?.issues ?? [];
    expect(issues.length).toBe(1);
    expect(issues[0].message).toMatch(/^cannot be read: /);
  });
});

describe('one rule for option names: unknown names are errors, and a name in the wrong place says where it belongs', () => {
  let rec: Awaited<ReturnType<typeof recordingServer>>;
  let b: S3StorageBackend;
  beforeAll(async () => {
    rec = await recordingServer(200);
    b = new S3StorageBackend({ bucket: 'files', endpoint: rec.endpoint, credentials });
  });
  afterAll(() => rec.server.close());

  it.each([
    ['onProgress in upload params', () => b.upload({ key: 'k', body: Buffer.from('x'), contentType: 'text/plain', onProgress: () => {} } as never), 'onProgress', /belongs in upload\(\)'s options argument, not in params/],
    ['signal in upload params', () => b.upload({ key: 'k', body: Buffer.from('x'), contentType: 'text/plain', signal: new AbortController().signal } as never), 'signal', /belongs in upload\(\)'s options argument/],
    ['a misspelt upload field', () => b.upload({ key: 'k', body: Buffer.from('x'), contentType: 'text/plain', contentLenght: 1 } as never), 'contentLenght', /unknown option/],
    ['contentType on a signed GET URL', () => b.getSignedUrl('k', { contentType: 'text/plain' }), 'contentType', /applies to PUT URLs only/],
    ['contentLength on a signed GET URL', () => b.getSignedUrl('k', { contentLength: 3 } as never), 'contentLength', /applies to PUT URLs only/],
    ['an unknown download option', () => b.download('k', { rnage: { start: 0 } } as never), 'rnage', /unknown option/],
    ['an unknown range field', () => b.download('k', { range: { start: 0, stop: 3 } } as never), 'range.stop', /unknown option/],
    ['concurrency 17 (the core’s limit)', () => b.download('k', { concurrency: 17 }), 'concurrency', /from 1 to 16/],
    ['an unknown list option', () => b.list({ prefx: 'a/' } as never), 'prefx', /unknown option/],
  ])('%s: invalid_argument naming the field, and no request reaches the server', async (_name, call, field, message) => {
    rec.requests.length = 0;
    const err = await rejection(call());
    expect(err.details).toMatchObject({ reason: 'invalid_argument', field });
    expect(err.message).toMatch(message);
    expect(err.statusCode).toBe(400);
    expect(rec.requests).toEqual([]);
  });
});
