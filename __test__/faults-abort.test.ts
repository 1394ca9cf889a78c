// AbortSignal on every method: already aborted, aborted mid-transfer, aborted while the
// server stalls, never aborted, long-lived. Shared helpers and conventions: helpers/faults.ts.
import { getEventListeners } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { S3StorageBackend } from '../lib/index.mjs';
import { backendAt, expectNoLeftovers, expectTyped, faultFigures, fp, holds, OCTET, rejection, RETRY, slowSource, startProxied, stopProxied, streamOf, timed, until, type Proxied } from './helpers/faults';
import { uniqueKey } from './helpers/s3';
import { generatedSource, KiB, MiB, randomBuffer, readAll, sleep } from './helpers/streams';

const figures = faultFigures();

/**
 * `patient` waits PATIENT_MS (requestMs) for a stalled request, in one attempt: only an abort
 * can end a stall sooner, and "at once" means well before that.
 */
const PATIENT_MS = 20_000;
const AT_ONCE_MS = 5_000;

describe('AbortSignal on every method', () => {
  let { server, proxy, b, direct } = {} as Proxied;
  let patient: S3StorageBackend; // requestMs 20 s: only the abort can end a stall quickly
  const key = uniqueKey('abort');
  const data = randomBuffer(16 * MiB);
  beforeAll(async () => {
    ({ server, proxy, b, direct } = await startProxied());
    patient = backendAt(proxy.endpoint, server, { retry: { ...RETRY, maxAttempts: 1 }, timeouts: { connectMs: 1000, requestMs: PATIENT_MS } });
    await direct.upload({ key, body: data, contentType: OCTET });
  });
  afterAll(() => stopProxied(server, proxy));

  it('an already-aborted signal rejects every method before any request (the proxy sees no connection)', async () => {
    proxy.reset();
    const connections = proxy.totalConnections();
    const reason = new Error('gave up');
    const signal = AbortSignal.abort(reason);
    const k = uniqueKey('pre-aborted');
    const calls: [string, () => Promise<unknown>][] = [
      ['upload', () => b.upload({ key: k, body: randomBuffer(KiB), contentType: OCTET }, { signal })],
      ['upload', () => b.upload({ key: k, body: streamOf([randomBuffer(KiB)]), contentType: OCTET, contentLength: KiB }, { signal })],
      ['upload', () => b.upload({ key: k, body: generatedSource(6 * MiB).stream, contentType: OCTET }, { signal })],
      ['download', () => b.download(key, { signal })],
      ['delete', () => b.delete(key, { signal })],
      ['exists', () => b.exists(key, { signal })],
      ['getSignedUrl', () => b.getSignedUrl(key, { signal })],
      ['getSignedUrl', () => b.getSignedUrl(key, { method: 'PUT', expiresIn: 60, signal })],
    ];
    for (const [operation, call] of calls) {
      const err = await rejection(call());
      expectTyped(err, 'aborted', operation);
      expect(err.cause).toBe(reason);
    }
    await sleep(50);
    expect(proxy.totalConnections()).toBe(connections);
    expect(proxy.requests).toEqual([]);
    expect(await direct.exists(k)).toBe(false);
    expect(await direct.exists(key)).toBe(true);
  });

  it('abort mid-download destroys the stream with reason aborted and frees the connection', async () => {
    proxy.reset();
    const ac = new AbortController();
    const stream = await b.download(key, { signal: ac.signal });
    let received = 0;
    let caught: unknown;
    try {
      for await (const chunk of stream) {
        received += (chunk as Buffer).length;
        if (received >= MiB && !ac.signal.aborted) ac.abort();
      }
    } catch (e) {
      caught = e;
    }
    expectTyped(caught, 'aborted', 'download', key);
    expect(stream.destroyed).toBe(true);
    expect(received).toBeLessThan(data.length);
    await expect.poll(() => proxy.openConnections(), { timeout: 5_000 }).toBe(0);
  });

  it('abort while a download body is stalled: rejects aborted at once, not after requestMs', async () => {
    proxy.reset();
    proxy.stallResponse(128 * KiB, 1, { method: 'GET' });
    const ac = new AbortController();
    const stream = await patient.download(key, { signal: ac.signal });
    const reading = rejection(
      (async () => {
        for await (const _ of stream);
      })(),
    );
    await sleep(300);
    const { ms, value: err } = await timed(async () => {
      ac.abort();
      return reading;
    });
    expectTyped(err, 'aborted', 'download', key);
    expect(ms).toBeLessThan(AT_ONCE_MS);
  });

  it.each([
    ['exists', 'HEAD', (s: AbortSignal) => patient.exists(key, { signal: s })],
    ['download', 'GET', (s: AbortSignal) => patient.download(key, { signal: s })],
    ['delete', 'DELETE', (s: AbortSignal) => patient.delete(key, { signal: s })],
    ['upload', 'PUT', (s: AbortSignal) => patient.upload({ key: uniqueKey('abort-stalled'), body: randomBuffer(MiB), contentType: OCTET }, { signal: s })],
  ] as const)('abort while %s is stalled: rejects aborted at once; nothing changed', async (operation, method, call) => {
    proxy.reset();
    proxy.stallRequest(undefined, Infinity, { method });
    const ac = new AbortController();
    const p = rejection(call(ac.signal));
    await until(() => proxy.requests.length > 0);
    await sleep(200);
    const { ms, value: err } = await timed(async () => {
      ac.abort();
      return p;
    });
    expectTyped(err, 'aborted', operation);
    expect(ms).toBeLessThan(AT_ONCE_MS);
    await expect.poll(() => proxy.openConnections(), { timeout: 5_000 }).toBe(0);
    expect(await holds(direct, key)).toBe(fp(data));
  });

  it('abort mid-upload of a large stream aborts the multipart upload on the server', async () => {
    proxy.reset();
    const k = uniqueKey('abort-multipart');
    const src = generatedSource(64 * MiB, { fast: true });
    const ac = new AbortController();
    const p = rejection(b.upload({ key: k, body: src.stream, contentType: OCTET }, { signal: ac.signal }));
    await until(() => proxy.ops(k).filter((o) => o === 'part').length >= 2);
    ac.abort();
    const err = await p;
    expectTyped(err, 'aborted', 'upload', k);
    expect(src.generated()).toBeLessThan(64 * MiB);
    await expect.poll(() => proxy.ops(k)).toContain('abort');
    expect(proxy.ops(k)).not.toContain('complete');
    expect(await direct.exists(k)).toBe(false);
    await expectNoLeftovers(server);
  });

  it('abort mid-upload of a stream with contentLength (one PutObject): nothing stored, previous intact', async () => {
    proxy.reset();
    const k = uniqueKey('abort-put');
    const older = randomBuffer(KiB);
    await direct.upload({ key: k, body: older, contentType: OCTET });
    const src = slowSource(4 * MiB, 128 * KiB, 5);
    const ac = new AbortController();
    const p = rejection(b.upload({ key: k, body: src.stream, contentType: OCTET, contentLength: 4 * MiB }, { signal: ac.signal }));
    await until(() => src.sent() >= MiB);
    ac.abort();
    expectTyped(await p, 'aborted', 'upload', k);
    expect(await holds(direct, k)).toBe(fp(older));
    await expectNoLeftovers(server);
  });

  it('a signal that never fires changes nothing; aborting it after the calls settled has no effect', async () => {
    proxy.reset();
    const ac = new AbortController();
    const k = uniqueKey('abort-never');
    await b.upload({ key: k, body: randomBuffer(KiB), contentType: OCTET }, { signal: ac.signal });
    expect(await b.exists(k, { signal: ac.signal })).toBe(true);
    await readAll(await b.download(k, { signal: ac.signal }));
    await b.getSignedUrl(k, { signal: ac.signal });
    await b.delete(k, { signal: ac.signal });
    await sleep(10);
    ac.abort(); // after everything settled: no effect, no unhandled error
    await sleep(10);
    expect(await direct.exists(k)).toBe(false);
  });

  // Bug 1 of docs/reliability.md (fixed): download() added a second 'abort' listener that
  // was never removed, so each download made with a long-lived signal stayed reachable from it.
  it('a long-lived signal shared by many calls holds no listener once they settled', async () => {
    proxy.reset();
    const ac = new AbortController();
    const k = uniqueKey('long-lived-signal');
    await b.upload({ key: k, body: randomBuffer(KiB), contentType: OCTET }, { signal: ac.signal });
    for (let i = 0; i < 20; i++) {
      expect(await b.exists(k, { signal: ac.signal })).toBe(true);
      const stream = await b.download(k, { signal: ac.signal });
      await readAll(stream);
      expect(stream.destroyed).toBe(true);
    }
    const destroyedUnread = await b.download(k, { signal: ac.signal });
    destroyedUnread.destroy();
    await new Promise((r) => destroyedUnread.once('close', r));
    await b.delete(k, { signal: ac.signal });
    figures.abortListenersLeftAfter21Downloads = getEventListeners(ac.signal, 'abort').length;
    expect(getEventListeners(ac.signal, 'abort')).toHaveLength(0);
  });

  // Bug 2 of docs/reliability.md (fixed): after an abort the upload waited for
  // AbortMultipartUpload (tries × maxAttempts × requestMs) before it rejected; here one
  // unanswered attempt alone would take PATIENT_MS.
  // Last in this block: the stalled abort leaves the upload's parts on the server.
  it('abort of a multipart upload rejects at once even if the server does not answer AbortMultipartUpload', async () => {
    proxy.reset();
    const k = uniqueKey('abort-unanswered');
    proxy.stallRequest(undefined, Infinity, { method: 'DELETE', url: /uploadId=/ });
    const src = generatedSource(64 * MiB, { fast: true });
    const ac = new AbortController();
    const p = rejection(patient.upload({ key: k, body: src.stream, contentType: OCTET }, { signal: ac.signal }));
    await until(() => proxy.ops(k).filter((o) => o === 'part').length >= 2);
    const { ms, value: err } = await timed(async () => {
      ac.abort();
      return p;
    });
    figures.abortWithUnansweredAbortMultipartMs = ms;
    figures.abortMultipartAttemptsWhenUnanswered = proxy.ops(k).filter((o) => o === 'abort').length;
    expectTyped(err, 'aborted', 'upload', k);
    expect(ms).toBeLessThan(AT_ONCE_MS);
    expect(await direct.exists(k)).toBe(false);
  });
});
