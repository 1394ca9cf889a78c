// Operations beyond the host interface: head, ranged downloads, progress, copy, list,
// deleteMany, signed URL options and POST forms, against the test server.
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileNotFoundError, S3StorageBackend, StorageError, type TransferProgress } from '../lib/index.mjs';
import { startProxy, type TestProxy } from './helpers/proxy.mjs';
import { testServer, uniqueKey, unfinishedUploads } from './helpers/s3';
import { MiB, randomBuffer, readAll, sha256, sleep } from './helpers/streams';

const s3 = testServer();

function makeBackend(extra: Record<string, unknown> = {}): S3StorageBackend {
  return new S3StorageBackend({
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    ...extra,
  });
}

const backend = makeBackend();

// The same server behind a proxy that records requests, for the tests that promise what
// reaches the server (or that nothing does).
let proxy: TestProxy;
let viaProxy: S3StorageBackend;
beforeAll(async () => {
  proxy = await startProxy({ host: new URL(s3.endpoint).hostname, port: s3.port });
  viaProxy = makeBackend({ endpoint: proxy.endpoint });
});
afterAll(() => proxy?.close());

/** Runs `calls` with the proxied backend and asserts that no request (nor connection) reached the proxy. */
async function withoutRequests(calls: (b: S3StorageBackend) => Promise<void>) {
  proxy.clearLog();
  const connections = proxy.totalConnections();
  await calls(viaProxy);
  await sleep(20); // anything sent in the background would be recorded by now
  expect(proxy.requests).toEqual([]);
  expect(proxy.totalConnections()).toBe(connections);
}

async function expectStorageError(p: Promise<unknown>, reason: string, field?: string) {
  const err = await p.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).details?.reason).toBe(reason);
  if (field) expect((err as StorageError).details?.field).toBe(field);
  return err as StorageError;
}

async function put(key: string, body: Buffer | string, contentType = 'application/octet-stream', metadata?: Record<string, string>) {
  return backend.upload({ key, body: Buffer.from(body), contentType, metadata });
}

describe('head', () => {
  it('returns size, ETag, content type, last modified time and metadata', async () => {
    const key = uniqueKey('ops/head');
    const before = Date.now();
    const { etag } = await put(key, 'hello head', 'text/plain; charset=utf-8', { Course: 'bio-101', owner: 'ada' });
    const h = await backend.head(key);
    expect(h).toMatchObject({ key, size: 10, etag, contentType: 'text/plain; charset=utf-8', metadata: { course: 'bio-101', owner: 'ada' } });
    expect(h.lastModified).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Servers keep whole seconds.
    expect(Date.parse(h.lastModified!)).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 2000);
    expect(Date.parse(h.lastModified!)).toBeLessThanOrEqual(Date.now() + 2000);
  });

  it('throws FileNotFoundError for a missing key', async () => {
    const key = uniqueKey('ops/head-missing');
    const err = await backend.head(key).catch((e) => e);
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect(err.details).toMatchObject({ reason: 'not_found', operation: 'head', key });
  });
});

describe('download with a range', () => {
  const key = uniqueKey('ops/range');
  const data = randomBuffer(MiB + 17);

  it('returns only the bytes asked for', async () => {
    await backend.upload({ key, body: data, contentType: 'application/octet-stream' });
    const middle = await backend.download(key, { range: { start: 1000, end: 1999 } });
    expect(middle.contentLength).toBe(1000);
    expect((await readAll(middle)).equals(data.subarray(1000, 2000))).toBe(true);
    expect((await readAll(await backend.download(key, { range: { start: 0, end: 0 } }))).equals(data.subarray(0, 1))).toBe(true);
    // No end: to the end of the object.
    expect((await readAll(await backend.download(key, { range: { start: MiB } }))).equals(data.subarray(MiB))).toBe(true);
    // An end past the object is clipped to it, as HTTP ranges are.
    expect((await readAll(await backend.download(key, { range: { start: MiB + 10, end: 10 * MiB } }))).equals(data.subarray(MiB + 10))).toBe(
      true,
    );
  });

  it('refuses a range that starts past the end, with a typed error', async () => {
    const err = await expectStorageError(backend.download(key, { range: { start: data.length + 5 } }), 'invalid_argument', 'range');
    expect(err.message).toContain(key);
  });

  it('checks the range before any request', () =>
    withoutRequests(async (b) => {
      await expectStorageError(b.download(key, { range: { start: 10, end: 9 } }), 'invalid_argument', 'range');
      await expectStorageError(b.download(key, { range: { start: -1 } }), 'invalid_argument', 'range.start');
      await expectStorageError(b.download(key, { range: { start: 1.5 } }), 'invalid_argument', 'range.start');
      await expectStorageError(b.download(key, { range: { start: '0' } as never }), 'invalid_argument', 'range.start');
      await expectStorageError(b.download(key, { range: 5 as never }), 'invalid_argument', 'range');
    }));

  it('throws FileNotFoundError for a missing key', async () => {
    await expect(backend.download(uniqueKey('ops/range-missing'), { range: { start: 0, end: 9 } })).rejects.toBeInstanceOf(FileNotFoundError);
  });
});

describe('download with concurrency (parallel ranged GETs)', () => {
  it('delivers a large object in order, with its size', async () => {
    const key = uniqueKey('ops/parallel');
    const body = randomBuffer(8 * MiB * 3 + 12345);
    await backend.upload({ key, body, contentType: 'application/octet-stream' });
    for (const concurrency of [2, 4, 16]) {
      const events: TransferProgress[] = [];
      const stream = await backend.download(key, { concurrency, onProgress: (p) => events.push(p) });
      expect(stream.contentLength).toBe(body.length);
      expect(sha256(await readAll(stream))).toBe(sha256(body));
      expect(events.at(-1)).toEqual({ loaded: body.length, total: body.length });
    }
  });

  it('is a plain download for an object of one part, and for a missing key rejects at once', async () => {
    const key = uniqueKey('ops/parallel-small');
    const body = randomBuffer(300 * 1024);
    await backend.upload({ key, body, contentType: 'application/octet-stream' });
    const stream = await backend.download(key, { concurrency: 4 });
    expect(stream.contentLength).toBe(body.length);
    expect((await readAll(stream)).equals(body)).toBe(true);
    await expect(backend.download(key + '-missing', { concurrency: 4 })).rejects.toBeInstanceOf(FileNotFoundError);
  });

  it('stops fetching when the stream is destroyed', async () => {
    const key = uniqueKey('ops/parallel-destroy');
    const PARTS = 8; // of 8 MiB
    await backend.upload({ key, body: randomBuffer(8 * MiB * PARTS), contentType: 'application/octet-stream' });
    proxy.clearLog();
    const stream = await viaProxy.download(key, { concurrency: 2 });
    const first = await new Promise<Buffer>((resolve) => stream.once('data', resolve));
    expect(first.length).toBeGreaterThan(0);
    stream.destroy();
    const destroyedAt = Date.now();
    await sleep(1500);
    const gets = proxy.requests.filter((r) => r.method === 'GET');
    // Requests already under way may still arrive (a grace of 250 ms); none starts later,
    // and far from every part was fetched.
    expect(gets.filter((r) => r.at > destroyedAt + 250).map((r) => r.headers.range)).toEqual([]);
    expect(gets.length).toBeGreaterThan(0);
    expect(gets.length).toBeLessThan(PARTS);
    // The backend stays usable.
    expect(await viaProxy.exists(key)).toBe(true);
  });

  it('checks the option', async () => {
    const key = uniqueKey('ops/parallel-bad');
    await expectStorageError(backend.download(key, { concurrency: 0 }), 'invalid_argument', 'concurrency');
    await expectStorageError(backend.download(key, { concurrency: 17 }), 'invalid_argument', 'concurrency');
    await expectStorageError(backend.download(key, { concurrency: 1.5 }), 'invalid_argument', 'concurrency');
    await expectStorageError(backend.download(key, { concurrency: 2, range: { start: 0 } }), 'invalid_argument', 'concurrency');
  });
});

function checkProgress(events: TransferProgress[], size: number) {
  expect(events.length).toBeGreaterThan(0);
  for (let i = 1; i < events.length; i++) expect(events[i].loaded).toBeGreaterThanOrEqual(events[i - 1].loaded);
  for (const e of events) expect(e.loaded).toBeLessThanOrEqual(size);
  expect(events.at(-1)).toEqual({ loaded: size, total: size });
}

describe('onProgress', () => {
  it('reports a Buffer upload up to its size', async () => {
    const body = randomBuffer(24 * MiB);
    const events: TransferProgress[] = [];
    await backend.upload({ key: uniqueKey('ops/progress-buf'), body, contentType: 'application/octet-stream' }, { onProgress: (p) => events.push(p) });
    checkProgress(events, body.length);
    expect(events.every((e) => e.total === body.length)).toBe(true);
  });

  it('reports a multipart stream of unknown length, then its size', async () => {
    const size = 12 * MiB + 3;
    const events: TransferProgress[] = [];
    const key = uniqueKey('ops/progress-stream');
    // A source that takes a while (~0.6 s), as a client upload does.
    const chunks = async function* () {
      for (let sent = 0; sent < size; sent += MiB) {
        yield randomBuffer(Math.min(MiB, size - sent));
        await sleep(50);
      }
    };
    await backend.upload({ key, body: Readable.from(chunks()), contentType: 'application/octet-stream' }, { onProgress: (p) => events.push(p) });
    checkProgress(events, size);
    // Reported while sending, not only at the end.
    expect(events.length).toBeGreaterThan(2);
    expect((await backend.head(key)).size).toBe(size);
  });

  it('reports a download chunk by chunk with the object size as total', async () => {
    const key = uniqueKey('ops/progress-down');
    const body = randomBuffer(5 * MiB + 1);
    await backend.upload({ key, body, contentType: 'application/octet-stream' });
    const events: TransferProgress[] = [];
    const stream = await backend.download(key, { onProgress: (p) => events.push(p) });
    expect(sha256(await readAll(stream))).toBe(sha256(body));
    checkProgress(events, body.length);
    expect(events.length).toBeGreaterThan(1);
  });

  it('reports an empty download once', async () => {
    const key = uniqueKey('ops/progress-empty');
    await backend.upload({ key, body: Buffer.alloc(0), contentType: 'text/plain' });
    const events: TransferProgress[] = [];
    await readAll(await backend.download(key, { onProgress: (p) => events.push(p) }));
    expect(events).toEqual([{ loaded: 0, total: 0 }]);
  });

  it('ignores what the callback throws', async () => {
    const key = uniqueKey('ops/progress-throws');
    await backend.upload(
      { key, body: randomBuffer(1000), contentType: 'application/octet-stream' },
      {
        onProgress: () => {
          throw new Error('UI bug');
        },
      },
    );
    expect(await backend.exists(key)).toBe(true);
  });

  it('must be a function', async () => {
    const key = uniqueKey('ops/progress-bad');
    await expectStorageError(backend.upload({ key, body: Buffer.from('x'), contentType: 'text/plain' }, { onProgress: 5 as never }), 'invalid_argument', 'onProgress');
    await expectStorageError(backend.download(key, { onProgress: 'no' as never }), 'invalid_argument', 'onProgress');
    expect(await backend.exists(key)).toBe(false);
  });
});

describe('copy', () => {
  it('copies bytes, content type and metadata on the server', async () => {
    const from = uniqueKey('ops/copy-src');
    const to = uniqueKey('ops/copy-dst');
    const body = randomBuffer(300 * 1024);
    await backend.upload({ key: from, body, contentType: 'image/png', metadata: { owner: 'ada' } });
    const out = await backend.copy(from, to);
    expect(out.key).toBe(to);
    expect(out.etag).toMatch(/^"?[0-9a-f-]+"?$/);
    expect((await readAll(await backend.download(to))).equals(body)).toBe(true);
    expect(await backend.head(to)).toMatchObject({ size: body.length, contentType: 'image/png', metadata: { owner: 'ada' } });
    // The source is untouched.
    expect((await backend.head(from)).size).toBe(body.length);
  });

  it('replaces the content type, or the metadata, and keeps the other', async () => {
    const from = uniqueKey('ops/copy-replace');
    await put(from, 'report', 'text/plain', { owner: 'ada', term: 'fall' });
    const a = uniqueKey('ops/copy-ct');
    await backend.copy(from, a, { contentType: 'application/pdf' });
    expect(await backend.head(a)).toMatchObject({ contentType: 'application/pdf', metadata: { owner: 'ada', term: 'fall' } });
    const b = uniqueKey('ops/copy-md');
    await backend.copy(from, b, { metadata: { owner: 'grace' } });
    const hb = await backend.head(b);
    expect(hb.contentType).toBe('text/plain');
    expect(hb.metadata).toEqual({ owner: 'grace' });
  });

  it('copies keys with spaces, plus signs and non-ASCII characters', async () => {
    const from = `${uniqueKey('ops/copy-odd')}/Übung 1 + Lösung (final).txt`;
    const to = `${uniqueKey('ops/copy-odd')}/copy of ü+ß.txt`;
    await put(from, 'odd names');
    await backend.copy(from, to);
    expect((await readAll(await backend.download(to))).toString()).toBe('odd names');
  });

  it('throws FileNotFoundError naming the missing source', async () => {
    const from = uniqueKey('ops/copy-missing');
    const to = uniqueKey('ops/copy-missing-dst');
    const err = await backend.copy(from, to).catch((e) => e);
    expect(err).toBeInstanceOf(FileNotFoundError);
    expect(err.details).toMatchObject({ reason: 'not_found', key: from });
    expect(await backend.exists(to)).toBe(false);
  });

  it('copies in parts above the copy threshold, keeping type and metadata', async () => {
    const parted = makeBackend({ multipart: { copyThreshold: 5 * MiB, copyPartSize: 5 * MiB } });
    const from = uniqueKey('ops/copy-big');
    const to = uniqueKey('ops/copy-big-dst');
    const body = randomBuffer(12 * MiB + 5);
    await parted.upload({ key: from, body, contentType: 'video/mp4', metadata: { lesson: '7' } });
    const before = await unfinishedUploads(s3);
    await parted.copy(from, to);
    expect(sha256(await readAll(await parted.download(to)))).toBe(sha256(body));
    expect(await parted.head(to)).toMatchObject({ size: body.length, contentType: 'video/mp4', metadata: { lesson: '7' } });
    expect((await unfinishedUploads(s3)).filter((u) => !before.includes(u))).toEqual([]);
  });

  it('checks keys, content type and metadata before any request', () =>
    withoutRequests(async (b) => {
      const from = uniqueKey('ops/copy-bad');
      await expectStorageError(b.copy(from, ''), 'invalid_argument', 'key');
      await expectStorageError(b.copy('', from), 'invalid_argument', 'key');
      await expectStorageError(b.copy(from, uniqueKey('x'), { contentType: 'a\nb' }), 'invalid_argument', 'contentType');
      await expectStorageError(b.copy(from, uniqueKey('x'), { metadata: { n: 1 as never } }), 'invalid_argument', 'metadata.n');
      await expectStorageError(b.copy(from, uniqueKey('x'), { metadata: { 'bad name': 'v' } }), 'invalid_argument');
    }));
});

describe('list', () => {
  const prefix = `${uniqueKey('ops/list')}/`;
  const names = ['a.txt', 'b.txt', 'c/d.txt', 'c/e.txt', 'f.txt'];

  it('pages through a prefix in key order with a cursor', async () => {
    await Promise.all(names.map((n, i) => put(prefix + n, 'x'.repeat(i + 1))));
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await backend.list({ prefix, limit: 2, cursor });
      pages++;
      expect(page.items.length).toBeLessThanOrEqual(2);
      for (const item of page.items) {
        seen.push(item.key);
        expect(item.size).toBe(names.indexOf(item.key.slice(prefix.length)) + 1);
        expect(item.lastModified).toMatch(/Z$/);
      }
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(names.map((n) => prefix + n));
    expect(pages).toBe(3);
    const all = await backend.list({ prefix });
    expect(all.nextCursor).toBeUndefined();
    expect(all.items.map((i) => i.key)).toEqual(seen);
    expect((await backend.list({ prefix: prefix + 'c/' })).items.map((i) => i.key)).toEqual([prefix + 'c/d.txt', prefix + 'c/e.txt']);
    expect(await backend.list({ prefix: prefix + 'nothing/' })).toEqual({ items: [] });
  });

  it('listAll iterates a whole prefix, fetching pages only as needed', async () => {
    const spy = vi.spyOn(backend, 'list');
    try {
      const keys: string[] = [];
      for await (const item of backend.listAll({ prefix, pageSize: 2 })) keys.push(item.key);
      expect(keys).toEqual(names.map((n) => prefix + n));
      expect(spy).toHaveBeenCalledTimes(3);
      spy.mockClear();
      for await (const item of backend.listAll({ prefix, pageSize: 2 })) {
        expect(item.key).toBe(prefix + names[0]);
        break;
      }
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
    }
  });

  it('checks its options', async () => {
    await expectStorageError(backend.list({ limit: 0 }), 'invalid_argument', 'limit');
    await expectStorageError(backend.list({ limit: 1001 }), 'invalid_argument', 'limit');
    await expectStorageError(backend.list({ prefix: 5 as never }), 'invalid_argument', 'prefix');
    await expectStorageError(backend.list({ cursor: '' }), 'invalid_argument', 'cursor');
  });
});

describe('deleteMany', () => {
  it('deletes more than one batch of keys, counting missing keys as deleted', async () => {
    const prefix = `${uniqueKey('ops/many')}/`;
    const keys = Array.from({ length: 1005 }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`);
    for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => put(k, k)));
    const missing = `${prefix}never-there`;
    const result = await backend.deleteMany([...keys, missing, keys[0]]);
    expect(result.failed).toEqual([]);
    expect(result.deleted).toHaveLength(1006);
    expect(new Set(result.deleted)).toEqual(new Set([...keys, missing]));
    expect(await backend.list({ prefix })).toEqual({ items: [] });
    // Idempotent.
    expect((await backend.deleteMany(keys.slice(0, 3))).deleted).toEqual(keys.slice(0, 3));
  });

  it('resolves at once for no keys, and checks every key before deleting any', async () => {
    expect(await backend.deleteMany([])).toEqual({ deleted: [], failed: [] });
    const key = uniqueKey('ops/many-keep');
    await put(key, 'keep');
    await expectStorageError(backend.deleteMany([key, '']), 'invalid_argument', 'key');
    await expectStorageError(backend.deleteMany([key, 7 as never]), 'invalid_argument', 'key');
    await expectStorageError(backend.deleteMany(key as never), 'invalid_argument', 'keys');
    expect(await backend.exists(key)).toBe(true);
  });
});

describe('getSignedUrl options', () => {
  const name = 'Übungsblatt 3 – Lösung "final".pdf';
  /** GET through a URL signed with downloadFilename and responseContentType. */
  async function fetchAttachment() {
    const key = uniqueKey('ops/sign-dl');
    await put(key, 'pdf bytes', 'application/pdf');
    const { url } = await backend.getSignedUrl(key, { downloadFilename: name, responseContentType: 'application/x-download' });
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('pdf bytes');
    return res;
  }

  it('a URL signed with downloadFilename and responseContentType serves the object', async () => {
    await fetchAttachment();
  });

  // moto ignores the response-content-* parameters (it answers with the stored headers).
  it.skipIf(s3.server === 'moto')('downloadFilename serves an attachment with an RFC 6266 / 5987 file name', async () => {
    const res = await fetchAttachment();
    expect(res.headers.get('content-type')).toBe('application/x-download');
    const disposition = res.headers.get('content-disposition')!;
    expect(disposition).toMatch(/^attachment; filename="[\x20-\x7e]+"; filename\*=UTF-8''/);
    const encoded = /filename\*=UTF-8''([^;]+)/.exec(disposition)![1];
    expect(decodeURIComponent(encoded)).toBe(name);
  });

  it.skipIf(s3.server === 'moto')('a PUT URL signed with contentLength refuses another size', async () => {
    // moto does not check signatures, so it cannot refuse the wrong size.
    const key = uniqueKey('ops/sign-len');
    const { url } = await backend.getSignedUrl(key, { method: 'PUT', contentLength: 5, contentType: 'text/plain' });
    const wrong = await fetch(url, { method: 'PUT', body: 'too long body', headers: { 'content-type': 'text/plain' } });
    expect(wrong.status).toBe(403);
    expect(await backend.exists(key)).toBe(false);
    const right = await fetch(url, { method: 'PUT', body: 'exact', headers: { 'content-type': 'text/plain' } });
    expect(right.status).toBe(200);
    expect((await readAll(await backend.download(key))).toString()).toBe('exact');
  });

  it('checks options against the method', async () => {
    const key = uniqueKey('ops/sign-bad');
    await expectStorageError(backend.getSignedUrl(key, { contentLength: 5 }), 'invalid_argument', 'contentLength');
    await expectStorageError(backend.getSignedUrl(key, { method: 'PUT', downloadFilename: 'a.pdf' }), 'invalid_argument', 'downloadFilename');
    await expectStorageError(backend.getSignedUrl(key, { method: 'PUT', responseContentType: 'a/b' }), 'invalid_argument', 'responseContentType');
    await expectStorageError(backend.getSignedUrl(key, { method: 'PUT', contentLength: -1 }), 'invalid_argument', 'contentLength');
    await expectStorageError(backend.getSignedUrl(key, { downloadFilename: 'a\nb.pdf' }), 'invalid_argument', 'downloadFilename');
    await expectStorageError(backend.getSignedUrl(key, { downloadFilename: '' }), 'invalid_argument', 'downloadFilename');
  });

  it('signs the same URL through the default credential chain', async () => {
    // No credentials in the options: the AWS chain reads them from the environment.
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey });
    try {
      const chain = new S3StorageBackend({ bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region });
      const key = uniqueKey('ops/sign-chain');
      await put(key, 'via chain');
      const { url } = await chain.getSignedUrl(key, { downloadFilename: 'x.txt' });
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('via chain');
    } finally {
      process.env = saved;
    }
  });
});

async function postForm(form: { url: string; fields: Record<string, string> }, file: Buffer, contentType?: string) {
  const body = new FormData();
  for (const [name, value] of Object.entries(form.fields)) body.append(name, value);
  body.append('file', new Blob([file], contentType ? { type: contentType } : {}), 'upload.bin');
  return fetch(form.url, { method: 'POST', body });
}

describe('createPresignedPost', () => {
  it('lets a browser form upload a file within the size limits', async () => {
    const key = uniqueKey('ops/post-ok');
    const before = Date.now();
    const form = await backend.createPresignedPost({ key, contentType: 'image/png', maxSize: 1000, minSize: 10, expiresIn: 120 });
    const after = Date.now();
    // Signed at a whole second between the two readings of the clock, valid 120 s from it.
    const wholeSecond = (ms: number) => Math.floor(ms / 1000) * 1000;
    expect(Date.parse(form.expiresAt)).toBeGreaterThanOrEqual(wholeSecond(before) + 120_000);
    expect(Date.parse(form.expiresAt)).toBeLessThanOrEqual(wholeSecond(after) + 120_000);
    expect(Object.keys(form.fields)).toEqual(['key', 'Content-Type', 'X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'Policy', 'X-Amz-Signature']);
    const file = randomBuffer(1000);
    const res = await postForm(form, file, 'image/png');
    expect([200, 201, 204]).toContain(res.status);
    expect((await readAll(await backend.download(key))).equals(file)).toBe(true);
    expect((await backend.head(key)).contentType).toBe('image/png');
  });

  it.skipIf(s3.server === 'moto')('the service refuses files outside the size range, or of another type', async () => {
    // moto does not evaluate POST policies.
    const key = uniqueKey('ops/post-limits');
    const form = await backend.createPresignedPost({ key, contentType: 'image/png', maxSize: 1000, minSize: 10 });
    // AWS answers 400 EntityTooLarge/TooSmall and 403 for a broken condition (s3s-fs: 400
    // InvalidPolicyDocument). A server may answer before the body is read and close the
    // connection, which fetch reports as a network error; a browser sees the same.
    const refused = async (res: Promise<Response>) => {
      const outcome = await res.then(
        (r) => r.status,
        (e: Error) => (e.cause as NodeJS.ErrnoException | undefined)?.code ?? e.message,
      );
      expect([400, 403, 'EPIPE', 'ECONNRESET']).toContain(outcome);
    };
    await refused(postForm(form, randomBuffer(1001), 'image/png'));
    await refused(postForm(form, randomBuffer(64 * 1024), 'image/png'));
    await refused(postForm(form, randomBuffer(9), 'image/png'));
    await refused(postForm({ ...form, fields: { ...form.fields, 'Content-Type': 'text/html' } }, randomBuffer(100), 'text/html'));
    await refused(postForm({ ...form, fields: { ...form.fields, key: key + '-evil' } }, randomBuffer(100), 'image/png'));
    expect(await backend.exists(key)).toBe(false);
    expect(await backend.exists(key + '-evil')).toBe(false);
    // The same form still works for a file that fits.
    expect([200, 201, 204]).toContain((await postForm(form, randomBuffer(10), 'image/png')).status);
    expect((await backend.head(key)).size).toBe(10);
  });

  it('checks its parameters: a typed error, no form and no request', () =>
    withoutRequests(async (b) => {
      const key = uniqueKey('ops/post-bad');
      await expectStorageError(b.createPresignedPost({ key } as never), 'invalid_argument', 'maxSize');
      await expectStorageError(b.createPresignedPost({ key, maxSize: -1 }), 'invalid_argument', 'maxSize');
      await expectStorageError(b.createPresignedPost({ key, maxSize: 10, minSize: 11 }), 'invalid_argument', 'minSize');
      await expectStorageError(b.createPresignedPost({ key, maxSize: 10, expiresIn: 0 }), 'invalid_argument', 'expiresIn');
      await expectStorageError(b.createPresignedPost({ key: '', maxSize: 10 }), 'invalid_argument', 'key');
      await expectStorageError(b.createPresignedPost({ key, maxSize: 10, contentType: 'a\r\nb' }), 'invalid_argument', 'contentType');
    }));
});

describe('signal on the new operations', () => {
  it('an aborted signal rejects before any request', () =>
    withoutRequests(async (b) => {
      const signal = AbortSignal.abort();
      const key = uniqueKey('ops/aborted');
      await expectStorageError(b.head(key, { signal }), 'aborted');
      await expectStorageError(b.copy(key, key + '2', { signal }), 'aborted');
      await expectStorageError(b.list({ signal }), 'aborted');
      await expectStorageError(b.deleteMany([key], { signal }), 'aborted');
      await expectStorageError(b.createPresignedPost({ key, maxSize: 1 }, { signal }), 'aborted');
    }));
});

