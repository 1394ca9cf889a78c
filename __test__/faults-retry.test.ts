// Faults: error answers (503 SlowDown, 500, an HTML 502, bytes that are not HTTP, 403) and
// what is retried, and the SDK's retry quota under a sustained outage. Shared helpers and
// conventions: helpers/faults.ts.
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3StorageBackend, StorageError } from '../lib/index.mjs';
import { backendAt, expectNoLeftovers, expectTyped, faultFigures, fp, holds, MULTIPART, OCTET, rejection, RETRY, startProxied, TIMEOUTS, stopProxied, streamOf, target, timed, type Proxied, type Server } from './helpers/faults';
import { startProxy, type TestProxy } from './helpers/proxy.mjs';
import { uniqueKey } from './helpers/s3';
import { generatedSource, hashStream, KiB, MiB, randomBuffer, readAll, sleep } from './helpers/streams';

const figures = faultFigures();

describe('503 SlowDown', () => {
  let { server, proxy, b, direct } = {} as Proxied;
  const key = uniqueKey('slowdown');
  const data = randomBuffer(64 * KiB);
  beforeAll(async () => {
    ({ server, proxy, b, direct } = await startProxied());
    await direct.upload({ key, body: data, contentType: OCTET });
  });
  afterAll(() => stopProxied(server, proxy));

  const calls: [string, string, (k: string) => Promise<unknown>][] = [
    ['exists', 'head', (k) => b.exists(k)],
    ['download', 'get', async (k) => readAll(await b.download(k))],
    ['upload (Buffer)', 'put', (k) => b.upload({ key: k, body: data, contentType: OCTET })],
    ['delete', 'delete', (k) => b.delete(k)],
  ];

  describe.each([
    ['keep-alive', true],
    ['Connection: close', false],
  ])('answered with %s', (_name, keepAlive) => {
    it.each(calls)('%s: 503 for the next 2 requests, then it succeeds through retries', async (_op, wire, call) => {
      proxy.reset();
      const k = wire === 'put' || wire === 'delete' ? uniqueKey('slowdown-ok') : key;
      if (wire === 'delete') await direct.upload({ key: k, body: data, contentType: OCTET });
      proxy.slowDown(2, { keepAlive });
      const result = await call(k);
      expect(proxy.ops(k)).toEqual([wire, wire, wire]);
      expect(proxy.requests.map((r) => r.action)).toEqual(['slowDown', 'slowDown', 'forward']);
      if (wire === 'get') expect((result as Buffer).equals(data)).toBe(true);
      if (wire === 'head') expect(result).toBe(true);
      if (wire === 'put') expect(await holds(direct, k)).toBe(fp(data));
      if (wire === 'delete') expect(await direct.exists(k)).toBe(false);
    });
  });

  it.each(calls)('%s: 503 for every request fails unavailable after exactly maxAttempts requests, well before requestMs', async (_op, wire, call) => {
    proxy.reset();
    const k = wire === 'put' ? uniqueKey('slowdown-never') : key;
    proxy.slowDown(Infinity);
    const { ms, value: err } = await timed(() => rejection(call(k)));
    expectTyped(err, 'unavailable', undefined, k);
    expect(err.details?.status).toBe(503);
    if (wire !== 'head') expect(err.details?.code).toBe('SlowDown'); // a HEAD answer has no body to carry it
    expect(proxy.ops(k)).toEqual(Array(RETRY.maxAttempts).fill(wire));
    expect(ms).toBeLessThan(TIMEOUTS.requestMs); // answered retries, not a timeout, ended it
    (figures.slowDownAlwaysMs ??= {})[wire] = ms;
    if (wire === 'put') expect(await direct.exists(k)).toBe(false);
    else expect(await holds(direct, key)).toBe(fp(data));
  });

  it.each(calls)('%s: 500 InternalError, then an HTML 502 from a load balancer: retried, succeeds', async (_op, wire, call) => {
    proxy.reset();
    const k = wire === 'put' || wire === 'delete' ? uniqueKey('err5xx-ok') : key;
    if (wire === 'delete') await direct.upload({ key: k, body: data, contentType: OCTET });
    proxy.respond(500, { code: 'InternalError', message: 'We encountered an internal error. Please try again.', times: 1 });
    proxy.respond(502, { reason: 'Bad Gateway', body: '<html><body>502 Bad Gateway</body></html>', contentType: 'text/html', times: 1, keepAlive: false });
    await call(k);
    expect(proxy.requests.map((r) => r.action)).toEqual(['respond', 'respond', 'forward']);
    if (wire === 'put') expect(await holds(direct, k)).toBe(fp(data));
    if (wire === 'delete') expect(await direct.exists(k)).toBe(false);
  });

  it.each(calls)('%s: bytes that are not HTTP: a typed unavailable error, not retried, no crash', async (_op, wire, call) => {
    proxy.reset();
    const k = wire === 'put' ? uniqueKey('garbage') : key;
    proxy.garbage(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n\r\n'));
    const err = await rejection(call(k));
    expectTyped(err, 'unavailable', undefined, k);
    expect(proxy.ops(k)).toEqual([wire]); // a malformed answer is not retried
    if (wire === 'put') expect(await direct.exists(k)).toBe(false);
    else expect(await holds(direct, key)).toBe(fp(data));
  });

  it.each(calls)('%s: 403 AccessDenied is not retried and maps to access_denied', async (_op, wire, call) => {
    proxy.reset();
    proxy.respond(403, { code: 'AccessDenied', message: 'Access Denied', reason: 'Forbidden' });
    const err = await rejection(call(key));
    expectTyped(err, 'access_denied', undefined, key);
    expect(err.details?.code).toBe('AccessDenied');
    // exists asks once more with a 1-byte GET, since a HEAD answer has no error code
    expect(proxy.ops(key)).toEqual(wire === 'head' ? ['head', 'get'] : [wire]);
    expect(await holds(direct, key)).toBe(fp(data));
  });

  it('stream with contentLength up to a part, one 503: read into memory, so retried; stored whole', async () => {
    proxy.reset();
    const k = uniqueKey('slowdown-stream-small');
    const data = randomBuffer(300 * KiB);
    proxy.slowDown(1, { match: { method: 'PUT' } });
    await b.upload({ key: k, body: streamOf([data]), contentType: OCTET, contentLength: data.length });
    expect(proxy.ops(k)).toEqual(['put', 'put']);
    expect(await holds(direct, k)).toBe(fp(data));
  });

  it('stream with contentLength above a part (streamed), one 503: not retryable (the body was on its way), fails unavailable, nothing stored', async () => {
    proxy.reset();
    const k = uniqueKey('slowdown-stream');
    const streaming = backendAt(proxy.endpoint, server, { multipart: { ...MULTIPART, threshold: 16 * MiB } });
    proxy.slowDown(1, { match: { method: 'PUT' } });
    const err = await rejection(streaming.upload({ key: k, body: streamOf([randomBuffer(6 * MiB)]), contentType: OCTET, contentLength: 6 * MiB }));
    expectTyped(err, 'unavailable', 'upload', k);
    expect(err.details?.code).toBe('SlowDown');
    expect(proxy.ops(k)).toEqual(['put']);
    expect(await direct.exists(k)).toBe(false);
  });

  it('stream with contentLength above a part (streamed), a connection reset before any body byte (the source starts late): sent again, stored whole', async () => {
    proxy.reset();
    const k = uniqueKey('refused-stream');
    const streaming = backendAt(proxy.endpoint, server, { multipart: { ...MULTIPART, threshold: 16 * MiB } });
    proxy.refuseConnections(1);
    const data = randomBuffer(6 * MiB);
    // The first chunk comes 300 ms after the request went out, so the reset comes first.
    const late = Readable.from(
      (async function* () {
        await sleep(300);
        yield data;
      })(),
    );
    await streaming.upload({ key: k, body: late, contentType: OCTET, contentLength: data.length });
    expect(proxy.refused()).toBe(1);
    expect(proxy.ops(k)).toEqual(['put']); // the refused connection carried no request the proxy logged
    expect(await holds(direct, k)).toBe(fp(data));
  });

  it('stream with contentLength above a part (streamed), a connection reset after the body started: not sent again, unavailable, nothing stored', async () => {
    proxy.reset();
    const k = uniqueKey('reset-stream-started');
    const streaming = backendAt(proxy.endpoint, server, { multipart: { ...MULTIPART, threshold: 16 * MiB } });
    proxy.resetRequest(64 * KiB, 1, { method: 'PUT' });
    const err = await rejection(streaming.upload({ key: k, body: streamOf([randomBuffer(6 * MiB)]), contentType: OCTET, contentLength: 6 * MiB }));
    expectTyped(err, 'unavailable', 'upload', k);
    expect(proxy.ops(k)).toEqual(['put']);
    expect(await direct.exists(k)).toBe(false);
  });

  it('stream without length (multipart): 503 on create, on a part and on complete, each retried; stored whole, no leftovers', async () => {
    proxy.reset();
    const k = uniqueKey('slowdown-multipart');
    proxy.slowDown(1, { match: { method: 'POST', url: /[?&]uploads/ } });
    proxy.slowDown(2, { match: { method: 'PUT', url: /partNumber=2/ } });
    proxy.slowDown(1, { match: { method: 'POST', url: /uploadId=/ } });
    const src = generatedSource(12 * MiB);
    await b.upload({ key: k, body: src.stream, contentType: OCTET });
    expect(proxy.faults().slowDown).toBe(4);
    expect(await hashStream(await direct.download(k))).toEqual({ bytes: 12 * MiB, sha256: src.sha256() });
    await expectNoLeftovers(server);
  });
});

// ---- the SDK's retry quota ----------------------------------------------------------

// Bug 3 of docs/reliability.md (fixed): the AWS SDK gates retries with a token bucket (500
// tokens; a retry of a 5xx, timeout or connection error costs 10, of a throttling error 5;
// failed retries are not refunded, a first-attempt success returns 1) that every S3 client
// in the process with the same region shares ("s3-us-east-1"). After about 50 failed
// retries, `retry.maxAttempts` was silently 1, for every backend.
// Last in the file: if the bug came back, it would drain the process-wide quota.
describe('retry quota under a sustained outage', () => {
  let server: Server;
  let pa: TestProxy;
  let pb: TestProxy;
  let a: S3StorageBackend;
  let other: S3StorageBackend;
  const key = uniqueKey('quota');
  beforeAll(async () => {
    ({ server, proxy: pa, b: a } = await startProxied());
    pb = await startProxy(target(server.port));
    other = backendAt(pb.endpoint, server);
    await other.upload({ key, body: randomBuffer(KiB), contentType: OCTET });
  });
  afterAll(() => stopProxied(server, pa, pb));

  /** 60 calls against a service answering 500 InternalError: attempts made by each. */
  async function outage(): Promise<number[]> {
    pa.reset();
    pa.respond(500, { code: 'InternalError', message: 'We encountered an internal error.' });
    const attempts: number[] = [];
    for (let i = 0; i < 60; i++) {
      const before = pa.requests.length;
      expectTyped(await rejection(a.exists(key)), 'unavailable', 'exists', key);
      attempts.push(pa.requests.length - before);
    }
    pa.clearRules();
    return attempts;
  }

  it('every call of a 60-call outage makes exactly maxAttempts attempts', async () => {
    const attempts = await outage();
    figures.quotaAttemptsPerCall = attempts.join('');
    expect(attempts).toEqual(Array(60).fill(RETRY.maxAttempts));
  });

  it('an outage seen by one backend does not take the retries of another backend in the process', async () => {
    await outage();
    pb.reset();
    pb.slowDown(1);
    const result = await other.exists(key).then(
      (v) => v,
      (e: StorageError) => e,
    );
    figures.quotaOtherBackendAfterOutage = result instanceof Error ? `${result.details?.reason} after ${pb.requests.length} request(s)` : 'retried, succeeded';
    expect(result).toBe(true);
    expect(pb.requests.map((r) => r.action)).toEqual(['slowDown', 'forward']);
  });
});
