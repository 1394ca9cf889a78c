// Shared by the faults-*.test.ts files: faults and abuse (a dead, killed or restarted server;
// connections reset mid-upload and mid-download; 503 SlowDown; stalls; wrong credentials;
// misbehaving source streams; AbortSignal on every method; load; invalid arguments).
//
// Each case checks the outcome (a typed error with its `details.reason`, or success) and
// then what the server holds: the whole correct object or nothing (or the previous object,
// byte for byte), and no unfinished multipart upload. Every describe block has its own
// server of the selected kind (S3_TEST_SERVER, see servers.ts), so it holds only its own
// state. Results and figures: docs/reliability.md; each file prints its figures as
// FAULT-FIGURES {...}.
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { afterAll, expect } from 'vitest';
import { S3StorageBackend, StorageError } from '../../lib/index.mjs';
import { startProxy, type TestProxy } from './proxy.mjs';
import { selectedServerKind, startTestServer, unfinishedUploads, type TestServer } from './servers';
import { hashStream, KiB, MiB, randomBuffer, sha256, sleep } from './streams';

export { failingSource, streamOf } from './streams';

export const MULTIPART = { partSize: 5 * MiB, threshold: 5 * MiB, queueSize: 2 };
export const RETRY = { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 };
/** Where a stall is the point (requestMs fires): 1 s. */
export const STALL_TIMEOUTS = { connectMs: 1000, requestMs: 1000 };
/** Elsewhere: short, but not so short that a loaded 2-core machine trips it. */
export const TIMEOUTS = { connectMs: 1000, requestMs: 5000 };
export const OCTET = 'application/octet-stream';
export const KIND = selectedServerKind();

export type Server = TestServer;
export type Coords = { bucket: string; region: string; accessKeyId: string; secretAccessKey: string };

export function backendAt(endpoint: string, server: Coords, overrides: Record<string, unknown> = {}): S3StorageBackend {
  return new S3StorageBackend({
    bucket: server.bucket,
    endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    multipart: MULTIPART,
    retry: RETRY,
    timeouts: TIMEOUTS,
    ...overrides,
  });
}

export const target = (port: number) => ({ host: '127.0.0.1', port });

export interface Proxied {
  server: Server;
  proxy: TestProxy;
  /** Through the proxy. */
  b: S3StorageBackend;
  /** Straight to the server. */
  direct: S3StorageBackend;
}

/**
 * A private server of the selected kind with a proxy in front, for a describe block:
 * `beforeAll(async () => ({ server, proxy, b, direct } = await startProxied()))` and
 * `afterAll(() => stopProxied(server, proxy))`.
 */
export async function startProxied(overrides: Record<string, unknown> = {}): Promise<Proxied> {
  const server = await startTestServer();
  const proxy = await startProxy(target(server.port));
  return { server, proxy, b: backendAt(proxy.endpoint, server, overrides), direct: backendAt(server.endpoint, server, overrides) };
}

export async function stopProxied(server: Server | undefined, ...proxies: (TestProxy | undefined)[]) {
  for (const p of proxies) await p?.close();
  await server?.stop();
}

/** The error `p` rejected with (fails the test if it resolved). */
export async function rejection(p: Promise<unknown>): Promise<StorageError> {
  const r = await p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in r)) throw new Error(`expected a rejection, got ${inspect(r.value)}`);
  return r.error as StorageError;
}

/** `p`'s outcome: `{}` when it resolved, `{ error }` when it rejected. */
export const settle = (p: Promise<unknown>): Promise<{ error?: unknown }> =>
  p.then(
    () => ({}),
    (error: unknown) => ({ error }),
  );

/** Asserts a typed StorageError with this reason (and operation, when given). */
export function expectTyped(err: unknown, reason: string, operation?: string, key?: string) {
  expect(err, inspect(err)).toBeInstanceOf(StorageError);
  const e = err as StorageError;
  expect(e.details?.reason, e.message).toBe(reason);
  expect(e.reason).toBe(reason);
  if (operation) expect(e.details?.operation).toBe(operation);
  if (key !== undefined) expect(e.details?.key).toBe(key);
  expect(e.statusCode).toBe(reason === 'invalid_argument' ? 400 : reason === 'unavailable' ? 503 : 500);
}

/** What the server holds under `key`: "absent" or "<bytes>:<sha256>". */
export async function holds(b: S3StorageBackend, key: string): Promise<string> {
  if (!(await b.exists(key))) return 'absent';
  const { bytes, sha256: h } = await hashStream(await b.download(key));
  return `${bytes}:${h}`;
}
export const fp = (data: Buffer) => `${data.length}:${sha256(data)}`;

/**
 * Unfinished uploads on the server: its multipart uploads (ListMultipartUploads; on s3s-fs,
 * which lacks it, the state files) and on s3s-fs also its streaming temp files.
 */
export function unfinished(server: Server): Promise<string[]> {
  return unfinishedUploads(server, { tempFiles: true });
}

/**
 * No unfinished upload remains (a cut upload's temp file goes once the server noticed).
 * Durations are recorded as figures for docs/reliability.md; where a test bounds one, the
 * bound is a behaviour (e.g. "at once, not after requestMs"), not a performance limit.
 */
export async function expectNoLeftovers(server: Server, ignore: Set<string> = new Set()) {
  await expect.poll(async () => (await unfinished(server)).filter((f) => !ignore.has(f)), { timeout: 5_000, interval: 50 }).toEqual([]);
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: Math.round(performance.now() - t0), value };
}

/** `total` random bytes in `chunk`-sized pieces, one every `everyMs` (a slow disk). */
export function slowSource(total: number, chunk: number, everyMs: number) {
  let sent = 0;
  const data: Buffer[] = [];
  const stream = new Readable({
    read() {
      if (sent >= total) {
        this.push(null);
        return;
      }
      setTimeout(() => {
        const piece = randomBuffer(Math.min(chunk, total - sent));
        sent += piece.length;
        data.push(piece);
        this.push(piece);
      }, everyMs);
    },
  });
  return { stream, sent: () => sent, bytes: () => Buffer.concat(data) };
}

/** `before` bytes, then never another byte and never an end. */
export function silentSource(before: number, chunk = 256 * KiB) {
  let sent = 0;
  const stream = new Readable({
    read() {
      if (sent >= before) return; // nothing more, ever
      const size = Math.min(chunk, before - sent);
      sent += size;
      this.push(randomBuffer(size));
    },
  });
  return { stream, sent: () => sent };
}

export const until = async (cond: () => boolean, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(5);
  }
};

/** Figures for docs/reliability.md, printed as FAULT-FIGURES {...} once the file's tests ran. */
export function faultFigures(): Record<string, any> {
  const figures: Record<string, any> = {};
  afterAll(() => {
    console.log(`FAULT-FIGURES ${JSON.stringify(figures)}`);
  });
  return figures;
}
