// Faults in the caller's source stream: it fails halfway, never ends, or has another length
// than contentLength. Shared helpers and conventions: helpers/faults.ts.
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectNoLeftovers, expectTyped, failingSource, faultFigures, fp, holds, MULTIPART, OCTET, rejection, silentSource, startProxied, stopProxied, TIMEOUTS, until, type Proxied } from './helpers/faults';
import { uniqueKey } from './helpers/s3';
import { generatedSource, KiB, MiB, randomBuffer, sleep } from './helpers/streams';

const figures = faultFigures();

describe('source streams that fail, never end, or have the wrong length', () => {
  let { server, proxy, b, direct } = {} as Proxied;
  // A 16 MiB threshold, so a sized stream between a part and it streams in one PutObject.
  beforeAll(async () => ({ server, proxy, b, direct } = await startProxied({ multipart: { ...MULTIPART, threshold: 16 * MiB } })));
  afterAll(() => stopProxied(server, proxy));

  const paths = [
    ['one PutObject read into memory (contentLength up to a part)', 2 * MiB, MiB, false],
    ['one streaming PutObject (contentLength above a part)', 6 * MiB, 3 * MiB, false],
    ['unknown length, below one part', undefined, 300 * KiB, false],
    ['multipart (unknown length)', undefined, 12 * MiB, true],
    ['multipart (contentLength above the threshold)', 20 * MiB, 12 * MiB, true],
  ] as const;

  it.each(paths)('errors halfway, %s: rejects aborted with the cause; nothing stored, previous intact, no leftovers', async (_n, contentLength, before, multipart) => {
    for (const previous of [undefined, randomBuffer(5 * KiB)]) {
      proxy.clearLog();
      const key = uniqueKey('source-error');
      if (previous) await direct.upload({ key, body: previous, contentType: OCTET });
      const boom = new Error('disk read failed');
      const err = await rejection(b.upload({ key, body: failingSource(before, boom), contentType: OCTET, contentLength }));
      expectTyped(err, 'aborted', 'upload', key);
      expect(err.cause).toBe(boom);
      if (multipart) await expect.poll(() => proxy.ops(key)).toContain('abort');
      expect(proxy.ops(key)).not.toContain('complete');
      expect(await holds(direct, key)).toBe(previous ? fp(previous) : 'absent');
      await expectNoLeftovers(server);
    }
  });

  it.each(paths)('never ends (silent after some bytes), %s: an abort rejects aborted before requestMs; nothing stored, no leftovers', async (_n, contentLength, before, multipart) => {
    proxy.clearLog();
    const key = uniqueKey('source-silent');
    const src = silentSource(before);
    const ac = new AbortController();
    const upload = rejection(b.upload({ key, body: src.stream, contentType: OCTET, contentLength }, { signal: ac.signal }));
    await until(() => src.sent() >= before);
    if (multipart) await until(() => proxy.ops(key).includes('part'));
    await sleep(200);
    const t0 = performance.now();
    ac.abort();
    const err = await upload;
    const ms = Math.round(performance.now() - t0);
    expectTyped(err, 'aborted', 'upload', key);
    expect(ms).toBeLessThan(TIMEOUTS.requestMs); // the abort, not a timeout, ended it
    (figures.silentSourceAbortMs ??= []).push(ms);
    expect(src.stream.destroyed).toBe(true);
    if (multipart) await expect.poll(() => proxy.ops(key)).toContain('abort');
    expect(await direct.exists(key)).toBe(false);
    await expectNoLeftovers(server);
  });

  it('never ends (produces bytes forever): an abort after 12 MiB aborts the multipart upload on the server', async () => {
    proxy.clearLog();
    const key = uniqueKey('source-endless');
    let made = 0;
    const endless = new Readable({
      read() {
        made += 256 * KiB;
        if (made > 200 * MiB) return; // a bound for the test, never reached in practice
        this.push(Buffer.allocUnsafe(256 * KiB).fill(made & 0xff));
      },
    });
    const ac = new AbortController();
    const upload = rejection(b.upload({ key, body: endless, contentType: OCTET }, { signal: ac.signal }));
    await until(() => made >= 12 * MiB);
    ac.abort(new Error('user cancelled'));
    const err = await upload;
    expectTyped(err, 'aborted', 'upload', key);
    expect((err.cause as Error).message).toBe('user cancelled');
    await expect.poll(() => proxy.ops(key)).toEqual(expect.arrayContaining(['create', 'abort']));
    expect(await direct.exists(key)).toBe(false);
    await expectNoLeftovers(server);
  });

  it.each([
    ['one PutObject, one byte more', MiB, MiB + 1],
    ['one PutObject, one byte fewer', MiB, MiB - 1],
    ['multipart, one byte more', 12 * MiB, 12 * MiB + 1],
    ['multipart, one byte fewer', 12 * MiB, 12 * MiB - 1],
  ])('%s than contentLength: invalid_argument(contentLength), previous object intact, no leftovers', async (_n, declared, actual) => {
    const key = uniqueKey('length-mismatch');
    const previous = randomBuffer(3 * KiB);
    await direct.upload({ key, body: previous, contentType: OCTET });
    const err = await rejection(b.upload({ key, body: generatedSource(actual).stream, contentType: OCTET, contentLength: declared }));
    expectTyped(err, 'invalid_argument', 'upload', key);
    expect(err.details?.field).toBe('contentLength');
    expect(await holds(direct, key)).toBe(fp(previous));
    await expectNoLeftovers(server);
  });
});
