// A distributed store: a three-node Garage cluster (replication factor 3, startGarageCluster
// in scripts/s3-server.mjs) with the backend talking to node 0. Another node is killed
// (SIGKILL) mid-upload, mid-download and between operations, and restarted; then node 0
// itself is killed and restarted. Every call must end in success or a typed StorageError
// within its bound (never a hang), and every upload that resolved must read back byte for
// byte (SHA-256) while the node is down and after it is back. Figures: CLUSTER-FIGURES {...},
// docs/reliability.md ("A distributed store").
//
// When it runs: the test starts its own cluster and ignores the suite's server, so running it
// once per server would repeat the same thing. It runs in the Garage pass of the matrix
// (S3_TEST_SERVER=garage: `npm run test:matrix`), and in a plain `npx vitest run` (no
// S3_TEST_SERVER) when the garage binary is installed. In the other passes (npm test runs
// builtin and s3s-fs; moto) and without garage its tests are skipped with the reason shown.
import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StorageError, type S3StorageBackend } from '../lib/index.mjs';
import { findGarage, startGarageCluster, type GarageCluster } from '../scripts/s3-server.mjs';
import { backendAt, expectTyped, fp, holds, OCTET, slowSource, streamOf, until } from './helpers/faults';
import { uniqueKey } from './helpers/s3';
import { generatedSource, hashStream, KiB, MiB, randomBuffer, sleep } from './helpers/streams';

const selected = process.env.S3_TEST_SERVER;
const garageInstalled = (() => {
  try {
    return !!findGarage();
  } catch {
    return false; // GARAGE_BIN names no executable
  }
})();
const RUN = selected === 'garage' || (!selected && garageInstalled);
const WHY_SKIPPED = selected
  ? `runs in the garage pass (S3_TEST_SERVER=garage, npm run test:matrix), not with S3_TEST_SERVER=${selected}`
  : 'garage not installed (cargo install garage@2.5.0 --locked, or GARAGE_BIN)';

/** No call may take longer: 3 attempts × requestMs 5 s plus backoff is 15 s; a slow source adds a few. */
const CALL_BOUND_MS = 30_000;
const CLIENT = 0;

type Outcome = 'ok' | string; // 'ok' or the StorageError reason
interface Call {
  op: string;
  key: string;
  bytes: number;
  start: number;
  end: number;
  outcome: Outcome;
}

describe('a three-node Garage cluster, one node killed and restarted', () => {
  let cluster: GarageCluster;
  /** Talks to node 0 only. */
  let b: S3StorageBackend;
  /** One backend per node, for reading back through each of them. */
  let via: S3StorageBackend[];
  const t0 = performance.now();
  const now = () => Math.round(performance.now() - t0);
  /** Every upload that resolved and was not deleted since: key -> "<bytes>:<sha256>". */
  const acked = new Map<string, string>();
  /** Every upload tried: key -> what it sent. */
  const sent = new Map<string, string>();
  const calls: Call[] = [];
  const figures: Record<string, any> = {};

  /** `p`, or a failure of the test when it has no outcome within `ms` (a hang). */
  async function bounded<T>(label: string, p: Promise<T>, ms = CALL_BOUND_MS): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${label}: no outcome within ${ms} ms (a hang)`)), ms);
    });
    try {
      return await Promise.race([p, hang]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs one backend call within its bound and records it; returns its error (undefined when it
   * resolved). Any rejection must be a typed StorageError; `reasons` lists the ones allowed.
   */
  async function call(op: string, key: string, bytes: number, fn: () => Promise<unknown>, reasons = ['unavailable']): Promise<StorageError | undefined> {
    const start = now();
    const error = await bounded(`${op} ${key}`, fn().then(() => undefined, (e: unknown) => e ?? new Error('rejected without a reason')));
    const c: Call = { op, key, bytes, start, end: now(), outcome: 'ok' };
    calls.push(c);
    if (error === undefined) return undefined;
    expect(error, inspect(error)).toBeInstanceOf(StorageError);
    const e = error as StorageError;
    c.outcome = e.details?.reason ?? 'untyped';
    expect(reasons, `${op} ${key}: ${e.message}`).toContain(e.details?.reason);
    expectTyped(e, e.details.reason, op, key);
    return e;
  }

  /** Uploads `data` through node 0; on success the key joins `acked`. */
  async function upload(key: string, data: Buffer, body: () => unknown = () => data, contentLength?: number) {
    sent.set(key, fp(data));
    const err = await call('upload', key, data.length, () => b.upload({ key, body: body() as Buffer, contentType: OCTET, ...(contentLength === undefined ? {} : { contentLength }) }));
    if (!err) acked.set(key, fp(data));
    return err;
  }

  /** Every acknowledged upload, read back through `backend`, is the bytes that were sent. */
  async function expectAckedIntact(backend: S3StorageBackend, label: string) {
    expect(acked.size).toBeGreaterThan(0);
    const start = now();
    let maxMs = 0;
    for (const [key, want] of acked) {
      const t = now();
      const got = await bounded(`read back ${key} via ${label}`, holds(backend, key));
      expect(got, `${key} via ${label}`).toBe(want);
      maxMs = Math.max(maxMs, now() - t);
    }
    (figures.readBacks ??= []).push({ via: label, objects: acked.size, ms: now() - start, maxMs });
  }

  const summary = (list: Call[], killAt: number) => {
    const spanning = list.filter((c) => c.start <= killAt && c.end >= killAt);
    const outcomes: Record<string, number> = {};
    for (const c of list) outcomes[c.outcome] = (outcomes[c.outcome] ?? 0) + 1;
    return {
      calls: list.length,
      outcomes,
      spanningKill: spanning.map((c) => ({ op: c.op, bytes: c.bytes, ms: c.end - c.start, msAfterKill: c.end - killAt, outcome: c.outcome })),
      maxMs: Math.max(...list.map((c) => c.end - c.start)),
    };
  };

  const restart = async (i: number) => {
    const t = now();
    await bounded(`restart node ${i}`, cluster.start(i), 60_000);
    (figures.restartMs ??= []).push(now() - t);
  };

  beforeAll(async () => {
    if (!RUN) {
      console.info(`cluster.test.ts: skipped, ${WHY_SKIPPED}`);
      return;
    }
    const t = now();
    cluster = await startGarageCluster({ nodes: 3 });
    figures.startMs = now() - t;
    b = backendAt(cluster.endpoint, cluster);
    via = cluster.endpoints.map((endpoint) => backendAt(endpoint, cluster));
  }, 90_000);

  afterAll(async () => {
    if (!RUN) return;
    figures.totalCalls = calls.length;
    figures.uploadsTried = sent.size;
    figures.totalMs = now();
    console.log(`CLUSTER-FIGURES ${JSON.stringify(figures)}`);
    await cluster?.stop();
  });

  it('three nodes, replication factor 3: an object written through node 0 reads back byte-identical through nodes 1 and 2', async ({ skip }) => {
    skip(!RUN, WHY_SKIPPED);
    expect(cluster.endpoints).toHaveLength(3);
    expect(cluster.replicationFactor).toBe(3);
    expect(new Set(cluster.endpoints).size).toBe(3);
    const key = uniqueKey('cluster-first');
    const data = randomBuffer(3 * MiB + 5);
    expect(await upload(key, data)).toBeUndefined();
    for (const i of [1, 2]) expect(await holds(via[i], key)).toBe(fp(data));
    // every node sees the other two
    const status = await cluster.status(CLIENT);
    for (const id of cluster.nodeIds) expect(status).toContain(id.slice(0, 16));
  });

  it('node 2 killed (SIGKILL) mid-upload of a 24 MiB multipart stream and of Buffers: each call succeeds or rejects unavailable within its bound; every resolved upload reads back byte-identical through nodes 0 and 1 while node 2 is down', async ({ skip }) => {
    skip(!RUN, WHY_SKIPPED);
    const victim = 2;
    // The stream: 24 MiB without a length (multipart, 5 MiB parts), 256 KiB every 8 ms at
    // most (about 1 s in all), so that most of it is still to come at the kill.
    const streamKey = uniqueKey('cluster-stream');
    const src = slowSource(24 * MiB, 256 * KiB, 8);
    let streamDone = false;
    sent.set(streamKey, 'the stream');
    const streamCall = call('upload', streamKey, 24 * MiB, () => b.upload({ key: streamKey, body: src.stream, contentType: OCTET })).then((err) => {
      streamDone = true;
      if (!err) acked.set(streamKey, fp(src.bytes()));
      return err;
    });
    // Buffers, one after another while the stream runs: 1 MiB (one PutObject), then 6 MiB
    // twice (multipart from memory, 2 parts), and so on.
    let killAt = Infinity;
    let inFlight: number | undefined;
    let startedAfterKill = 0;
    const bufferKeys: string[] = [];
    const bufferLoop = (async () => {
      // At most 16 (about 56 MiB); stops once the stream settled and two began after the kill.
      for (let n = 0; n < 16 && !(streamDone && startedAfterKill >= 2); n++) {
        if (killAt !== Infinity) startedAfterKill++;
        const size = n % 3 ? 6 * MiB : MiB;
        const key = uniqueKey(`cluster-buffer-${n}`);
        bufferKeys.push(key);
        inFlight = size;
        await upload(key, randomBuffer(size));
        inFlight = undefined;
      }
    })();
    // Kill once the stream is into its second part and a 6 MiB Buffer is being sent.
    await until(() => (src.sent() >= 6 * MiB && inFlight === 6 * MiB) || streamDone, 20_000);
    expect(streamDone, 'the stream upload ended before the kill').toBe(false);
    killAt = now();
    await cluster.kill(victim);
    figures.midUploadKillAfterStreamBytes = src.sent();
    await Promise.all([streamCall, bufferLoop]);

    const mine = calls.filter((c) => c.key === streamKey || bufferKeys.includes(c.key));
    const s = summary(mine, killAt);
    figures.midUpload = s;
    // The kill hit calls under way: the stream and at least one Buffer upload.
    expect(s.spanningKill.length).toBeGreaterThanOrEqual(2);
    expect(mine.some((c) => c.key !== streamKey && c.start <= killAt && c.end >= killAt)).toBe(true);
    // A rejected upload stored nothing, or the whole object (never a part of it).
    for (const c of mine.filter((x) => x.outcome !== 'ok')) {
      const held = await holds(b, c.key);
      if (c.key === streamKey) expect(held === 'absent' || held === fp(src.bytes()), `${c.key}: ${held}`).toBe(true);
      else expect(['absent', sent.get(c.key)]).toContain(held);
    }
    // While node 2 is down, through node 0 (the client's) and node 1.
    expect(cluster.running(victim)).toBe(false);
    await expectAckedIntact(via[0], 'node 0 (node 2 down)');
    await expectAckedIntact(via[1], 'node 1 (node 2 down)');
  });

  it('node 2 restarted on the same ports and data: every resolved upload reads back byte-identical through node 0 and through node 2 itself', async ({ skip }) => {
    skip(!RUN, WHY_SKIPPED);
    await restart(2);
    expect(cluster.running(2)).toBe(true);
    await expectAckedIntact(via[0], 'node 0 (node 2 back)');
    await expectAckedIntact(via[2], 'node 2 (restarted)');
  });

  it('node 1 killed mid-download of a 24 MiB object read slowly: the stream ends byte-identical or errors unavailable (never a silent truncation), within its bound', async ({ skip }) => {
    skip(!RUN, WHY_SKIPPED);
    const victim = 1;
    const key = uniqueKey('cluster-download');
    const data = randomBuffer(24 * MiB);
    expect(await upload(key, data)).toBeUndefined();
    let received = 0;
    let killAt = Infinity;
    let whole = '';
    const started = now();
    const err = await call('download', key, data.length, async () => {
      const stream = await b.download(key);
      const hash = createHash('sha256');
      for await (const chunk of stream) {
        const buf = chunk as Buffer;
        hash.update(buf);
        received += buf.length;
        if (killAt === Infinity && received >= 2 * MiB) {
          killAt = now();
          await cluster.kill(victim);
        }
        // a slow reader: at most 12 MiB/s, so about 2 s for the whole object
        const ahead = received / (12 * MiB / 1000) - (now() - started);
        if (ahead > 0) await sleep(ahead);
      }
      whole = `${received}:${hash.digest('hex')}`;
    });
    expect(killAt).toBeLessThan(Infinity); // the kill happened mid-download
    expect(cluster.running(victim)).toBe(false);
    if (err) expect(received).toBeLessThan(data.length);
    else expect(whole).toBe(fp(data));
    figures.midDownload = { ...summary(calls.filter((c) => c.key === key && c.op === 'download'), killAt), receivedBeforeKill: 2 * MiB, received };
    await restart(victim);
    expect(await holds(via[victim], key)).toBe(fp(data));
  });

  it('node 2 killed between operations: 8 rounds of upload (Buffer, sized stream, unsized multipart stream), exists, download and delete through node 0 all succeed while it is down', async ({ skip }) => {
    skip(!RUN, WHY_SKIPPED);
    const victim = 2;
    // all nodes up, the connection to node 0 warm
    expect(await b.exists(uniqueKey('cluster-none'))).toBe(false);
    const killAt = now();
    await cluster.kill(victim);
    const before = calls.length;
    for (let round = 0; round < 8; round++) {
      const key = uniqueKey(`cluster-down-${round}`);
      const kind = round % 3;
      const data = randomBuffer(kind === 2 ? 6 * MiB + 3 : 256 * KiB + round);
      const err =
        kind === 0
          ? await upload(key, data)
          : kind === 1
            ? await upload(key, data, () => streamOf([data.subarray(0, 1000), data.subarray(1000)]), data.length)
            : await upload(key, data, () => streamOf([data.subarray(0, 4 * MiB), data.subarray(4 * MiB)]));
      expect(err, `upload round ${round}: ${err?.message}`).toBeUndefined();
      let exists = false;
      expect(await call('exists', key, 0, async () => (exists = await b.exists(key)))).toBeUndefined();
      expect(exists).toBe(true);
      let got = { bytes: 0, sha256: '' };
      expect(await call('download', key, data.length, async () => (got = await hashStream(await b.download(key))))).toBeUndefined();
      expect(`${got.bytes}:${got.sha256}`).toBe(fp(data));
      if (round % 2) {
        expect(await call('delete', key, 0, () => b.delete(key))).toBeUndefined();
        acked.delete(key);
        expect(await b.exists(key)).toBe(false);
      }
    }
    const mine = calls.slice(before);
    expect(mine.every((c) => c.outcome === 'ok')).toBe(true);
    figures.betweenOperations = { ...summary(mine, killAt), firstCallAfterKillMs: mine[0].end - mine[0].start, p50Ms: mine.map((c) => c.end - c.start).sort((x, y) => x - y)[Math.floor(mine.length / 2)] };
    await expectAckedIntact(via[0], 'node 0 (node 2 down)');
    await restart(victim);
    await expectAckedIntact(via[victim], 'node 2 (restarted)');
  });

  it("node 0, the one the client talks to, killed: every method rejects unavailable within its bound; restarted, the same backend instance works again", async ({ skip }) => {
    skip(!RUN, WHY_SKIPPED);
    await cluster.kill(CLIENT);
    const key = uniqueKey('cluster-client-down');
    const before = calls.length;
    const attempts: [string, number, () => Promise<unknown>][] = [
      ['exists', 0, () => b.exists(key)],
      ['download', 0, () => b.download(key)],
      ['delete', 0, () => b.delete(key)],
      ['upload', KiB, () => b.upload({ key, body: randomBuffer(KiB), contentType: OCTET })],
      ['upload', KiB, () => b.upload({ key, body: streamOf([randomBuffer(KiB)]), contentType: OCTET, contentLength: KiB })],
      ['upload', 7 * MiB, () => b.upload({ key, body: generatedSource(7 * MiB).stream, contentType: OCTET })],
    ];
    for (const [op, bytes, fn] of attempts) {
      const err = await call(op, key, bytes, fn);
      expect(err, `${op} resolved with node 0 down`).toBeDefined();
      expectTyped(err, 'unavailable', op, key);
    }
    const down = calls.slice(before);
    figures.clientNodeDown = { calls: down.length, outcomes: down.map((c) => `${c.op}:${c.outcome}`), ms: down.map((c) => c.end - c.start) };
    // The other nodes still serve what was acknowledged.
    await expectAckedIntact(via[1], 'node 1 (node 0 down)');

    await restart(CLIENT);
    const after = calls.length;
    const data = randomBuffer(6 * MiB + 1);
    expect(await upload(key, data)).toBeUndefined();
    let exists = false;
    expect(await call('exists', key, 0, async () => (exists = await b.exists(key)))).toBeUndefined();
    expect(exists).toBe(true);
    expect(await holds(b, key)).toBe(fp(data));
    expect(await call('delete', key, 0, () => b.delete(key))).toBeUndefined();
    acked.delete(key);
    expect(await b.exists(key)).toBe(false);
    figures.clientNodeBack = { calls: calls.length - after, ms: calls.slice(after).map((c) => c.end - c.start) };
  });

  it('all three nodes back: every upload that ever resolved reads back byte-identical through each node', async ({ skip }) => {
    skip(!RUN, WHY_SKIPPED);
    for (let i = 0; i < 3; i++) expect(cluster.running(i)).toBe(true);
    for (let i = 0; i < 3; i++) await expectAckedIntact(via[i], `node ${i}`);
    figures.acked = { objects: acked.size, bytes: [...acked.values()].reduce((n, v) => n + Number(v.split(':')[0]), 0) };
  });
});
