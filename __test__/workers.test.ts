// The package inside worker_threads: several workers at once, and workers
// terminated in the middle of a transfer.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as esm from '../lib/index.mjs';
import { testServer, unfinishedUploads, uniqueKey, type S3TestConfig } from './helpers/s3';
import { startTestServer, type TestServer } from './helpers/servers';

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

interface ChildJob {
  workerData: Record<string, unknown>;
  /** When to terminate the worker: a message field that is truthy ("stalled") or "field>=number". */
  until: string;
  /** Talk through a relay that holds the connection after `limit` body bytes (see terminate-in-child.mjs). */
  stall?: { limit: number; direction?: 'response' | 'request' };
}
interface ChildReport {
  exitCodes: number[];
  finished: unknown[];
  objects: Record<string, 'absent' | 'intact' | 'corrupt'>;
  roundTrip: boolean;
  connectionsLeft: number;
}

/**
 * Runs helpers/workers/terminate-in-child.mjs: workers terminated mid-transfer, then the
 * package used on the child's main thread. In a child process, so that a crash shows as its
 * exit signal instead of taking this test file down with it.
 */
function runChild(s3coords: object, jobs: ChildJob[], rounds: number) {
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; report?: ChildReport; stderr: string }>((resolve) => {
    const script = new URL('./helpers/workers/terminate-in-child.mjs', import.meta.url);
    const env = { ...process.env, S3: JSON.stringify(s3coords), JOBS: JSON.stringify(jobs), ROUNDS: String(rounds) };
    // The kill only ends a hung child (which then fails on its signal); it is not a time limit on the work.
    const child = execFile(process.execPath, [fileURLToPath(script)], { env, timeout: 50_000 }, (_err, stdout, stderr) => {
      const line = stdout.trim().split('\n').pop();
      resolve({ code: child.exitCode, signal: child.signalCode, report: line ? JSON.parse(line) : undefined, stderr });
    });
  });
}

type Coords = Pick<S3TestConfig, 'bucket' | 'region' | 'endpoint' | 'accessKeyId' | 'secretAccessKey'>;

function backendFor(server: Coords) {
  return new esm.S3StorageBackend({
    bucket: server.bucket,
    region: server.region,
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
async function mainThreadRoundTrip(server: Coords) {
  const cjs = createRequire(import.meta.url)('../lib/index.cjs') as typeof esm;
  const backend = backendFor(server);
  const viaCjs = new cjs.S3StorageBackend({
    bucket: server.bucket,
    region: server.region,
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
  // A private server, so unfinished uploads (and s3s-fs's temp files) can be checked exactly.
  let server: TestServer;
  // What the workers get (workerData must be cloneable: no functions).
  let coords: Coords;
  beforeAll(async () => {
    server = await startTestServer();
    const { bucket, region, endpoint, accessKeyId, secretAccessKey } = server;
    coords = { bucket, region, endpoint, accessKeyId, secretAccessKey };
  });
  afterAll(() => server?.stop());

  // Each scenario runs several times in its child: a crash after termination depends on timing.
  const ROUNDS = 3;

  /** Unfinished uploads: multipart uploads (and on s3s-fs its streaming temp files). */
  const unfinished = () => unfinishedUploads(server, { tempFiles: true });

  /**
   * The child neither crashed nor hung, its workers were cut mid-transfer, and no partial
   * object was stored (a Buffer upload may complete after its worker died, but only whole).
   */
  async function expectSurvived(jobs: ChildJob[], rounds = ROUNDS, { bodyHeldByNetwork = false } = {}) {
    // Only this test's files count (a crashed child can leave an upload behind for good).
    const before = new Set(await unfinished());
    const { code, signal, report, stderr } = await runChild(coords, jobs, rounds);
    expect({ code, signal }, stderr).toEqual({ code: 0, signal: null });
    const roundNumbers = Array.from({ length: rounds }, (_, r) => r);
    const uploads = jobs.filter((j) => j.workerData.mode !== 'download');
    expect(report).toEqual({
      exitCodes: roundNumbers.flatMap(() => jobs.map(() => 1)),
      finished: [],
      objects: Object.fromEntries(
        roundNumbers.flatMap((r) =>
          uploads.map((j) => [
            `${j.workerData.key}-r${r}`,
            j.workerData.mode === 'upload-buffer' ? expect.stringMatching(/^(absent|intact)$/) : 'absent',
          ]),
        ),
      ),
      roundTrip: true,
      // Known limitation: a request whose body the peer stopped reading keeps its socket
      // until TCP gives up, since hyper only notices the cancelled body once the socket
      // takes more bytes (see README, "Known limitations").
      connectionsLeft: bodyHeldByNetwork ? expect.any(Number) : 0,
    });
    // Nothing is left on the server: multipart uploads aborted, streaming PutObjects cut.
    await expect.poll(async () => (await unfinished()).filter((f) => !before.has(f)), { timeout: 10_000 }).toEqual([]);
    await mainThreadRoundTrip(server); // and this process is fine too
  }

  it('upload of a large stream without length (multipart, data flowing)', async () => {
    await expectSurvived([
      {
        workerData: { key: uniqueKey('terminated-multipart'), mode: 'upload', multipart: { partSize: 5 * MiB, queueSize: 2 } },
        until: `sent>=${16 * MiB}`,
      },
    ]);
  });

  it('upload of a stream with contentLength (one streaming PutObject, source stalled)', async () => {
    await expectSurvived([
      {
        workerData: { key: uniqueKey('terminated-put'), mode: 'upload', contentLength: 32 * MiB, stallAfter: 4 * MiB },
        until: 'stalled',
      },
    ]);
  });

  it('upload of a multipart stream stalled between parts', async () => {
    await expectSurvived([
      {
        workerData: { key: uniqueKey('terminated-stalled-mp'), mode: 'upload', multipart: { partSize: 5 * MiB }, stallAfter: 12 * MiB },
        until: 'stalled',
      },
    ]);
  });

  it('upload of a Buffer', async () => {
    await expectSurvived([{ workerData: { key: uniqueKey('terminated-buffer'), mode: 'upload-buffer', size: 64 * MiB }, until: 'started' }]);
  });

  it('several workers at once, uploading and downloading', async () => {
    const key = uniqueKey('terminated-many');
    const backend = backendFor(server);
    await backend.upload({ key, body: Buffer.alloc(16 * MiB, 0x63), contentType: 'application/octet-stream' });
    await expectSurvived([
      { workerData: { key: `${key}.up1`, mode: 'upload', multipart: { partSize: 5 * MiB } }, until: `sent>=${8 * MiB}` },
      { workerData: { key: `${key}.up2`, mode: 'upload', contentLength: 8 * MiB, stallAfter: MiB }, until: 'stalled' },
      // Stops reading after its first chunk: a download read to the end before the uploads
      // reach their marks would finish, and this test terminates transfers in flight.
      { workerData: { key, mode: 'download', stallAfter: 1 }, until: 'stalled' },
    ]);
    await backend.delete(key);
  });

  it('download being read slowly', async () => {
    const key = uniqueKey('terminated-download');
    const backend = backendFor(server);
    const body = Buffer.alloc(24 * MiB, 0x62);
    await backend.upload({ key, body, contentType: 'application/octet-stream' });
    await expectSurvived([{ workerData: { key, mode: 'download' }, until: `received>=${2 * MiB}` }]);
    expect((await readAll(await backend.download(key))).equals(body)).toBe(true);
    await backend.delete(key);
  });

  it('download with a read pending on a stalled connection: the connection is released', async () => {
    const key = uniqueKey('terminated-stalled-download');
    const backend = backendFor(server);
    await backend.upload({ key, body: Buffer.alloc(8 * MiB, 0x64), contentType: 'application/octet-stream' });
    // The server's answer stops after 2 MiB: the worker's next read waits for bytes that never come.
    await expectSurvived([{ workerData: { key, mode: 'download', flowing: true }, until: 'received', stall: { limit: 2 * MiB } }], 1);
    await backend.delete(key);
  });

  it('upload whose request body is held by the network (writes pending)', async () => {
    // The relay stops reading the request after 1 MiB: the worker's writes wait for room.
    await expectSurvived([
      {
        workerData: { key: uniqueKey('terminated-held-put'), mode: 'upload', contentLength: 32 * MiB },
        until: 'sent',
        stall: { limit: MiB, direction: 'request' },
      },
    ], 1, { bodyHeldByNetwork: true });
  });
});
