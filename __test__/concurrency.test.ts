// Many operations at once on one backend: every one succeeds with its own, correct result.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { S3StorageBackend } from '../lib/index.mjs';
import { testServer, uniqueKey } from './helpers/s3';

const s3 = testServer();
const OPS = 500;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Sizes from 0 bytes to 300 KiB, so some bodies span many network chunks. */
const sizeFor = (i: number) => [0, 1, 1000, 64 * 1024, 300 * 1024][i % 5] + (i % 7);

describe(`${OPS} concurrent mixed operations on one backend`, () => {
  it('all succeed with correct results', async () => {
    const backend = new S3StorageBackend({
      bucket: s3.bucket,
      region: s3.region,
      endpoint: s3.endpoint,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const prefix = uniqueKey('concurrency');

    // Objects the reads and deletes work on, stored beforehand.
    const readable = Array.from({ length: 50 }, (_, i) => ({
      key: `${prefix}/read/${i} (r).bin`,
      body: randomBytes(sizeFor(i * 3 + 1)),
      contentType: `application/x-read-${i}`,
    }));
    const deletable = Array.from({ length: 100 }, (_, i) => `${prefix}/delete/${i}.txt`);
    await Promise.all([
      ...readable.map((o) => backend.upload(o)),
      ...deletable.map((key) => backend.upload({ key, body: Buffer.from(key), contentType: 'text/plain' })),
    ]);

    type Op = { kind: string; run: () => Promise<unknown>; expected: unknown };
    const uploads: { key: string; body: Buffer; contentType: string }[] = [];
    const ops: Op[] = [];
    for (let i = 0; i < OPS; i++) {
      const n = Math.floor(i / 5);
      const target = readable[n % readable.length];
      switch (i % 5) {
        case 0: {
          const key = `${prefix}/upload/${n}-ü.bin`;
          const body = randomBytes(sizeFor(n));
          const contentType = `application/x-upload-${n}`;
          uploads.push({ key, body, contentType });
          // Buffers, streams of known length and streams without a length, in turn.
          const source = () =>
            n % 3 === 0
              ? body
              : Readable.from(Array.from({ length: Math.ceil(body.length / 16384) }, (_, c) => body.subarray(c * 16384, (c + 1) * 16384)));
          const contentLength = n % 3 === 1 ? body.length : undefined;
          ops.push({
            kind: 'upload',
            run: async () => (await backend.upload({ key, body: source(), contentType, contentLength })).key,
            expected: key,
          });
          break;
        }
        case 1: {
          const missing = n % 2 === 1;
          const key = missing ? `${prefix}/missing/${n}` : target.key;
          ops.push({ kind: 'exists', run: () => backend.exists(key), expected: !missing });
          break;
        }
        case 2:
          ops.push({
            kind: 'download',
            run: async () => {
              const down = await backend.download(target.key);
              const bytes = await readAll(down);
              return { contentType: down.contentType, length: down.contentLength, sha: sha256(bytes) };
            },
            expected: { contentType: target.contentType, length: target.body.length, sha: sha256(target.body) },
          });
          break;
        case 3: {
          const key = deletable[n];
          ops.push({ kind: 'delete', run: () => backend.delete(key), expected: undefined });
          break;
        }
        case 4: {
          const put = n % 2 === 1;
          ops.push({
            kind: 'getSignedUrl',
            run: async () => {
              const signed = await backend.getSignedUrl(target.key, put ? { method: 'PUT', expiresIn: 300 } : {});
              const url = new URL(signed.url);
              const expires = url.searchParams.get('X-Amz-Expires');
              if (put) return { path: url.pathname, expires };
              // GET URLs are also used, at the same time as everything else.
              const res = await fetch(signed.url);
              return { path: url.pathname, expires, status: res.status, sha: sha256(Buffer.from(await res.arrayBuffer())) };
            },
            expected: put
              ? { path: `/${s3.bucket}/${encodePath(target.key)}`, expires: '300' }
              : { path: `/${s3.bucket}/${encodePath(target.key)}`, expires: '900', status: 200, sha: sha256(target.body) },
          });
          break;
        }
      }
    }

    const settled = await Promise.allSettled(ops.map((op) => op.run()));

    const failures = settled.flatMap((s, i) => (s.status === 'rejected' ? [`#${i} ${ops[i].kind}: ${String(s.reason)}`] : []));
    expect(failures).toEqual([]);
    const wrong = settled.flatMap((s, i) => {
      const value = (s as PromiseFulfilledResult<unknown>).value;
      try {
        expect(value).toEqual(ops[i].expected);
        return [];
      } catch {
        return [`#${i} ${ops[i].kind}: got ${JSON.stringify(value)}, expected ${JSON.stringify(ops[i].expected)}`];
      }
    });
    expect(wrong).toEqual([]);
    expect(ops.filter((o) => o.kind === 'upload')).toHaveLength(OPS / 5);

    // What the writes did is there afterwards.
    const stored = await Promise.all(
      uploads.map(async (u) => {
        const down = await backend.download(u.key);
        return { key: u.key, contentType: down.contentType, sha: sha256(await readAll(down)) };
      }),
    );
    expect(stored).toEqual(uploads.map((u) => ({ key: u.key, contentType: u.contentType, sha: sha256(u.body) })));
    expect(await Promise.all(deletable.map((key) => backend.exists(key)))).toEqual(deletable.map(() => false));

    await Promise.all([...uploads.map((u) => u.key), ...readable.map((o) => o.key)].map((key) => backend.delete(key)));
  });
});

/** A key as it appears in a signed URL's path (RFC 3986, `/` kept). */
function encodePath(key: string): string {
  return key
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}
