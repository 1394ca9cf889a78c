// Faults on the caller's side: wrong credentials or a missing bucket (the right reason, and
// the secret nowhere), and every invalid argument of the contract, refused before any
// request. Shared helpers and conventions: helpers/faults.ts.
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileNotFoundError, S3StorageBackend } from '../lib/index.mjs';
import { backendAt, expectNoLeftovers, expectTyped, faultFigures, KIND, OCTET, rejection, startProxied, stopProxied, streamOf, type Proxied, type Server } from './helpers/faults';
import { uniqueKey } from './helpers/s3';
import { startTestServer } from './helpers/servers';
import { generatedSource, KiB, MiB, randomBuffer, sleep } from './helpers/streams';

const figures = faultFigures();

describe('wrong credentials, missing bucket: the right reason, and the secret nowhere', () => {
  let server: Server;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server?.stop());

  /** Every place a secret could surface when an error is logged, returned or serialised. */
  const renderings = (err: any) =>
    [
      err.message,
      err.stack,
      inspect(err, { depth: 10, showHidden: true }),
      JSON.stringify(err),
      JSON.stringify(err.details),
      String(err),
      err.cause === undefined ? '' : inspect(err.cause, { depth: 10, showHidden: true }),
    ].join('\n');

  const callsOf = (b: S3StorageBackend, key: string): [string, () => Promise<unknown>][] => [
    ['exists', () => b.exists(key)],
    ['download', () => b.download(key)],
    ['delete', () => b.delete(key)],
    ['upload', () => b.upload({ key, body: randomBuffer(KiB), contentType: OCTET })],
    ['upload', () => b.upload({ key, body: streamOf([randomBuffer(KiB)]), contentType: OCTET, contentLength: KiB })],
    ['upload', () => b.upload({ key, body: generatedSource(6 * MiB).stream, contentType: OCTET })],
  ];

  // moto does not verify signatures or access keys: any credentials are accepted there.
  const checksCredentials = KIND !== 'moto';
  // Garage answers a bad signature and an unknown access key alike with 403 AccessDenied
  // ("Forbidden: Invalid signature" / "Forbidden: No such key: ..."), where S3 says
  // SignatureDoesNotMatch / InvalidAccessKeyId: the backend can only report access_denied.
  const authReason = KIND === 'garage' ? 'access_denied' : 'auth';
  const badSignatureCode = KIND === 'garage' ? 'AccessDenied' : 'SignatureDoesNotMatch';

  it.skipIf(!checksCredentials)('wrong secret: auth (SignatureDoesNotMatch) on every method; the secret appears nowhere', async () => {
    const SECRET = `wrong-secret-${randomBuffer(8).toString('hex')}-SENTINEL`;
    const b = backendAt(server.endpoint, { ...server, secretAccessKey: SECRET });
    const key = uniqueKey('wrong-secret');
    for (const [operation, call] of callsOf(b, key)) {
      const err = await rejection(call());
      expectTyped(err, authReason, operation, key);
      expect(err.details?.code).toBe(badSignatureCode);
      expect(renderings(err)).not.toContain(SECRET);
      expect(renderings(err)).not.toContain(server.secretAccessKey);
    }
    expect(inspect(b, { depth: 10, showHidden: true }) + JSON.stringify(b) + JSON.stringify(b.describe())).not.toContain(SECRET);
    const { url } = await b.getSignedUrl(key);
    expect(url).not.toContain(SECRET);
    expect(await new S3StorageBackend({ bucket: server.bucket, region: server.region, endpoint: server.endpoint, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } }).exists(key)).toBe(false);
    await expectNoLeftovers(server);
  });

  it.skipIf(!checksCredentials)('wrong access key id: auth on every method; neither secret appears', async () => {
    const b = backendAt(server.endpoint, { ...server, accessKeyId: 'AKIANOSUCHKEY0000000' });
    const key = uniqueKey('wrong-key');
    for (const [operation, call] of callsOf(b, key)) {
      const err = await rejection(call());
      expectTyped(err, authReason, operation, key);
      expect(renderings(err)).not.toContain(server.secretAccessKey);
    }
    await expectNoLeftovers(server);
  });

  it('missing bucket: bucket_not_found for exists, download and delete', async () => {
    const b = backendAt(server.endpoint, { ...server, bucket: 'no-such-bucket-faults' });
    const key = uniqueKey('no-bucket');
    for (const [operation, call] of callsOf(b, key).slice(0, 3)) {
      const err = await rejection(call());
      expectTyped(err, 'bucket_not_found', operation, key);
      expect(err.details?.bucket).toBe('no-such-bucket-faults');
      expect(err).not.toBeInstanceOf(FileNotFoundError);
      expect(renderings(err)).not.toContain(server.secretAccessKey);
    }
  });
});

// ---- bad input ------------------------------------------------------------------------

describe('bad input is refused before any request', () => {
  let { server, proxy, b } = {} as Proxied;
  beforeAll(async () => {
    ({ server, proxy, b } = await startProxied());
  });
  afterAll(() => stopProxied(server, proxy));

  const K = 'bad-input/key';
  const up = (over: Record<string, unknown>, opts?: unknown) =>
    (b.upload as (p: unknown, o?: unknown) => Promise<unknown>)({ key: K, body: Buffer.from('x'), contentType: 'text/plain', ...over }, opts);
  const stream = () => Readable.from([Buffer.from('abc')]);
  const anyB = () => b as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
  const long = 'k'.repeat(1025);
  const longUtf8 = 'é'.repeat(513); // 513 chars, 1026 bytes

  const keyCases: [string, unknown][] = [
    ['empty key', ''],
    ['key of 1025 bytes', long],
    ['key of 513 chars but 1026 UTF-8 bytes', longUtf8],
    ['key that is a number', 42],
    ['key undefined', undefined],
    ['key null', null],
    ['key that is an object', { toString: () => 'k' }],
    ['key with a newline', 'a\nb'],
    ['key with a lone surrogate', 'a\uD800b'],
  ];
  const methods: [string, (key: unknown) => Promise<unknown>][] = [
    ['upload', (key) => up({ key })],
    ['download', (key) => anyB().download(key)],
    ['delete', (key) => anyB().delete(key)],
    ['exists', (key) => anyB().exists(key)],
    ['getSignedUrl', (key) => anyB().getSignedUrl(key)],
  ];

  const table: [string, () => Promise<unknown>, string, string][] = [
    ...keyCases.flatMap(([name, key]) => methods.map(([op, call]) => [`${op}: ${name}`, () => call(key), 'key', op] as [string, () => Promise<unknown>, string, string])),
    ['upload: params null', () => (b.upload as (p: unknown) => Promise<unknown>)(null), 'params', 'upload'],
    ['upload: params a string', () => (b.upload as (p: unknown) => Promise<unknown>)('k'), 'params', 'upload'],
    ['upload: body undefined', () => up({ body: undefined }), 'body', 'upload'],
    ['upload: body null', () => up({ body: null }), 'body', 'upload'],
    ['upload: body a string', () => up({ body: 'text' }), 'body', 'upload'],
    ['upload: body a number', () => up({ body: 42 }), 'body', 'upload'],
    ['upload: body a plain object', () => up({ body: { length: 1 } }), 'body', 'upload'],
    ['upload: body an array', () => up({ body: [1, 2, 3] }), 'body', 'upload'],
    ['upload: body an ArrayBuffer', () => up({ body: new ArrayBuffer(8) }), 'body', 'upload'],
    ['upload: empty contentType', () => up({ contentType: '' }), 'contentType', 'upload'],
    ['upload: blank contentType', () => up({ contentType: '   ' }), 'contentType', 'upload'],
    ['upload: contentType with CR LF (header injection)', () => up({ contentType: 'text/plain\r\nx-amz-acl: public-read' }), 'contentType', 'upload'],
    ['upload: contentType with LF', () => up({ contentType: 'text/plain\n' }), 'contentType', 'upload'],
    ['upload: contentType not ASCII', () => up({ contentType: 'text/plaïn' }), 'contentType', 'upload'],
    ['upload: contentType missing', () => up({ contentType: undefined }), 'contentType', 'upload'],
    ['upload: contentType a number', () => up({ contentType: 42 }), 'contentType', 'upload'],
    ['upload: metadata value a number', () => up({ metadata: { a: 1 } }), 'metadata.a', 'upload'],
    ['upload: metadata value null', () => up({ metadata: { a: null } }), 'metadata.a', 'upload'],
    ['upload: metadata value undefined', () => up({ metadata: { a: undefined } }), 'metadata.a', 'upload'],
    ['upload: metadata value with CR LF', () => up({ metadata: { a: 'x\r\ny: z' } }), 'metadata.a', 'upload'],
    ['upload: metadata value not ASCII', () => up({ metadata: { a: 'é' } }), 'metadata.a', 'upload'],
    ['upload: metadata name with a space', () => up({ metadata: { 'a b': 'x' } }), 'metadata.a b', 'upload'],
    ['upload: metadata a string', () => up({ metadata: 'a=b' }), 'metadata', 'upload'],
    ['upload: metadata an array', () => up({ metadata: ['a'] }), 'metadata', 'upload'],
    ['upload: metadata over 2 KB', () => up({ metadata: { a: 'x'.repeat(2100) } }), 'metadata', 'upload'],
    ['upload: contentLength -1 (stream)', () => up({ body: stream(), contentLength: -1 }), 'contentLength', 'upload'],
    ['upload: contentLength 1.5 (stream)', () => up({ body: stream(), contentLength: 1.5 }), 'contentLength', 'upload'],
    ['upload: contentLength NaN (stream)', () => up({ body: stream(), contentLength: NaN }), 'contentLength', 'upload'],
    ['upload: contentLength Infinity (stream)', () => up({ body: stream(), contentLength: Infinity }), 'contentLength', 'upload'],
    ['upload: contentLength above 5 TiB (stream)', () => up({ body: stream(), contentLength: 6 * 1024 ** 4 }), 'contentLength', 'upload'],
    ['upload: contentLength a string', () => up({ body: stream(), contentLength: '3' }), 'contentLength', 'upload'],
    ['upload: contentLength -1 (Buffer)', () => up({ contentLength: -1 }), 'contentLength', 'upload'],
    ['upload: contentLength not the Buffer length', () => up({ contentLength: 2 }), 'contentLength', 'upload'],
    ['getSignedUrl: expiresIn 0', () => b.getSignedUrl(K, { expiresIn: 0 }), 'expiresIn', 'getSignedUrl'],
    ['getSignedUrl: expiresIn -60', () => b.getSignedUrl(K, { expiresIn: -60 }), 'expiresIn', 'getSignedUrl'],
    ['getSignedUrl: expiresIn 1.5', () => b.getSignedUrl(K, { expiresIn: 1.5 }), 'expiresIn', 'getSignedUrl'],
    ['getSignedUrl: expiresIn 604801', () => b.getSignedUrl(K, { expiresIn: 604_801 }), 'expiresIn', 'getSignedUrl'],
    ['getSignedUrl: expiresIn NaN', () => b.getSignedUrl(K, { expiresIn: NaN }), 'expiresIn', 'getSignedUrl'],
    ['getSignedUrl: expiresIn Infinity', () => b.getSignedUrl(K, { expiresIn: Infinity }), 'expiresIn', 'getSignedUrl'],
    ['getSignedUrl: expiresIn a string', () => anyB().getSignedUrl(K, { expiresIn: '60' }), 'expiresIn', 'getSignedUrl'],
    ['getSignedUrl: method POST', () => anyB().getSignedUrl(K, { method: 'POST' }), 'method', 'getSignedUrl'],
    ['getSignedUrl: method get (lower case)', () => anyB().getSignedUrl(K, { method: 'get' }), 'method', 'getSignedUrl'],
    ['getSignedUrl: method empty', () => anyB().getSignedUrl(K, { method: '' }), 'method', 'getSignedUrl'],
    ['getSignedUrl: method a number', () => anyB().getSignedUrl(K, { method: 42 }), 'method', 'getSignedUrl'],
    ['getSignedUrl: contentType with CR LF', () => b.getSignedUrl(K, { method: 'PUT', contentType: 'a\r\nb: c' }), 'contentType', 'getSignedUrl'],
    ['getSignedUrl: contentType empty', () => b.getSignedUrl(K, { method: 'PUT', contentType: '' }), 'contentType', 'getSignedUrl'],
    ['getSignedUrl: options a string', () => anyB().getSignedUrl(K, 'GET'), 'options', 'getSignedUrl'],
    ['getSignedUrl: signal a plain object', () => anyB().getSignedUrl(K, { signal: {} }), 'signal', 'getSignedUrl'],
    ...(
      [
        ['upload', (o: unknown) => up({}, o)],
        ['download', (o: unknown) => anyB().download(K, o)],
        ['delete', (o: unknown) => anyB().delete(K, o)],
        ['exists', (o: unknown) => anyB().exists(K, o)],
      ] as [string, (o: unknown) => Promise<unknown>][]
    ).flatMap(([op, call]) => [
      [`${op}: signal a plain object`, () => call({ signal: {} }), 'signal', op],
      [`${op}: signal a string`, () => call({ signal: 'abort' }), 'signal', op],
      [`${op}: signal an AbortController`, () => call({ signal: new AbortController() }), 'signal', op],
      [`${op}: options a string`, () => call('fast'), 'options', op],
    ] as [string, () => Promise<unknown>, string, string][]),
  ];

  it.each(table)('%s', async (_name, call, field, operation) => {
    const before = proxy.totalConnections();
    let thrownSync: unknown;
    let p: Promise<unknown> | undefined;
    try {
      p = call();
    } catch (e) {
      thrownSync = e; // a synchronous throw would break `await b.x().catch()` callers
    }
    expect(thrownSync).toBeUndefined();
    const err = await rejection(p!);
    expectTyped(err, 'invalid_argument', operation);
    expect(err.details?.field).toBe(field);
    await sleep(5);
    expect(proxy.totalConnections()).toBe(before);
  });

  it(`no request reached the server in the whole table (${table.length} cases)`, () => {
    expect(proxy.totalConnections()).toBe(0);
    expect(proxy.requests).toEqual([]);
    figures.badInputCases = table.length;
  });
});
