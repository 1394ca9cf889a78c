import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3StorageBackend, StorageError } from '../lib/index.mjs';
import { startProxy, type TestProxy } from './helpers/proxy.mjs';
import { startTestServer, type TestServer } from './helpers/servers';
import { testServer, unfinishedUploads, uniqueKey } from './helpers/s3';
import { failingSource, generatedSource, hashStream, KiB, md5, MiB, randomBuffer, readAll, sampleRss, sha256, sleep, streamOf } from './helpers/streams';

const s3 = testServer();
const MULTIPART = { partSize: 5 * MiB, threshold: 5 * MiB, queueSize: 2 };
const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';

function backendAt(
  endpoint: string,
  multipart?: typeof MULTIPART,
  server: { bucket: string; region: string; accessKeyId: string; secretAccessKey: string } = s3,
): S3StorageBackend {
  return new S3StorageBackend({
    bucket: server.bucket,
    endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    multipart,
  });
}

const backend = backendAt(s3.endpoint);
const mpBackend = backendAt(s3.endpoint, MULTIPART);
const target = (port: number) => ({ host: '127.0.0.1', port });

/** What the server holds under `key`: byte count and SHA-256. */
async function stored(key: string, via: S3StorageBackend = backend) {
  return hashStream(await via.download(key));
}

/** Settles `p` and returns the error it rejected with (fails the test if it resolved). */
async function rejection(p: Promise<unknown>): Promise<StorageError> {
  const result = await p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in result)) throw new Error(`expected a rejection, got ${JSON.stringify(result.value)}`);
  return result.error as StorageError;
}

describe('upload: bodies', () => {
  const keys: string[] = [];
  const key = (name: string) => {
    const k = uniqueKey(`upload/${name}`);
    keys.push(k);
    return k;
  };
  afterAll(async () => {
    await Promise.all(keys.map((k) => backend.delete(k)));
  });

  it('a Buffer is stored byte for byte; the etag is its quoted MD5', async () => {
    const k = key('buffer');
    const data = randomBuffer(2 * MiB + 5);
    const out = await backend.upload({ key: k, body: data, contentType: 'application/octet-stream' });
    expect(out).toMatchObject({ key: k, etag: `"${md5(data)}"` });
    expect(await stored(k)).toEqual({ bytes: data.length, sha256: sha256(data) });
  });

  it('a Uint8Array view (with a byte offset into a larger buffer) stores exactly the viewed bytes', async () => {
    const k = key('uint8array');
    const whole = new Uint8Array(randomBuffer(MiB + 100));
    const view = whole.subarray(37, 37 + MiB); // not a Buffer, offset 37
    const out = await backend.upload({ key: k, body: view as Buffer, contentType: 'application/octet-stream' });
    expect(out.etag).toBe(`"${md5(view)}"`);
    expect(await stored(k)).toEqual({ bytes: MiB, sha256: sha256(view) });
  });

  /** A web ReadableStream of `data` in 64 KiB chunks, pulled on demand. */
  const webStream = (data: Buffer) => {
    let offset = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= data.length) return controller.close();
        controller.enqueue(new Uint8Array(data.subarray(offset, offset + 64 * KiB)));
        offset += 64 * KiB;
      },
    });
  };

  it('a web ReadableStream with and without contentLength (one PutObject; multipart above a part) is stored byte for byte', async () => {
    for (const [size, withLength] of [
      [300 * KiB, true],
      [300 * KiB, false],
      [6 * MiB + 7, false],
    ] as const) {
      const k = key(`web-${size}-${withLength}`);
      const data = randomBuffer(size);
      const out = await backend.upload({ key: k, body: webStream(data), contentType: 'application/octet-stream', contentLength: withLength ? size : undefined });
      expect(out.key).toBe(k);
      expect(await stored(k)).toEqual({ bytes: data.length, sha256: sha256(data) });
    }
  });

  it("a web ReadableStream that never ends is cancelled by the signal: rejects aborted, nothing stored, and the stream's cancel is called", async () => {
    const k = key('web-silent');
    let cancelled = false;
    const silent = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new Uint8Array(1000));
      },
      cancel() {
        cancelled = true;
      },
    });
    const ac = new AbortController();
    const upload = backend.upload({ key: k, body: silent, contentType: 'application/octet-stream' }, { signal: ac.signal });
    await sleep(100);
    ac.abort();
    const err = await upload.catch((e: unknown) => e);
    expect((err as StorageError).details?.reason).toBe('aborted');
    expect(cancelled).toBe(true);
    expect(await backend.exists(k)).toBe(false);
  });

  describe('through a recording proxy', () => {
    let proxy: TestProxy;
    let proxied: S3StorageBackend;
    beforeAll(async () => {
      proxy = await startProxy(target(s3.port));
      proxied = backendAt(proxy.endpoint);
    });
    afterAll(() => proxy.close());

    it('a Readable with contentLength goes in one PutObject; the etag is a plain quoted MD5', async () => {
      const k = key('stream-length');
      const data = randomBuffer(7 * MiB + 3);
      const chunks = [data.subarray(0, 1), data.subarray(1, 3 * MiB), data.subarray(3 * MiB, 5 * MiB + 1), data.subarray(5 * MiB + 1)];
      proxy.clearLog();
      const out = await proxied.upload({ key: k, body: streamOf(chunks), contentType: 'application/octet-stream', contentLength: data.length });
      expect(out.etag).toBe(`"${md5(data)}"`);
      expect(proxy.requests.map((r) => [r.method, r.url.split('?')[0]])).toEqual([['PUT', `/${s3.bucket}/${k}`]]);
      expect(proxy.requests[0].url).not.toMatch(/[?&](uploads|uploadId|partNumber)\b/);
      expect(proxy.requests[0].headers['content-length']).toBe(String(data.length));
      expect(await stored(k)).toEqual({ bytes: data.length, sha256: sha256(data) });
    });

    it('a small Readable without length is stored whole in one PutObject', async () => {
      const k = key('stream-small');
      const data = randomBuffer(300 * KiB + 1);
      proxy.clearLog();
      const out = await proxied.upload({
        key: k,
        body: streamOf([data.subarray(0, 100 * KiB), data.subarray(100 * KiB)]),
        contentType: 'application/octet-stream',
      });
      expect(out.etag).toBe(`"${md5(data)}"`);
      expect(proxy.requests.map((r) => r.method)).toEqual(['PUT']);
      expect(await stored(k)).toEqual({ bytes: data.length, sha256: sha256(data) });
    });
  });

  it('a Readable without length larger than a part goes multipart (23 MiB -> 5 parts)', async () => {
    const k = key('stream-multipart');
    const src = generatedSource(23 * MiB, { partSize: MULTIPART.partSize });
    const out = await mpBackend.upload({ key: k, body: src.stream, contentType: 'application/octet-stream' });
    expect(out.etag).toMatch(/^"[0-9a-f]{32}-5"$/);
    expect(out.etag).toBe(src.multipartEtag());
    expect(await stored(k)).toEqual({ bytes: 23 * MiB, sha256: src.sha256() });
  });

  it('a Buffer above the threshold goes multipart from memory (12 MiB -> 3 parts)', async () => {
    const k = key('buffer-multipart');
    const data = randomBuffer(12 * MiB + 1);
    const out = await mpBackend.upload({ key: k, body: data, contentType: 'application/octet-stream' });
    expect(out.etag).toMatch(/^"[0-9a-f]{32}-3"$/);
    expect(await stored(k)).toEqual({ bytes: data.length, sha256: sha256(data) });
  });

  it('a Readable with contentLength above the threshold goes multipart (11 MiB + 1 -> 3 parts)', async () => {
    const k = key('stream-length-multipart');
    const src = generatedSource(11 * MiB + 1, { partSize: MULTIPART.partSize });
    const out = await mpBackend.upload({ key: k, body: src.stream, contentType: 'application/octet-stream', contentLength: 11 * MiB + 1 });
    expect(out.etag).toBe(src.multipartEtag());
    expect(out.etag).toMatch(/-3"$/);
    expect(await stored(k)).toEqual({ bytes: 11 * MiB + 1, sha256: src.sha256() });
  });

  it('chunks may be Buffers, Uint8Arrays and strings (object mode, UTF-8)', async () => {
    const k = key('mixed-chunks');
    const a = randomBuffer(1000);
    const b = new Uint8Array(randomBuffer(3000)).subarray(11, 2011);
    const text = 'héllo wörld — ✓ 😀\n';
    const c = randomBuffer(70 * KiB);
    const body = Readable.from([a, b, text, c, text]);
    const expected = Buffer.concat([a, b, Buffer.from(text, 'utf8'), c, Buffer.from(text, 'utf8')]);
    await backend.upload({ key: k, body, contentType: 'application/octet-stream' });
    expect(await stored(k)).toEqual({ bytes: expected.length, sha256: sha256(expected) });
  });

  it.each(['hex', 'base64', 'latin1', 'utf16le'] as const)(
    'a stream with setEncoding(%s) stores the original bytes',
    async (encoding) => {
      const k = key(`encoding-${encoding}`);
      const data = randomBuffer(300_000);
      const chunks: Buffer[] = [];
      for (let i = 0; i < data.length; i += 4099) chunks.push(data.subarray(i, i + 4099)); // odd sizes
      const body = streamOf(chunks);
      body.setEncoding(encoding);
      await backend.upload({ key: k, body, contentType: 'application/octet-stream' });
      expect(await stored(k)).toEqual({ bytes: data.length, sha256: sha256(data) });
    },
  );

  it.each([
    ['an empty Buffer', () => ({ body: Buffer.alloc(0) })],
    ['an empty Uint8Array', () => ({ body: new Uint8Array(0) as Buffer })],
    ['an empty stream', () => ({ body: Readable.from([]) })],
    ['an empty stream with contentLength 0', () => ({ body: Readable.from([]), contentLength: 0 })],
    ['a stream of empty chunks', () => ({ body: Readable.from([Buffer.alloc(0), '', new Uint8Array(0)]) })],
  ])('%s stores a zero-byte object', async (_name, make) => {
    const k = key('empty');
    const out = await backend.upload({ key: k, contentType: 'text/plain', ...make() });
    expect(out.etag).toBe(`"${EMPTY_MD5}"`);
    expect(await backend.exists(k)).toBe(true);
    expect(await stored(k)).toEqual({ bytes: 0, sha256: sha256('') });
  });
});

describe('upload: contentType and metadata', () => {
  const keys: string[] = [];
  afterAll(async () => {
    await Promise.all(keys.map((k) => backend.delete(k)));
  });

  it.each([
    ['a Buffer', () => ({ body: randomBuffer(10 * KiB) })],
    ['a small stream', () => ({ body: Readable.from([randomBuffer(10 * KiB)]) })],
    ['a stream with contentLength', () => ({ body: Readable.from([randomBuffer(10 * KiB)]), contentLength: 10 * KiB })],
    ['a multipart stream', () => ({ body: generatedSource(11 * MiB).stream })],
  ])('are stored with %s and come back on a GET', async (_name, make) => {
    const k = uniqueKey('upload/meta');
    keys.push(k);
    await mpBackend.upload({
      key: k,
      ...make(),
      contentType: 'application/vnd.test+json; charset=utf-8',
      metadata: { Owner: 'Ada Lovelace', 'project-id': '42', note: 'a=b; c/d (e) ~!' },
    });
    const { url } = await backend.getSignedUrl(k);
    const res = await fetch(url);
    await res.arrayBuffer();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/vnd.test+json; charset=utf-8');
    expect(res.headers.get('x-amz-meta-owner')).toBe('Ada Lovelace');
    expect(res.headers.get('x-amz-meta-project-id')).toBe('42');
    expect(res.headers.get('x-amz-meta-note')).toBe('a=b; c/d (e) ~!');
  });
});

describe('upload: failures leave nothing behind (private server)', () => {
  let server: TestServer;
  let proxy: TestProxy;
  let priv: S3StorageBackend;
  beforeAll(async () => {
    server = await startTestServer();
    proxy = await startProxy(target(server.port));
    priv = backendAt(proxy.endpoint, MULTIPART, server);
  });
  afterAll(async () => {
    await proxy?.close();
    await server?.stop();
  });

  describe('a stream of another length than contentLength', () => {
    it.each([
      // [name, declared, chunks (MiB-sized pieces), multipart?]
      ['one PutObject, one byte too many', 3 * MiB, [MiB, MiB, MiB, 1], false],
      ['one PutObject, too many within a chunk', 3 * MiB, [2 * MiB, 2 * MiB], false],
      ['one PutObject, one byte short', 3 * MiB, [MiB, MiB, MiB - 1], false],
      ['one PutObject, declared 0 but bytes come', 0, [10], false],
      ['multipart, too many', 11 * MiB, Array(12).fill(MiB), true],
      ['multipart, too few', 13 * MiB, Array(12).fill(MiB), true],
    ] as const)('%s: rejects with invalid_argument(contentLength) and stores nothing', async (_name, declared, sizes, multipart) => {
      const key = uniqueKey('mismatch');
      proxy.clearLog();
      const body = streamOf(sizes.map((n) => randomBuffer(n)));
      const err = await rejection(priv.upload({ key, body, contentType: 'application/octet-stream', contentLength: declared }));
      expect(err).toBeInstanceOf(StorageError);
      expect(err.details).toMatchObject({ reason: 'invalid_argument', field: 'contentLength', operation: 'upload', key });
      expect(err.statusCode).toBe(400);
      expect(await priv.exists(key)).toBe(false);
      expect(await unfinishedUploads(server)).toEqual([]);
      if (multipart) {
        // it really went multipart, and the upload was aborted
        expect(proxy.ops()).toContain('create');
        expect(proxy.ops()).toContain('abort');
      } else {
        expect(proxy.ops()).not.toContain('create');
      }
    });
  });

  describe('a source stream that errors halfway', () => {
    const older = randomBuffer(2 * MiB + 1);
    it.each([
      ['one PutObject (contentLength given)', 1 * MiB + 5, 3 * MiB, false],
      ['unknown length, below one part', 300 * KiB, undefined, false],
      ['multipart (unknown length)', 12 * MiB, undefined, true],
      ['multipart (contentLength above threshold)', 12 * MiB, 20 * MiB, true],
    ] as const)('%s: rejects with aborted + cause, stores nothing, keeps an older object', async (_name, before, contentLength, multipart) => {
      for (const existing of [false, true]) {
        const key = uniqueKey('source-error');
        if (existing) await priv.upload({ key, body: older, contentType: 'application/octet-stream' });
        proxy.clearLog();
        const boom = new Error('disk read failed');
        const err = await rejection(
          priv.upload({ key, body: failingSource(before, boom), contentType: 'application/octet-stream', contentLength }),
        );
        expect(err).toBeInstanceOf(StorageError);
        expect(err.details).toMatchObject({ reason: 'aborted', operation: 'upload', key });
        expect(err.cause).toBe(boom);
        expect(await unfinishedUploads(server)).toEqual([]);
        if (multipart) {
          expect(proxy.ops()).toContain('create');
          expect(proxy.ops()).toContain('abort');
        }
        if (existing) {
          expect(await stored(key, priv)).toEqual({ bytes: older.length, sha256: sha256(older) });
        } else {
          expect(await priv.exists(key)).toBe(false);
        }
      }
    });
  });

  it.each([
    ['after 100 KiB', 100 * KiB],
    ['after 12 MiB (multipart started)', 12 * MiB],
  ])('a stream chunk that is not bytes (a number) %s rejects invalid_argument(body) and stores nothing', async (_name, before) => {
    const key = uniqueKey('bad-chunk');
    proxy.clearLog();
    const pieces: unknown[] = [];
    for (let n = 0; n < before; n += MiB) pieces.push(randomBuffer(Math.min(MiB, before - n)));
    pieces.push(42);
    const err = await rejection(priv.upload({ key, body: Readable.from(pieces), contentType: 'application/octet-stream' }));
    expect(err).toBeInstanceOf(StorageError);
    expect(err.details).toMatchObject({ reason: 'invalid_argument', field: 'body', key });
    expect(await priv.exists(key)).toBe(false);
    expect(await unfinishedUploads(server)).toEqual([]);
    if (before > MULTIPART.partSize) expect(proxy.ops()).toContain('abort');
  });
});

describe('upload: bad input is refused before any request', () => {
  let proxy: TestProxy;
  let proxied: S3StorageBackend;
  beforeAll(async () => {
    proxy = await startProxy(target(s3.port));
    proxied = backendAt(proxy.endpoint);
  });
  afterAll(() => proxy.close());

  const key = uniqueKey('bad-input');
  const buf = () => Buffer.from('data');
  const stream = () => Readable.from([Buffer.from('data')]);
  const ok = { key, contentType: 'text/plain' };

  const cases: [string, string, () => unknown][] = [
    ['empty key', 'key', () => ({ ...ok, key: '', body: buf() })],
    ['empty key (stream)', 'key', () => ({ ...ok, key: '', body: stream() })],
    ['key of 1025 UTF-8 bytes (513 chars)', 'key', () => ({ ...ok, key: `${'é'.repeat(512)}a`, body: buf() })],
    ['key of 1025 ASCII bytes (stream)', 'key', () => ({ ...ok, key: 'k'.repeat(1025), body: stream() })],
    ['number key', 'key', () => ({ ...ok, key: 42, body: buf() })],
    ['missing key', 'key', () => ({ body: buf(), contentType: 'text/plain' })],
    ['string body', 'body', () => ({ ...ok, body: 'hello' })],
    ['number body', 'body', () => ({ ...ok, body: 42 })],
    ['null body', 'body', () => ({ ...ok, body: null })],
    ['missing body', 'body', () => ({ ...ok })],
    ['plain object body', 'body', () => ({ ...ok, body: { length: 3 } })],
    ['array body', 'body', () => ({ ...ok, body: [1, 2, 3] })],
    ['empty contentType', 'contentType', () => ({ ...ok, contentType: '', body: buf() })],
    ['blank contentType (stream)', 'contentType', () => ({ ...ok, contentType: '  ', body: stream() })],
    ['missing contentType', 'contentType', () => ({ key, body: buf() })],
    ['contentType with CRLF', 'contentType', () => ({ ...ok, contentType: 'text/plain\r\nx-amz-acl: public-read', body: buf() })],
    ['contentType with LF (stream)', 'contentType', () => ({ ...ok, contentType: 'text/plain\nx: y', body: stream() })],
    ['contentType with CR', 'contentType', () => ({ ...ok, contentType: 'text/plain\rx', body: buf() })],
    ['metadata value a number', 'metadata.n', () => ({ ...ok, body: buf(), metadata: { n: 1 } })],
    ['metadata value null (stream)', 'metadata.n', () => ({ ...ok, body: stream(), metadata: { n: null } })],
    ['metadata value an object', 'metadata.o', () => ({ ...ok, body: buf(), metadata: { good: 'x', o: {} } })],
    ['negative contentLength (stream)', 'contentLength', () => ({ ...ok, body: stream(), contentLength: -1 })],
    ['non-integer contentLength (stream)', 'contentLength', () => ({ ...ok, body: stream(), contentLength: 1.5 })],
    ['NaN contentLength (stream)', 'contentLength', () => ({ ...ok, body: stream(), contentLength: NaN })],
    ['string contentLength (stream)', 'contentLength', () => ({ ...ok, body: stream(), contentLength: '4' })],
    ['negative contentLength (Buffer)', 'contentLength', () => ({ ...ok, body: buf(), contentLength: -1 })],
    ['non-integer contentLength (Buffer)', 'contentLength', () => ({ ...ok, body: buf(), contentLength: 3.5 })],
    ['contentLength not the Buffer length', 'contentLength', () => ({ ...ok, body: buf(), contentLength: 5 })],
    ['params undefined', 'params', () => undefined],
    ['params null', 'params', () => null],
    ['params a string', 'params', () => 'some/key'],
    ['params a number', 'params', () => 42],
  ];

  it.each(cases)('%s -> invalid_argument(%s)', async (_name, field, params) => {
    proxy.clearLog();
    const err = await rejection(proxied.upload(params() as never));
    expect(err).toBeInstanceOf(StorageError);
    expect(err.details).toMatchObject({ reason: 'invalid_argument', operation: 'upload', field });
    expect(err.statusCode).toBe(400);
    await sleep(20); // anything sent in the background would be recorded by now
    expect(proxy.requests).toEqual([]);
  });

  it('(control) a valid upload through the same proxy is recorded', async () => {
    proxy.clearLog();
    await proxied.upload({ key, body: buf(), contentType: 'text/plain' });
    expect(proxy.requests.map((r) => r.method)).toEqual(['PUT']);
    await backend.delete(key);
  });
});

describe('upload: memory and flow control', () => {
  it('a 512 MiB stream of unknown length uploads with RSS staying within 64 MiB of its start (default settings)', async () => {
    const key = uniqueKey('upload/512m');
    // Warm up (runtime threads, connections, allocator) so the baseline is a steady state.
    const warmKey = uniqueKey('upload/warm');
    await backend.upload({ key: warmKey, body: generatedSource(40 * MiB).stream, contentType: 'application/octet-stream' });
    await backend.delete(warmKey);
    const src = generatedSource(512 * MiB, { minChunk: 64 * KiB, maxChunk: MiB, fast: true });
    await sleep(100);
    const rss = sampleRss(50);
    let out;
    try {
      out = await backend.upload({ key, body: src.stream, contentType: 'application/octet-stream' });
    } finally {
      rss.stop();
    }
    try {
      expect(src.generated()).toBe(512 * MiB);
      expect(out.etag).toMatch(/-103"$/); // default 5 MiB parts
      const head = await backend.download(key);
      head.destroy();
      expect(head.contentLength).toBe(512 * MiB);
      expect(rss.maxRise()).toBeLessThan(64 * MiB);
    } finally {
      await backend.delete(key);
    }
    expect(await backend.exists(key)).toBe(false);
  });

  describe('behind a slow network', () => {
    let proxy: TestProxy;
    beforeAll(async () => {
      proxy = await startProxy(target(s3.port));
      proxy.throttleUpload(32 * MiB);
    });
    afterAll(() => proxy.close());

    it('the source is read only a bounded amount ahead of what the service received', async () => {
      const key = uniqueKey('upload/slow');
      const slow = backendAt(proxy.endpoint, MULTIPART);
      const total = 96 * MiB;
      let maxAhead = 0;
      const startUp = proxy.bytesUp();
      const src = generatedSource(total, {
        minChunk: 256 * KiB,
        maxChunk: 256 * KiB,
        onChunk: (generated) => {
          maxAhead = Math.max(maxAhead, generated - (proxy.bytesUp() - startUp));
        },
      });
      const out = await slow.upload({ key, body: src.stream, contentType: 'application/octet-stream' });
      try {
        expect(out.etag).toMatch(/-20"$/);
        expect(proxy.bytesUp() - startUp).toBeGreaterThan(total);
        // parts in memory (partSize x (queueSize + 1) = 15 MiB) + 4 queued chunks + socket buffers
        expect(maxAhead).toBeLessThan(40 * MiB);
        expect(await stored(key)).toEqual({ bytes: total, sha256: src.sha256() });
      } finally {
        await backend.delete(key);
      }
    });
  });

  it('200 uploads in flight at once all succeed', async () => {
    const items = Array.from({ length: 200 }, (_, i) => ({ key: uniqueKey(`upload/many-${i}`), data: randomBuffer(1 + ((i * 7919) % (48 * KiB))) }));
    try {
      const results = await Promise.all(
        items.map(({ key, data }, i) => {
          const body = i % 3 === 0 ? data : streamOf([data.subarray(0, data.length >> 1), data.subarray(data.length >> 1)]);
          return backend.upload({ key, body, contentType: 'application/octet-stream', contentLength: i % 3 === 1 ? data.length : undefined });
        }),
      );
      // Garage sends its internal version id with every PUT (no versioning): reported as versionId.
      const version = s3.server === 'garage' ? { versionId: expect.any(String) } : {};
      results.forEach((r, i) => expect(r).toEqual({ key: items[i].key, etag: `"${md5(items[i].data)}"`, ...version }));
      const back = await Promise.all(items.map(async ({ key }) => readAll(await backend.download(key))));
      back.forEach((b, i) => expect(b.equals(items[i].data)).toBe(true));
    } finally {
      await Promise.all(items.map(({ key }) => backend.delete(key)));
    }
  });
});
