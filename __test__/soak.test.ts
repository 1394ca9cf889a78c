// Soak: 20,000 small operations (upload / exists / download / delete of ~1 KiB objects,
// 32 at a time) against a private server of the selected kind. RSS and the number of active
// Node resources are sampled every 1,000 operations; after the warm-up (the first 25%) neither
// may keep growing. The figures are printed (SOAK-FIGURES ...) for docs/reliability.md.
//
// SOAK_OPS sets the count (a multiple of 4,000). Default 20,000; 8,000 on moto, which serves
// about 300 of these operations a second (s3s-fs and Garage: 2,000-2,500), so 20,000 would
// take over a minute there (the matrix runs the suite on three servers within CI's budget).
import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3StorageBackend } from '../lib/index.mjs';
import { isS3sFs, listObjectKeys, selectedServerKind, startTestServer, unfinishedUploads, type TestServer } from './helpers/servers';
import { KiB, MiB, randomBuffer, readAll, sleep } from './helpers/streams';

const KIND = selectedServerKind();
const TOTAL_OPS = Number(process.env.SOAK_OPS || (KIND === 'moto' ? 8_000 : 20_000));
if (!Number.isInteger(TOTAL_OPS) || TOTAL_OPS < 4_000 || TOTAL_OPS % 4_000 !== 0) {
  throw new Error(`SOAK_OPS=${process.env.SOAK_OPS}: expected a multiple of 4,000`);
}
const CONCURRENCY = 32;
const SAMPLE_EVERY = 1_000;
const WARMUP_OPS = TOTAL_OPS / 4;
/** Wall-clock bound: a soak that takes longer stops early and fails (no endless loop). */
const TIME_LIMIT_MS = 90_000;

// One describe title on every server, so the compatibility matrix has one row for it.
describe('soak: small operations', () => {
  let server: TestServer;
  let b: S3StorageBackend;
  beforeAll(async () => {
    server = await startTestServer();
    b = new S3StorageBackend({
      bucket: server.bucket,
      endpoint: server.endpoint,
      region: server.region,
      credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
      timeouts: { connectMs: 1000, requestMs: 5000 },
    });
  });
  afterAll(() => server?.stop());

  it(`${TOTAL_OPS.toLocaleString('en-US')} operations: memory and handles stay flat after warm-up; every operation succeeds`, async () => {
    const payloads = Array.from({ length: CONCURRENCY }, (_, i) => randomBuffer(KiB + i));
    // One round trip first, so lazily created state (client, runtime, pool) is in the baseline.
    await b.upload({ key: 'soak/warm', body: payloads[0], contentType: 'application/octet-stream' });
    await b.delete('soak/warm');
    await sleep(50);
    // The test runner's own activity (IPC writes, timers) comes and goes: the baseline is the
    // fewest resources seen over a few samples, and the end is judged the same way.
    const settledResources = async () => {
      let fewest = process.getActiveResourcesInfo();
      for (let i = 0; i < 5; i++) {
        await sleep(20);
        const now = process.getActiveResourcesInfo();
        if (now.length < fewest.length) fewest = now;
      }
      return fewest.sort();
    };
    const baselineTypes = await settledResources();
    const baselineResources = baselineTypes.length;
    const rssStart = process.memoryUsage.rss();

    let done = 0;
    let failures = 0;
    let mismatches = 0;
    const firstErrors: string[] = [];
    const samples: { ops: number; rssMiB: number; resources: number; ms: number }[] = [];
    const t0 = performance.now();
    let nextSample = SAMPLE_EVERY;
    const deadline = Date.now() + TIME_LIMIT_MS;

    const count = () => {
      done += 1;
      if (done >= nextSample) {
        nextSample += SAMPLE_EVERY;
        samples.push({
          ops: done,
          rssMiB: +(process.memoryUsage.rss() / MiB).toFixed(1),
          resources: process.getActiveResourcesInfo().length,
          ms: Math.round(performance.now() - t0),
        });
      }
    };
    const guard = async <T>(p: Promise<T>): Promise<T | undefined> => {
      try {
        return await p;
      } catch (e) {
        failures += 1;
        if (firstErrors.length < 5) firstErrors.push(String((e as Error)?.message ?? e));
        return undefined;
      } finally {
        count();
      }
    };

    // Each worker cycles through its own keys: upload, exists, download (read and compare), delete.
    // 20,000 operations: 5,000 cycles over 32 workers: 8 workers do 157 cycles, 24 do 156.
    const cyclesFor = (w: number) => Math.floor(TOTAL_OPS / 4 / CONCURRENCY) + (w < (TOTAL_OPS / 4) % CONCURRENCY ? 1 : 0);
    const runWorker = async (w: number) => {
      const body = payloads[w];
      for (let c = 0; c < cyclesFor(w) && Date.now() < deadline; c++) {
        const key = `soak/w${w}/c${c}`;
        await guard(b.upload({ key, body, contentType: 'application/octet-stream' }));
        const there = await guard(b.exists(key));
        if (there !== true) mismatches += 1;
        const got: Buffer | undefined = await guard(b.download(key).then(readAll));
        if (!got || !got.equals(body)) mismatches += 1;
        await guard(b.delete(key));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => runWorker(w)));
    const elapsedMs = performance.now() - t0;

    await sleep(100); // let closed connections and finished work settle
    const rssEnd = process.memoryUsage.rss();
    const endTypes = await settledResources();
    const endResources = endTypes.length;
    const warm = samples.find((s) => s.ops >= WARMUP_OPS)!;
    const figures = {
      ops: done,
      concurrency: CONCURRENCY,
      failures,
      mismatches,
      seconds: +(elapsedMs / 1000).toFixed(1),
      opsPerSecond: Math.round(done / (elapsedMs / 1000)),
      rssMiB: {
        start: +(rssStart / MiB).toFixed(1),
        afterWarmup: warm?.rssMiB,
        end: +(rssEnd / MiB).toFixed(1),
        max: Math.max(...samples.map((s) => s.rssMiB)),
        growthAfterWarmup: warm ? +(rssEnd / MiB - warm.rssMiB).toFixed(1) : undefined,
      },
      activeResources: { baseline: baselineResources, max: Math.max(...samples.map((s) => s.resources)), end: endResources, kinds: endTypes },
      samples,
    };
    console.log(`SOAK-FIGURES ${JSON.stringify(figures)}`);

    expect(firstErrors).toEqual([]);
    expect(failures).toBe(0);
    expect(mismatches).toBe(0);
    expect(done).toBe(TOTAL_OPS);
    expect(samples).toHaveLength(TOTAL_OPS / SAMPLE_EVERY);
    // Flat after warm-up: RSS grows less than 32 MiB from the end of warm-up to the end.
    expect(rssEnd - warm.rssMiB * MiB).toBeLessThan(32 * MiB);
    // Handles back to the baseline (same count, same kinds).
    expect(endResources).toBe(baselineResources);
    expect(endTypes).toEqual(baselineTypes);
    // The server holds nothing: every object deleted, no unfinished upload.
    expect(await unfinishedUploads(server)).toEqual([]);
    if (isS3sFs(server.kind)) {
      // Its bucket is a directory: not even a stray file may remain.
      const files = readdirSync(`${server.dataDir}/${server.bucket}`, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
      expect(files.map((d) => d.name)).toEqual([]);
    } else {
      expect(await listObjectKeys(server)).toEqual([]);
    }
    expect(await b.exists('soak/w0/c0')).toBe(false);
  });
});
