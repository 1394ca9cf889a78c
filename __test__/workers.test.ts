// The package inside worker_threads: several workers at once, and workers
// terminated in the middle of a transfer.
import { readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as esm from '../lib/index.mjs';
import { startS3Server, type S3Server } from '../scripts/s3-server.mjs';
import { listLeftovers, testServer, uniqueKey, type S3TestConfig } from './helpers/s3';
import { startStallingProxy } from './helpers/stalling-proxy';

const s3 = testServer();
const MiB = 1024 * 1024;
const workerFile = (name: string) => new URL(`./helpers/workers/${name}`, import.meta.url);

type Message = Record<string, unknown>;

/** Starts a worker; `next(pred)` waits for the first message matching `pred` (error/exit reject). */
function startWorker(name: string, workerData: unknown) {
  const worker = new Worker(workerFile(name), { workerData });
  const messages: Message[] = [];
  const waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void; reject: (e: Error) => void }[] = [];
  let failure: Error | undefined;
  const fail = (err: Error) => {
    failure ??= err;
    for (const w of waiters.splice(0)) w.reject(err);
  };
  worker.on('message', (m: Message) => {
    messages.push(m);
    for (const w of [...waiters]) {
      if (w.pred(m)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`worker exited with code ${code} before the expected message`)));
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  return {
    worker,
    messages,
    exited,
    next(pred: (m: Message) => boolean): Promise<Message> {
      const seen = messages.find(pred);
      if (seen) return Promise.resolve(seen);
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => waiters.push({ pred, resolve, reject }));
    },
  };
}

function backendFor(server: Pick<S3TestConfig, 'bucket' | 'endpoint' | 'accessKeyId' | 'secretAccessKey'>) {
  return new esm.S3StorageBackend({
    bucket: server.bucket,
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
}

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The main thread still works: round trip with the ESM and the CommonJS entry. */
async function mainThreadRoundTrip(server: Pick<S3TestConfig, 'bucket' | 'endpoint' | 'accessKeyId' | 'secretAccessKey'>) {
  const cjs = createRequire(import.meta.url)('../lib/index.cjs') as typeof esm;
  const backend = backendFor(server);
  const viaCjs = new cjs.S3StorageBackend({
    bucket: server.bucket,
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  const key = uniqueKey('after-worker');
  await viaCjs.upload({ key, body: Buffer.from('still alive'), contentType: 'text/plain' });
  expect(await backend.exists(key)).toBe(true);
  expect((await readAll(await backend.download(key))).toString()).toBe('still alive');
  const res = await fetch((await backend.getSignedUrl(key)).url);
  expect(await res.text()).toBe('still alive');
  await backend.delete(key);
  expect(await backend.exists(key)).toBe(false);
}

describe('several workers at once', () => {
  it('each loads the package (ESM and CommonJS) and completes a round trip concurrently', async () => {
    const files = ['roundtrip.mjs', 'roundtrip.cjs', 'roundtrip.mjs', 'roundtrip.cjs'];
    const workers = files.map((file, i) => startWorker(file, { s3, key: uniqueKey(`worker-${i}`) }));
    // The main thread uses the package at the same time.
    const [results] = await Promise.all([
      Promise.all(workers.map((w) => w.next((m) => 'ok' in m))),
      mainThreadRoundTrip(s3),
    ]);
    const expected = {
      exists: true,
      downloadMatches: true,
      streamedMatches: true,
      signedStatus: 200,
      signedMatches: true,
      existsAfterDelete: false,
      missingIsFileNotFound: true,
    };
    expect(results).toEqual([
      { ok: true, entry: 'esm', report: expected },
      { ok: true, entry: 'cjs', report: expected },
      { ok: true, entry: 'esm', report: expected },
      { ok: true, entry: 'cjs', report: expected },
    ]);
    // Workers whose work is done exit on their own (nothing native keeps them alive).
    expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0, 0, 0]);
  });
});

describe('a worker terminated in the middle of a transfer', () => {
  // A private server, so upload state files and temp files can be checked exactly.
  let server: S3Server;
  // What the workers get (workerData must be cloneable: no functions).
  let coords: Pick<S3Server, 'bucket' | 'endpoint' | 'accessKeyId' | 'secretAccessKey'>;
  beforeAll(async () => {
    server = await startS3Server();
    const { bucket, endpoint, accessKeyId, secretAccessKey } = server;
    coords = { bucket, endpoint, accessKeyId, secretAccessKey };
  });
  afterAll(() => server?.stop());

  /** Files s3s-fs keeps for unfinished uploads: multipart state and streaming temp files. */
  const unfinished = () => [...listLeftovers(server.dataDir), ...readdirSync(server.dataDir).filter((f) => f.startsWith('.tmp.'))];

  it('upload of a large stream without length (multipart, data flowing): no crash, nothing stored', async () => {
    const key = uniqueKey('terminated-multipart');
    const w = startWorker('transfer.mjs', { s3: coords, key, mode: 'upload', multipart: { partSize: 5 * MiB, queueSize: 2 } });
    await w.next((m) => typeof m.sent === 'number' && m.sent >= 16 * MiB);
    expect(await w.worker.terminate()).toBe(1);
    expect(w.messages.some((m) => 'done' in m || 'error' in m)).toBe(false); // it was really cut mid-way

    await mainThreadRoundTrip(server);
    const backend = backendFor(server);
    expect(await backend.exists(key)).toBe(false);
    // The multipart upload is aborted rather than left behind.
    await expect.poll(unfinished, { timeout: 10_000 }).toEqual([]);
  });

  it('upload of a stream with contentLength (single streaming PutObject, source stalled): no crash, nothing stored', async () => {
    const key = uniqueKey('terminated-put');
    const w = startWorker('transfer.mjs', { s3: coords, key, mode: 'upload', contentLength: 32 * MiB, stallAfter: 4 * MiB });
    await w.next((m) => m.stalled === true);
    // The PutObject is open on the server, waiting for the rest of the body.
    await expect.poll(unfinished, { timeout: 10_000 }).toHaveLength(1);
    expect(await w.worker.terminate()).toBe(1);

    await mainThreadRoundTrip(server);
    const backend = backendFor(server);
    expect(await backend.exists(key)).toBe(false);
    // The request is cut, so the server drops its partial temp file.
    await expect.poll(unfinished, { timeout: 10_000 }).toEqual([]);
    expect(await backend.exists(key)).toBe(false);
  });

  it('upload of a multipart stream stalled between parts: no crash, the upload is aborted', async () => {
    const key = uniqueKey('terminated-stalled-mp');
    const w = startWorker('transfer.mjs', { s3: coords, key, mode: 'upload', multipart: { partSize: 5 * MiB }, stallAfter: 12 * MiB });
    await w.next((m) => m.stalled === true);
    // Two parts are on the server.
    await expect.poll(() => listLeftovers(server.dataDir).filter((f) => f.includes('.part-')), { timeout: 10_000 }).toHaveLength(2);
    expect(await w.worker.terminate()).toBe(1);

    await mainThreadRoundTrip(server);
    expect(await backendFor(server).exists(key)).toBe(false);
    await expect.poll(unfinished, { timeout: 10_000 }).toEqual([]);
  });

  it('download being read: no crash, and the main thread can still read the object', async () => {
    const key = uniqueKey('terminated-download');
    const backend = backendFor(server);
    const body = Buffer.alloc(24 * MiB, 0x62);
    await backend.upload({ key, body, contentType: 'application/octet-stream' });

    const w = startWorker('transfer.mjs', { s3: coords, key, mode: 'download' });
    await w.next((m) => typeof m.received === 'number' && m.received >= 2 * MiB);
    expect(await w.worker.terminate()).toBe(1);
    expect(w.messages.some((m) => 'done' in m || 'error' in m)).toBe(false);

    await mainThreadRoundTrip(server);
    expect((await readAll(await backend.download(key))).equals(body)).toBe(true);
    await backend.delete(key);
  });

  it('download with a read pending on a stalled connection: no crash, and its connection is released', async () => {
    const key = uniqueKey('terminated-stalled-download');
    const backend = backendFor(server);
    await backend.upload({ key, body: Buffer.alloc(8 * MiB, 0x64), contentType: 'application/octet-stream' });
    // The server's answer stops after 2 MiB: the worker's next read waits for bytes.
    const proxy = await startStallingProxy({ host: '127.0.0.1', port: server.port }, 2 * MiB);
    try {
      const w = startWorker('transfer.mjs', { s3: { ...coords, endpoint: proxy.endpoint }, key, mode: 'download', flowing: true });
      await w.next((m) => typeof m.received === 'number');
      await expect.poll(() => proxy.stalled(), { timeout: 10_000 }).toBe(1);
      expect(await w.worker.terminate()).toBe(1);
      expect(w.messages.some((m) => 'done' in m || 'error' in m)).toBe(false);

      // The dead worker's download does not keep its connection open, although the
      // server never finishes its answer.
      await expect.poll(() => proxy.openConnections(), { timeout: 10_000 }).toBe(0);
      await mainThreadRoundTrip(server);
    } finally {
      await proxy.close();
    }
  });

  it('several workers terminated at once mid-transfer leave the package usable', async () => {
    const key = uniqueKey('terminated-many');
    const backend = backendFor(server);
    await backend.upload({ key, body: Buffer.alloc(16 * MiB, 0x63), contentType: 'application/octet-stream' });
    const ws = [
      startWorker('transfer.mjs', { s3: coords, key: `${key}.up1`, mode: 'upload', multipart: { partSize: 5 * MiB } }),
      startWorker('transfer.mjs', { s3: coords, key: `${key}.up2`, mode: 'upload', contentLength: 8 * MiB, stallAfter: MiB }),
      startWorker('transfer.mjs', { s3: coords, key, mode: 'download' }),
    ];
    await Promise.all([
      ws[0].next((m) => typeof m.sent === 'number' && m.sent >= 8 * MiB),
      ws[1].next((m) => m.stalled === true),
      ws[2].next((m) => typeof m.received === 'number' && m.received > 0),
    ]);
    expect(await Promise.all(ws.map((w) => w.worker.terminate()))).toEqual([1, 1, 1]);

    await mainThreadRoundTrip(server);
    expect(await backend.exists(`${key}.up1`)).toBe(false);
    expect(await backend.exists(`${key}.up2`)).toBe(false);
    await expect.poll(unfinished, { timeout: 10_000 }).toEqual([]);
    await backend.delete(key);
  });
});
