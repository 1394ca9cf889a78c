import { once } from 'node:events';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileNotFoundError, S3StorageBackend, StorageError } from '../lib/index.mjs';
import { startProxy, type TestProxy } from './helpers/proxy.mjs';
import { testServer, uniqueKey } from './helpers/s3';
import { drain, generatedSource, hashStream, md5, MiB, randomBuffer, readAll, sampleRss, sha256, sleep } from './helpers/streams';

const s3 = testServer();

function backendAt(endpoint: string): S3StorageBackend {
  return new S3StorageBackend({
    bucket: s3.bucket,
    endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
}

const backend = backendAt(s3.endpoint);
const target = { host: new URL(s3.endpoint).hostname, port: s3.port };

/** Resolves on 'close' (events.once would reject on the AbortError a `break` emits). */
const closeOf = (stream: Readable) => new Promise<void>((resolve) => stream.once('close', () => resolve()));

/** Polls `check` until it holds or `ms` passed; returns its last value. */
async function eventually<T>(check: () => T, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  let value = check();
  while (!ok(value) && Date.now() < end) {
    await sleep(25);
    value = check();
  }
  return value;
}

describe('download: bytes', () => {
  const key = uniqueKey('download/bytes');
  const data = randomBuffer(3 * MiB + 17);
  beforeAll(async () => {
    await backend.upload({ key, body: data, contentType: 'application/x-test' });
  });
  afterAll(() => backend.delete(key));

  it('resolves to a Readable with the exact bytes (for await) and the response headers', async () => {
    const stream = await backend.download(key);
    expect(stream).toBeInstanceOf(Readable);
    expect(stream.contentLength).toBe(data.length);
    expect(stream.contentType).toBe('application/x-test');
    expect(stream.etag).toBe(`"${md5(data)}"`);
    const got = await hashStream(stream);
    expect(got).toEqual({ bytes: data.length, sha256: sha256(data) });
  });

  it('can be piped into a Writable with .pipe()', async () => {
    const stream = await backend.download(key);
    const hash = createHash('sha256');
    let bytes = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        bytes += chunk.length;
        cb();
      },
    });
    stream.pipe(sink);
    await once(sink, 'finish');
    expect(bytes).toBe(data.length);
    expect(hash.digest('hex')).toBe(sha256(data));
  });

  it('works with stream.pipeline', async () => {
    const hash = createHash('sha256');
    await pipeline(await backend.download(key), hash);
    expect(hash.digest('hex')).toBe(sha256(data));
  });

  it('a zero-byte object gives an empty stream that ends', async () => {
    const empty = uniqueKey('download/empty');
    await backend.upload({ key: empty, body: Buffer.alloc(0), contentType: 'text/plain' });
    try {
      const stream = await backend.download(empty);
      const ended = once(stream, 'end');
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      await ended;
      expect(chunks).toEqual([]);
      expect(stream.contentLength).toBe(0);
    } finally {
      await backend.delete(empty);
    }
  });
});

describe('download: missing key', () => {
  it('rejects the download() promise itself with FileNotFoundError', async () => {
    const key = uniqueKey('download/missing');
    const err = await backend.download(key).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect(err).toMatchObject({ code: 'FILE_NOT_FOUND', statusCode: 404, details: { key } });
  });
});

describe('download: flow control', () => {
  const key = uniqueKey('download/64m');
  let digest = '';
  beforeAll(async () => {
    const src = generatedSource(64 * MiB);
    await backend.upload({ key, body: src.stream, contentType: 'application/octet-stream' });
    digest = src.sha256();
  });
  afterAll(() => backend.delete(key));

  it('a consumer that pauses keeps the buffered data small (64 MiB object)', async () => {
    const stream = await backend.download(key);
    const hash = createHash('sha256');
    let bytes = 0;
    let maxBuffered = 0;
    let pauses = 0;
    const rss = sampleRss(50);
    let pausedRise = 0;
    for await (const chunk of stream) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      if (pauses < 6) {
        pauses++;
        await sleep(300);
        maxBuffered = Math.max(maxBuffered, stream.readableLength);
        if (pauses === 6) pausedRise = rss.stop();
      }
    }
    rss.stop();
    expect(bytes).toBe(64 * MiB);
    expect(hash.digest('hex')).toBe(digest);
    expect(maxBuffered).toBeLessThanOrEqual(4 * MiB);
    expect(pausedRise).toBeLessThan(32 * MiB);
  });
});

describe('download: destroy', () => {
  const key = uniqueKey('download/8m');
  const data = randomBuffer(8 * MiB);
  beforeAll(async () => {
    await backend.upload({ key, body: data, contentType: 'application/octet-stream' });
  });
  afterAll(() => backend.delete(key));

  async function normalTraffic() {
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        if (i % 2) return backend.exists(key);
        return (await hashStream(await backend.download(key))).sha256;
      }),
    );
    for (const [i, r] of results.entries()) expect(r).toBe(i % 2 ? true : sha256(data));
  }

  it('200 downloads destroyed after their first chunk close, and later calls still work', async () => {
    const streams = await Promise.all(Array.from({ length: 200 }, () => backend.download(key)));
    const firstChunks = await Promise.all(
      streams.map(async (stream) => {
        const closed = closeOf(stream);
        let first: Buffer | undefined;
        for await (const chunk of stream) {
          first = chunk as Buffer;
          break; // destroys the stream
        }
        await closed;
        return first;
      }),
    );
    for (const first of firstChunks) {
      expect(first!.length).toBeGreaterThan(0);
      expect(first!.equals(data.subarray(0, first!.length))).toBe(true);
    }
    expect(streams.every((s) => s.destroyed)).toBe(true);
    await normalTraffic();
  });

  it('200 downloads destroyed without reading close, and later calls still work', async () => {
    const streams = await Promise.all(Array.from({ length: 200 }, () => backend.download(key)));
    await Promise.all(
      streams.map(async (stream) => {
        const closed = closeOf(stream);
        stream.destroy();
        await closed;
      }),
    );
    await normalTraffic();
  });

  describe('through a proxy that counts connections', () => {
    let proxy: TestProxy;
    afterAll(() => proxy?.close());

    it('destroy() closes the connection even while a read is waiting for data', async () => {
      // The body stalls right after the headers, so the stream's first read waits on the network.
      proxy = await startProxy(target);
      proxy.stallResponse(0, 1, { method: 'GET' });
      const proxied = backendAt(proxy.endpoint);
      const stream = await proxied.download(key);
      expect(stream.read()).toBeNull(); // starts a read; no data yet
      await sleep(100);
      expect(proxy.faults()).toEqual({ stallResponse: 1 });
      const closed = closeOf(stream);
      stream.destroy();
      await closed;
      // The service sends the body now; the destroyed stream must not keep the connection.
      proxy.release();
      const open = await eventually(
        () => proxy.openConnections(),
        (n) => n === 0,
        5_000,
      );
      expect(stream.destroyed).toBe(true); // (keeps `stream` reachable until here: no GC rescue)
      expect(open).toBe(0);
    });
  });
});

describe('download: broken connection', () => {
  const key = uniqueKey('download/4m');
  const data = randomBuffer(4 * MiB);
  let proxy: TestProxy;
  let proxied: S3StorageBackend;
  beforeAll(async () => {
    await backend.upload({ key, body: data, contentType: 'application/octet-stream' });
    // Every answer to a GET ends (FIN) after 1 MiB of its body.
    proxy = await startProxy(target);
    proxy.cutResponse(MiB, Infinity, { method: 'GET' });
    proxied = backendAt(proxy.endpoint);
  });
  afterAll(async () => {
    await proxy.close();
    await backend.delete(key);
  });

  it('a connection cut mid-body on every GET: resumed from the next byte up to retry.maxAttempts (3) GETs, then the stream emits StorageError(unavailable)', async () => {
    const faultsBefore = proxy.faults().cutResponse ?? 0;
    const stream = await proxied.download(key);
    const { received, caught } = await drain(stream);
    // Each GET brings 1 MiB more (resume.test.ts checks the Range of each).
    expect(proxy.faults().cutResponse).toBe(faultsBefore + 3);
    expect(received).toBe(3 * MiB);
    expect(caught).toBeInstanceOf(StorageError);
    expect((caught as StorageError).details).toMatchObject({ reason: 'unavailable', operation: 'download', key });
    expect((caught as StorageError).statusCode).toBe(503);
  });

  it('stream.pipeline rejects with the typed error too', async () => {
    const stream = await proxied.download(key);
    const hash = createHash('sha256');
    const err = await pipeline(stream, hash).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).reason).toBe('unavailable');
  });
});

describe('download: keys that need encoding', () => {
  const keys = [
    'dl keys/with spaces/file name.txt',
    'dl keys/plus+sign+1.txt',
    'dl keys/hash#fragment.txt',
    'dl keys/question?mark=1&x=2.txt',
    'dl keys/parens (1) [2] {3}.txt',
    'dl keys/percent%20not%2Fencoded.txt',
    "dl keys/punct~*,;:@$!'=.txt",
    'dl keys/unicode/日本語/ファイル-é-ü-😀.txt',
    // s3s-fs keeps keys in file names: it refuses keys over ~150 bytes
    `dl keys/deep/${Array.from({ length: 20 }, (_, i) => `d${i}`).join('/')}/leaf.bin`,
  ];
  const prefix = uniqueKey('k');

  it.each(keys)('round-trips %s', async (name) => {
    const key = `${prefix}/${name}`;
    const data = randomBuffer(1000 + key.length);
    await backend.upload({ key, body: data, contentType: 'application/octet-stream' });
    try {
      expect(await backend.exists(key)).toBe(true);
      const got = await readAll(await backend.download(key));
      expect(got.equals(data)).toBe(true);
    } finally {
      await backend.delete(key);
    }
    expect(await backend.exists(key)).toBe(false);
  });
});

describe('downloadBuffer', () => {
  const small = randomBuffer(10 * 1024);
  const large = randomBuffer(3 * MiB + 123);
  const smallKey = uniqueKey('download-buffer/small');
  const largeKey = uniqueKey('download-buffer/large');
  const emptyKey = uniqueKey('download-buffer/empty');
  beforeAll(async () => {
    await backend.upload({ key: smallKey, body: small, contentType: 'application/octet-stream' });
    await backend.upload({ key: largeKey, body: large, contentType: 'application/octet-stream' });
    await backend.upload({ key: emptyKey, body: Buffer.alloc(0), contentType: 'application/octet-stream' });
  });

  it('resolves to a Buffer with the exact bytes: a small object (one native call), a 3 MiB one (1 MiB reads), an empty one', async () => {
    const got = await backend.downloadBuffer(smallKey);
    expect(Buffer.isBuffer(got)).toBe(true);
    expect(sha256(got)).toBe(sha256(small));
    expect(sha256(await backend.downloadBuffer(largeKey))).toBe(sha256(large));
    expect((await backend.downloadBuffer(emptyKey)).length).toBe(0);
  });

  it('takes download() options: a range gives those bytes, onProgress ends at the total', async () => {
    const part = await backend.downloadBuffer(largeKey, { range: { start: MiB - 10, end: 2 * MiB + 9 } });
    expect(part.equals(large.subarray(MiB - 10, 2 * MiB + 10))).toBe(true);
    const events: { loaded: number; total?: number }[] = [];
    await backend.downloadBuffer(largeKey, { onProgress: (e) => events.push(e) });
    expect(events.at(-1)).toEqual({ loaded: large.length, total: large.length });
    expect(events.map((e) => e.loaded)).toEqual([...events.map((e) => e.loaded)].sort((a, b) => a - b));
  });

  it('rejects with FileNotFoundError for a missing key, and with reason aborted for an aborted signal', async () => {
    const missing = uniqueKey('download-buffer/missing');
    const err = await backend.downloadBuffer(missing).catch((e) => e);
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect(err.details).toMatchObject({ key: missing, operation: 'download', reason: 'not_found' });
    const aborted = await backend.downloadBuffer(largeKey, { signal: AbortSignal.abort() }).catch((e) => e);
    expect(aborted).toBeInstanceOf(StorageError);
    expect(aborted.details.reason).toBe('aborted');
  });

  it('rejects an unknown option, as download() does', async () => {
    const err = await backend.downloadBuffer(smallKey, { rnage: { start: 0 } } as never).catch((e) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect(err.details.reason).toBe('invalid_argument');
    expect(err.message).toMatch(/rnage/);
  });
});
