// Faults: connections reset (or closed) after N bytes of an upload or a download, and
// answers lost after the server did the work. Shared helpers and conventions: helpers/faults.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StorageError } from '../lib/index.mjs';
import { backendAt, expectNoLeftovers, expectTyped, faultFigures, fp, holds, MULTIPART, OCTET, rejection, RETRY, settle, startProxied, stopProxied, streamOf, type Proxied } from './helpers/faults';
import { uniqueKey } from './helpers/s3';
import { drain, generatedSource, hashStream, KiB, MiB, randomBuffer, readAll } from './helpers/streams';

const figures = faultFigures();

describe('connection reset after N bytes', () => {
  let { server, proxy, b, direct } = {} as Proxied;
  beforeAll(async () => ({ server, proxy, b, direct } = await startProxied()));
  afterAll(() => stopProxied(server, proxy));

  /** Either the whole new object or the previous one: never a mix, never a part. */
  async function expectConsistent(outcome: { error?: unknown }, key: string, data: Buffer, previous: Buffer | undefined) {
    const now = await holds(direct, key);
    if (outcome.error === undefined) expect(now).toBe(fp(data));
    else {
      expectTyped(outcome.error, 'unavailable', 'upload', key);
      expect(now).toBe(previous ? fp(previous) : 'absent');
    }
    await expectNoLeftovers(server);
  }

  it('Buffer (one PutObject), reset once after 256 KiB: retried from memory and stored whole', async () => {
    proxy.reset();
    const key = uniqueKey('reset-buffer');
    const data = randomBuffer(MiB);
    proxy.resetRequest(256 * KiB, 1, { method: 'PUT' });
    const outcome = await settle(b.upload({ key, body: data, contentType: OCTET }));
    expect(proxy.faults().resetRequest).toBe(1);
    expect(outcome).toEqual({}); // in memory: the retry succeeds
    expect(proxy.ops(key)).toEqual(['put', 'put']);
    await expectConsistent(outcome, key, data, undefined);
  });

  it('Buffer, reset on every attempt: unavailable after maxAttempts PUTs, the previous object intact', async () => {
    proxy.reset();
    const key = uniqueKey('reset-buffer-always');
    const older = randomBuffer(10 * KiB);
    await direct.upload({ key, body: older, contentType: OCTET });
    const data = randomBuffer(MiB);
    proxy.resetRequest(64 * KiB, Infinity, { method: 'PUT' });
    const outcome = await settle(b.upload({ key, body: data, contentType: OCTET }));
    expect(outcome.error).toBeDefined();
    expect(proxy.ops(key)).toEqual(Array(RETRY.maxAttempts).fill('put'));
    await expectConsistent(outcome, key, data, older);
  });

  it('Buffer above the threshold (multipart from memory), one part reset: retried, stored whole, no leftovers', async () => {
    proxy.reset();
    const key = uniqueKey('reset-buffer-multipart');
    const data = randomBuffer(12 * MiB + 3);
    proxy.resetRequest(MiB, 1, { method: 'PUT', url: /partNumber=2/ });
    const outcome = await settle(b.upload({ key, body: data, contentType: OCTET }));
    expect(proxy.faults().resetRequest).toBe(1);
    expect(outcome).toEqual({});
    expect(proxy.ops(key).filter((o) => o === 'part')).toHaveLength(4); // 3 parts + 1 retry
    await expectConsistent(outcome, key, data, undefined);
  });

  it('stream with contentLength up to a part (read into memory, one PutObject), reset after 256 KiB: retried and stored whole', async () => {
    proxy.reset();
    const key = uniqueKey('reset-stream-small');
    const data = randomBuffer(2 * MiB);
    proxy.resetRequest(256 * KiB, 1, { method: 'PUT' });
    const chunks = Array.from({ length: 8 }, (_, i) => data.subarray(i * 256 * KiB, (i + 1) * 256 * KiB));
    const outcome = await settle(b.upload({ key, body: streamOf(chunks), contentType: OCTET, contentLength: data.length }));
    expect(proxy.faults().resetRequest).toBe(1);
    expect(outcome).toEqual({});
    expect(proxy.ops(key)).toEqual(['put', 'put']);
    await expectConsistent(outcome, key, data, undefined);
  });

  it('stream with contentLength above a part, below the threshold (one streaming PutObject), reset after 256 KiB: cannot be retried, fails typed, nothing stored', async () => {
    proxy.reset();
    const streaming = backendAt(proxy.endpoint, server, { multipart: { ...MULTIPART, threshold: 16 * MiB } });
    for (const previous of [undefined, randomBuffer(20 * KiB)]) {
      const key = uniqueKey('reset-stream-length');
      if (previous) await direct.upload({ key, body: previous, contentType: OCTET });
      const data = randomBuffer(6 * MiB);
      proxy.resetRequest(256 * KiB, 1, { method: 'PUT' });
      const chunks = Array.from({ length: 24 }, (_, i) => data.subarray(i * 256 * KiB, (i + 1) * 256 * KiB));
      const outcome = await settle(streaming.upload({ key, body: streamOf(chunks), contentType: OCTET, contentLength: data.length }));
      expectTyped(outcome.error, 'unavailable', 'upload', key);
      expect(proxy.ops(key).filter((o) => o === 'put')).toEqual(['put']); // not retried: the bytes are gone
      await expectConsistent(outcome, key, data, previous);
    }
  });

  it('stream without length (multipart), one part reset: parts are in memory, so it is retried and stored whole', async () => {
    proxy.reset();
    const key = uniqueKey('reset-stream-multipart');
    const src = generatedSource(13 * MiB);
    proxy.resetRequest(2 * MiB, 1, { method: 'PUT', url: /partNumber=1/ });
    const outcome = await settle(b.upload({ key, body: src.stream, contentType: OCTET }));
    expect(proxy.faults().resetRequest).toBe(1);
    expect(outcome).toEqual({});
    const stored = await hashStream(await direct.download(key));
    expect(stored).toEqual({ bytes: 13 * MiB, sha256: src.sha256() });
    await expectNoLeftovers(server);
  });

  it('stream without length (multipart), every part reset: unavailable, the upload aborted, nothing stored', async () => {
    proxy.reset();
    const key = uniqueKey('reset-stream-multipart-always');
    const older = randomBuffer(30 * KiB);
    await direct.upload({ key, body: older, contentType: OCTET });
    proxy.resetRequest(MiB, Infinity, { method: 'PUT', url: /partNumber=/ });
    const outcome = await settle(b.upload({ key, body: generatedSource(13 * MiB).stream, contentType: OCTET }));
    expectTyped(outcome.error, 'unavailable', 'upload', key);
    await expect.poll(() => proxy.ops(key)).toContain('abort');
    expect(proxy.ops(key)).not.toContain('complete');
    expect(await holds(direct, key)).toBe(fp(older));
    await expectNoLeftovers(server);
  });

  it('stream with contentLength above the threshold (multipart), one part reset: retried, stored whole', async () => {
    proxy.reset();
    const key = uniqueKey('reset-stream-length-multipart');
    const src = generatedSource(11 * MiB + 1);
    proxy.resetRequest(3 * MiB, 1, { method: 'PUT', url: /partNumber=3/ });
    const outcome = await settle(b.upload({ key, body: src.stream, contentType: OCTET, contentLength: 11 * MiB + 1 }));
    expect(outcome).toEqual({});
    expect(await hashStream(await direct.download(key))).toEqual({ bytes: 11 * MiB + 1, sha256: src.sha256() });
    await expectNoLeftovers(server);
  });

  describe('the answer is lost (reset after the server did the work)', () => {
    it('PUT of a Buffer: retried, resolves, stored whole', async () => {
      proxy.reset();
      const key = uniqueKey('lost-put');
      const data = randomBuffer(200 * KiB);
      proxy.resetResponse(-1, 1, { method: 'PUT' });
      await b.upload({ key, body: data, contentType: OCTET });
      expect(proxy.faults().resetResponse).toBe(1);
      expect(proxy.ops(key)).toEqual(['put', 'put']);
      expect(await holds(direct, key)).toBe(fp(data));
    });

    it('DELETE: retried, resolves, the object is gone', async () => {
      proxy.reset();
      const key = uniqueKey('lost-delete');
      await direct.upload({ key, body: randomBuffer(KiB), contentType: OCTET });
      proxy.resetResponse(-1, 1, { method: 'DELETE' });
      await b.delete(key);
      expect(proxy.ops(key)).toEqual(['delete', 'delete']);
      expect(await direct.exists(key)).toBe(false);
    });

    it('stream with contentLength above a part (streamed): cannot be retried, rejects unavailable, though the server stored it whole (the ambiguity of any lost answer)', async () => {
      proxy.reset();
      const streaming = backendAt(proxy.endpoint, server, { multipart: { ...MULTIPART, threshold: 16 * MiB } });
      const key = uniqueKey('lost-stream-put');
      const data = randomBuffer(6 * MiB);
      proxy.resetResponse(-1, 1, { method: 'PUT' });
      const err = await rejection(streaming.upload({ key, body: streamOf([data]), contentType: OCTET, contentLength: data.length }));
      expectTyped(err, 'unavailable', 'upload', key);
      expect(proxy.ops(key)).toEqual(['put']);
      const now = await holds(direct, key);
      expect([fp(data), 'absent']).toContain(now); // never a part of it
      figures.lostStreamPutAnswerServerHolds = now === 'absent' ? 'absent' : 'whole object';
    });

    it('stream with contentLength up to a part (in memory): retried, resolves, stored whole', async () => {
      proxy.reset();
      const key = uniqueKey('lost-stream-put-small');
      const data = randomBuffer(300 * KiB);
      proxy.resetResponse(-1, 1, { method: 'PUT' });
      await b.upload({ key, body: streamOf([data]), contentType: OCTET, contentLength: data.length });
      expect(proxy.ops(key)).toEqual(['put', 'put']);
      expect(await holds(direct, key)).toBe(fp(data));
    });

    // Bug 4 of docs/reliability.md (fixed): the SDK retries the Complete, the server no
    // longer knows the upload id (s3s-fs answers 403 AccessDenied, S3 and MinIO NoSuchUpload),
    // and the upload rejected although the object was stored whole.
    it('CompleteMultipartUpload: the outcome reported matches what the server holds', async () => {
      proxy.reset();
      const key = uniqueKey('lost-complete');
      const data = randomBuffer(11 * MiB);
      proxy.resetResponse(-1, 1, { method: 'POST', url: /uploadId=/ });
      const outcome = await settle(b.upload({ key, body: data, contentType: OCTET }));
      const now = await holds(direct, key);
      figures.lostCompleteAnswer = {
        rejected: outcome.error ? `${(outcome.error as StorageError).details?.reason} (${(outcome.error as StorageError).details?.code})` : false,
        serverHolds: now === fp(data) ? 'whole object' : now,
        requests: proxy.ops(key).join(','),
      };
      expect([fp(data), 'absent']).toContain(now); // never a part of it
      await expectNoLeftovers(server);
      // Told "failed" means nothing was stored; told "stored" means stored.
      expect(outcome.error === undefined ? fp(data) : 'absent').toBe(now);
    });
  });

  describe('download', () => {
    const key = uniqueKey('reset-download');
    const data = randomBuffer(4 * MiB);
    beforeAll(() => direct.upload({ key, body: data, contentType: OCTET }));

    it.each([
      ['after 1 MiB of the body', MiB],
      ['right after the headers', 0],
    ])('reset %s, once: the body is resumed from the next byte and the download is whole', async (_name, after) => {
      proxy.reset();
      proxy.resetResponse(after, 1, { method: 'GET' });
      const got = await readAll(await b.download(key));
      expect(proxy.faults().resetResponse).toBe(1);
      expect(got.equals(data)).toBe(true);
      // The second GET asks for the rest (resume.test.ts checks its Range and If-Match).
      expect(proxy.ops(key)).toEqual(['get', 'get']);
    });

    it.each([
      ['after 1 MiB of the body', MiB],
      ['right after the headers', 0],
    ])('reset %s on every GET: the stream emits StorageError(unavailable) after retry.maxAttempts GETs', async (_name, after) => {
      proxy.reset();
      proxy.resetResponse(after, Infinity, { method: 'GET' });
      const stream = await b.download(key);
      const { received, caught } = await drain(stream);
      expect(proxy.faults().resetResponse).toBe(RETRY.maxAttempts);
      expect(received).toBeLessThanOrEqual(after * RETRY.maxAttempts);
      expectTyped(caught, 'unavailable', 'download', key);
      expect(stream.destroyed).toBe(true);
    });

    it('the connection closed cleanly (FIN) after 1 MiB of a 4 MiB body on every GET: an error, never a silently short object', async () => {
      proxy.reset();
      proxy.cutResponse(MiB, Infinity, { method: 'GET' });
      const stream = await b.download(key);
      expect(stream.contentLength).toBe(data.length);
      let received = 0;
      const err = await rejection(
        (async () => {
          for await (const chunk of stream) received += (chunk as Buffer).length;
        })(),
      );
      expect(proxy.faults().cutResponse).toBe(RETRY.maxAttempts);
      expect(received).toBe(RETRY.maxAttempts * MiB);
      expectTyped(err, 'unavailable', 'download', key);
    });

    it('reset before any answer: the GET is retried and the download is whole', async () => {
      proxy.reset();
      proxy.resetRequest(0, 1, { method: 'GET' });
      const got = await readAll(await b.download(key));
      expect(got.equals(data)).toBe(true);
      expect(proxy.ops(key)).toEqual(['get', 'get']);
    });

    it('exists and delete, reset before any answer: retried, succeed', async () => {
      proxy.reset();
      proxy.resetRequest(0, 1, { method: 'HEAD' });
      expect(await b.exists(key)).toBe(true);
      const gone = uniqueKey('reset-delete');
      await direct.upload({ key: gone, body: randomBuffer(10), contentType: OCTET });
      proxy.resetRequest(0, 1, { method: 'DELETE' });
      await b.delete(gone);
      expect(await direct.exists(gone)).toBe(false);
      expect(proxy.faults().resetRequest).toBe(2);
    });
  });
});
