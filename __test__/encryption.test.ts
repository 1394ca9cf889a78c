// Server-side encryption: the serverSideEncryption option (AES256, aws:kms, SSE-C) of the
// backend, of an upload and of a copy; the SSE-C key on every request about the object;
// head().serverSideEncryption; signed URLs and forms; and the key nowhere it must not be.
// Against the shared test server, and through the tests' relay proxy to see the headers.
//
// What the servers do with server-side encryption (measured on 2026-12-01 with raw signed
// requests and with these tests):
// - Garage 2.5.0 implements SSE-C: it encrypts with the key, keeps the key's MD5, returns the
//   algorithm and MD5 on PUT/GET/HEAD, and refuses (400 InvalidRequest) a read without the
//   key, with another key, or of a plain object with a key, and a bad MD5. It accepts and
//   ignores AES256 / aws:kms (returns no x-amz-server-side-encryption).
// - moto stores AES256 / aws:kms (key id, bucket key) and returns them on HEAD; it accepts
//   and ignores SSE-C (stores plaintext, serves it to anyone, returns no SSE-C header).
// - s3s-fs 0.14.1 (and the built-in server, its library) accepts and ignores every SSE
//   header and returns none.
// Assertions that depend on the server say so where they stand.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError, createS3Backend, S3StorageBackend, StorageError } from '../lib/index.mjs';
import type { RequestEvent, S3BackendOptions, ServerSideEncryption } from '../index';
import { s3Op, startProxy, type ProxyRequest, type TestProxy } from './helpers/proxy.mjs';
import { testServer, unfinishedUploads, uniqueKey } from './helpers/s3';
import { MiB, randomBuffer, readAll, sha256 } from './helpers/streams';

const s3 = testServer();
const OCTET = 'application/octet-stream';
const KEY = randomBytes(32);
const OTHER_KEY = randomBytes(32);
const md5b64 = (k: Buffer) => createHash('md5').update(k).digest('base64');

/** Garage refuses reads of SSE-C objects without their key (it encrypts with it). */
const ENFORCES_SSE_C = s3.server === 'garage';
/** moto stores AES256 / aws:kms and returns them on HEAD. */
const ECHOES_SSE = s3.server === 'moto';
// MOTO_COMPLETE: moto answers CompleteMultipartUpload with a root the SDK cannot parse, so a
// multipart upload there also HEADs the object to learn that it landed (faults-load.test.ts).

/** Every event and error of this file, for the leak checks at the end. */
const events: RequestEvent[] = [];
const errors: unknown[] = [];

function backendAt(endpoint: string, extra: Partial<S3BackendOptions> = {}): S3StorageBackend {
  return new S3StorageBackend({
    bucket: s3.bucket,
    region: s3.region,
    endpoint,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    multipart: { partSize: 5 * MiB, threshold: 5 * MiB, queueSize: 2, copyThreshold: 5 * MiB, copyPartSize: 5 * MiB },
    retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 50 },
    onRequest: (e) => events.push(e),
    ...extra,
  });
}
const ssec = (key: Buffer): ServerSideEncryption => ({ type: 'SSE-C', key });
const plain = backendAt(s3.endpoint);
const withKey = backendAt(s3.endpoint, { serverSideEncryption: ssec(KEY) });
const withOtherKey = backendAt(s3.endpoint, { serverSideEncryption: ssec(OTHER_KEY) });

/** Every form the key could take in text. */
function keyForms(k: Buffer): string[] {
  return [k.toString('base64'), k.toString('base64url'), encodeURIComponent(k.toString('base64')), k.toString('hex'), [...k].join(','), k.toString('latin1')];
}

/** Fails when `text` holds either key in any form. */
function expectNoKey(text: string, where: string) {
  for (const k of [KEY, OTHER_KEY]) {
    for (const form of keyForms(k)) {
      if (text.includes(form)) throw new Error(`${where} holds an SSE-C key (${form.slice(0, 6)}…)`);
    }
  }
}

/** Every way an error is shown: message, stack, JSON, inspect (hidden properties too), details. */
function expectNoKeyInError(err: unknown) {
  const e = err as Error & { details?: unknown };
  expectNoKey(String(e.message), 'message');
  expectNoKey(String(e.stack), 'stack');
  expectNoKey(JSON.stringify(e), 'JSON.stringify');
  expectNoKey(JSON.stringify(e.details ?? null), 'details');
  expectNoKey(inspect(e, { depth: 10, showHidden: true }), 'util.inspect');
}

async function rejection(p: Promise<unknown>): Promise<StorageError> {
  const r = await p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in r)) throw new Error(`expected a rejection, got ${inspect(r.value)}`);
  errors.push(r.error);
  expect(r.error).toBeInstanceOf(StorageError);
  return r.error as StorageError;
}

function configError(make: () => unknown): ConfigurationError {
  try {
    make();
  } catch (err) {
    errors.push(err);
    expect(err).toBeInstanceOf(ConfigurationError);
    return err as ConfigurationError;
  }
  throw new Error('expected a ConfigurationError');
}

const issues = (err: ConfigurationError) => ((err.details as { issues: { field: string; message: string }[] }).issues ?? []).map((i) => i.field);

async function bytesOf(b: S3StorageBackend, key: string, options?: Parameters<S3StorageBackend['download']>[1]): Promise<Buffer> {
  return readAll(await b.download(key, options));
}

describe('the option and the arguments', () => {
  it('a backend SSE-C key that is not exactly 32 bytes, a string or missing is a ConfigurationError naming serverSideEncryption.key, without the key', () => {
    const options = (sse: unknown) => ({ bucket: s3.bucket, endpoint: s3.endpoint, serverSideEncryption: sse }) as S3BackendOptions;
    for (const size of [0, 16, 31, 33, 64]) {
      const err = configError(() => new S3StorageBackend(options(ssec(randomBytes(size)))));
      expect(issues(err)).toEqual(['serverSideEncryption.key']);
      expect(err.message).toContain(`exactly 32 bytes`);
      expect(err.message).toContain(`got ${size} bytes`);
    }
    // A base64 string is not taken as a key (32 ASCII characters would be ambiguous).
    const text = configError(() => new S3StorageBackend(options({ type: 'SSE-C', key: KEY.toString('base64') })));
    expect(issues(text)).toEqual(['serverSideEncryption.key']);
    expect(text.message).toContain("Buffer.from(text, 'base64')");
    expect(issues(configError(() => new S3StorageBackend(options({ type: 'SSE-C' }))))).toEqual(['serverSideEncryption.key']);
    expect(issues(configError(() => new S3StorageBackend(options({ type: 'AES256', key: KEY }))))).toEqual(['serverSideEncryption.key']);
    expect(issues(configError(() => new S3StorageBackend(options({ type: 'aes256' }))))).toEqual(['serverSideEncryption.type']);
    expect(issues(configError(() => new S3StorageBackend(options({ type: 'SSE-C', key: KEY, keyId: 'k' }))))).toEqual(['serverSideEncryption.keyId']);
    expect(issues(configError(() => new S3StorageBackend(options({ type: 'AES256', algorithm: 'x' }))))).toEqual(['serverSideEncryption.algorithm']);
    // A Uint8Array works as a Buffer does.
    const view = new S3StorageBackend(options({ type: 'SSE-C', key: new Uint8Array(KEY) }));
    expect(view.describe().serverSideEncryption).toEqual({ type: 'SSE-C' });
  });

  it('createS3Backend: STORAGE_S3_SSE with STORAGE_S3_SSE_KMS_KEY_ID, or STORAGE_S3_SSE_CUSTOMER_KEY (base64 of 32 bytes); a wrong one is named, never shown', () => {
    const env = {
      STORAGE_S3_ENDPOINT: s3.endpoint,
      STORAGE_S3_REGION: s3.region,
      STORAGE_S3_BUCKET: s3.bucket,
      STORAGE_S3_ACCESS_KEY_ID: s3.accessKeyId,
      STORAGE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    };
    expect(createS3Backend({ ...env, STORAGE_S3_SSE: 'AES256' }).describe().serverSideEncryption).toEqual({ type: 'AES256' });
    expect(createS3Backend({ ...env, STORAGE_S3_SSE: 'aws:kms', STORAGE_S3_SSE_KMS_KEY_ID: 'alias/school' }).describe().serverSideEncryption).toEqual({
      type: 'aws:kms',
      keyId: 'alias/school',
    });
    const fromEnv = createS3Backend({ ...env, STORAGE_S3_SSE: 'SSE-C', STORAGE_S3_SSE_CUSTOMER_KEY: KEY.toString('base64') });
    expect(fromEnv.describe().serverSideEncryption).toEqual({ type: 'SSE-C' });
    expectNoKey(JSON.stringify(fromEnv) + inspect(fromEnv), 'describe');
    const short = randomBytes(16).toString('base64');
    const err = configError(() => createS3Backend({ ...env, STORAGE_S3_SSE: 'SSE-C', STORAGE_S3_SSE_CUSTOMER_KEY: short }));
    expect(issues(err)).toEqual(['STORAGE_S3_SSE_CUSTOMER_KEY']);
    expect(err.message).toContain('decodes to 16 bytes');
    expect(err.message).not.toContain(short);
    expect(issues(configError(() => createS3Backend({ ...env, STORAGE_S3_SSE: 'SSE-C' })))).toEqual(['STORAGE_S3_SSE_CUSTOMER_KEY']);
    expect(issues(configError(() => createS3Backend({ ...env, STORAGE_S3_SSE_CUSTOMER_KEY: KEY.toString('base64') })))).toEqual(['STORAGE_S3_SSE_CUSTOMER_KEY']);
    expect(issues(configError(() => createS3Backend({ ...env, STORAGE_S3_SSE: 'kms' })))).toEqual(['STORAGE_S3_SSE']);
  });

  it('describe(), JSON.stringify and util.inspect show the type and the KMS key, never an SSE-C key', () => {
    expect(withKey.describe().serverSideEncryption).toEqual({ type: 'SSE-C' });
    for (const shown of [JSON.stringify(withKey), inspect(withKey, { depth: 10, showHidden: true }), JSON.stringify(withKey.describe())]) {
      expect(shown).toContain('SSE-C');
      expectNoKey(shown, 'backend');
    }
    const kms = backendAt(s3.endpoint, { serverSideEncryption: { type: 'aws:kms', keyId: 'arn:aws:kms:us-east-1:1:key/x', bucketKey: true } });
    expect(kms.describe().serverSideEncryption).toEqual({ type: 'aws:kms', keyId: 'arn:aws:kms:us-east-1:1:key/x', bucketKey: true });
    expect(plain.describe().serverSideEncryption).toBeUndefined();
  });

  it("an upload's or a copy's serverSideEncryption is checked before any request: invalid_argument naming the member, without the key", async () => {
    const seen = events.length;
    const key = uniqueKey('sse-args');
    const cases: [unknown, string][] = [
      [ssec(randomBytes(16)), 'serverSideEncryption.key'],
      [{ type: 'SSE-C', key: KEY.toString('base64') }, 'serverSideEncryption.key'],
      [{ type: 'SSE-C' }, 'serverSideEncryption.key'],
      [{ type: 'sse-kms' }, 'serverSideEncryption.type'],
      [{ keyId: 'k' }, 'serverSideEncryption.type'],
      [{ type: 'AES256', keyId: 'k' }, 'serverSideEncryption.keyId'],
      [{ type: 'aws:kms', bucketKey: 'yes' }, 'serverSideEncryption.bucketKey'],
      [{ type: 'AES256', key: KEY }, 'serverSideEncryption.key'],
      [{ type: 'AES256', extra: 1 }, 'serverSideEncryption.extra'],
      ['AES256', 'serverSideEncryption'],
    ];
    for (const [sse, field] of cases) {
      const up = await rejection(plain.upload({ key, body: Buffer.from('x'), contentType: OCTET, serverSideEncryption: sse as ServerSideEncryption }));
      expect([up.details?.reason, up.details?.field], inspect(sse)).toEqual(['invalid_argument', field]);
      const copy = await rejection(plain.copy(key, `${key}-copy`, { serverSideEncryption: sse as ServerSideEncryption }));
      expect([copy.details?.reason, copy.details?.field], inspect(sse)).toEqual(['invalid_argument', field]);
      expectNoKeyInError(up);
      expectNoKeyInError(copy);
    }
    await new Promise((r) => setTimeout(r, 50));
    expect(events.length).toBe(seen);
    expect(await plain.exists(key)).toBe(false);
  });
});

describe('SSE-C round trips', () => {
  it('upload (one PutObject) → download, head and exists with the key: the same bytes; head says SSE-C where the server returns it', async () => {
    const key = uniqueKey('ssec-small');
    const data = randomBuffer(200 * 1024);
    await withKey.upload({ key, body: data, contentType: 'text/plain' });
    expect((await bytesOf(withKey, key)).equals(data)).toBe(true);
    expect((await bytesOf(withKey, key, { range: { start: 10, end: 19 } })).equals(data.subarray(10, 20))).toBe(true);
    const head = await withKey.head(key);
    expect(head.size).toBe(data.length);
    expect(head.contentType).toBe('text/plain');
    // Garage returns the customer algorithm on HEAD; moto and s3s-fs ignore SSE-C and return nothing.
    expect(head.serverSideEncryption).toEqual(ENFORCES_SSE_C ? { type: 'SSE-C' } : undefined);
    expect(await withKey.exists(key)).toBe(true);
  });

  it('multipart upload above partSize (a stream without length) → whole, ranged and parallel (concurrency 4) downloads: the same bytes', async () => {
    const key = uniqueKey('ssec-multipart');
    const data = randomBuffer(19 * MiB); // 4 parts of 5 MiB; 3 parallel parts of 8 MiB
    await withKey.upload({ key, body: Readable.from([data.subarray(0, 7 * MiB), data.subarray(7 * MiB)]), contentType: OCTET });
    expect(sha256(await bytesOf(withKey, key))).toBe(sha256(data));
    expect(sha256(await bytesOf(withKey, key, { concurrency: 4 }))).toBe(sha256(data));
    expect((await bytesOf(withKey, key, { range: { start: 9 * MiB, end: 9 * MiB + 99 } })).equals(data.subarray(9 * MiB, 9 * MiB + 100))).toBe(true);
    expect((await withKey.head(key)).size).toBe(data.length);
    expect(await unfinishedUploads(s3)).toEqual([]);
  });

  it('copy: CopyObject and UploadPartCopy (above copyThreshold) read the SSE-C source with the key and store the copy with it; a copy under another key is read only with that key', async () => {
    const small = uniqueKey('ssec-copy-src');
    const large = uniqueKey('ssec-copy-large');
    const smallData = randomBuffer(64 * 1024);
    const largeData = randomBuffer(11 * MiB);
    await withKey.upload({ key: small, body: smallData, contentType: 'image/png', metadata: { a: '1' } });
    await withKey.upload({ key: large, body: largeData, contentType: OCTET });
    for (const [from, data] of [
      [small, smallData],
      [large, largeData],
    ] as const) {
      const to = `${from}-copy`;
      await withKey.copy(from, to);
      expect(sha256(await bytesOf(withKey, to))).toBe(sha256(data));
      // The source's key reads it, the copy is stored under OTHER_KEY: only that key reads it.
      const other = `${from}-other`;
      await withKey.copy(from, other, { serverSideEncryption: ssec(OTHER_KEY) });
      expect(sha256(await bytesOf(withOtherKey, other))).toBe(sha256(data));
      if (ENFORCES_SSE_C) {
        const err = await rejection(bytesOf(withKey, other));
        expect([err.details?.reason, err.details?.field]).toEqual(['invalid_argument', 'serverSideEncryption']);
      } else {
        // moto and s3s-fs ignore SSE-C: any key (or none) reads it.
        expect(sha256(await bytesOf(withKey, other))).toBe(sha256(data));
      }
    }
    expect((await withKey.head(`${small}-copy`)).metadata).toEqual({ a: '1' });
    expect(await unfinishedUploads(s3)).toEqual([]);
  });

  it('without the key or with another: Garage refuses download, head, exists and copy (invalid_argument, field serverSideEncryption); moto and s3s-fs ignore SSE-C and serve the bytes', async () => {
    const key = uniqueKey('ssec-refused');
    const data = randomBuffer(1000);
    await withKey.upload({ key, body: data, contentType: OCTET });
    const plainKey = uniqueKey('ssec-plain');
    await plain.upload({ key: plainKey, body: data, contentType: OCTET });
    if (!ENFORCES_SSE_C) {
      expect((await bytesOf(plain, key)).equals(data)).toBe(true);
      expect((await bytesOf(withOtherKey, key)).equals(data)).toBe(true);
      expect((await plain.head(key)).size).toBe(data.length);
      expect((await bytesOf(withKey, plainKey)).equals(data)).toBe(true);
      return;
    }
    const refusals: [string, () => Promise<unknown>][] = [
      ['download without the key', () => bytesOf(plain, key)],
      ['parallel download without the key', () => bytesOf(plain, key, { concurrency: 2 })],
      ['download with another key', () => bytesOf(withOtherKey, key)],
      ['head without the key', () => plain.head(key)],
      ['head with another key', () => withOtherKey.head(key)],
      ['exists without the key', () => plain.exists(key)],
      ['copy without the key', () => plain.copy(key, `${key}-copy`)],
      ['a plain object read with a key', () => bytesOf(withKey, plainKey)],
    ];
    for (const [what, call] of refusals) {
      const err = await rejection(call());
      expect([err.details?.reason, err.details?.field, err.statusCode], what).toEqual(['invalid_argument', 'serverSideEncryption', 400]);
      expect(err.message, what).toContain('customer key (SSE-C)');
      expectNoKeyInError(err);
    }
    expect(await plain.exists(`${key}-copy`)).toBe(false);
  });

  it.runIf(ENFORCES_SSE_C)('Garage stores an SSE-C object encrypted: a plain upload\'s bytes are in its data directory, an SSE-C upload\'s are not', async () => {
    const marker = () => Buffer.concat([Buffer.from('MARKER-'), randomBytes(48)]);
    const plainData = marker();
    const secretData = marker();
    await plain.upload({ key: uniqueKey('ssec-disk-plain'), body: plainData, contentType: OCTET });
    await withKey.upload({ key: uniqueKey('ssec-disk-secret'), body: secretData, contentType: OCTET });
    const found = (needle: Buffer) => files(s3.dataDir!).some((f) => readFileSync(f).includes(needle));
    expect(found(plainData)).toBe(true); // the control: a plain object's bytes can be found
    expect(found(secretData)).toBe(false);
  });

  it("a per-upload SSE-C key replaces the backend's for PutObject and for every part and the Complete of a multipart upload; read back by a backend with that key", async () => {
    for (const size of [1000, 11 * MiB]) {
      const key = uniqueKey('ssec-per-upload');
      const data = randomBuffer(size);
      await withKey.upload({ key, body: data, contentType: OCTET, serverSideEncryption: ssec(OTHER_KEY) });
      expect(sha256(await bytesOf(withOtherKey, key))).toBe(sha256(data));
      if (ENFORCES_SSE_C) expect((await rejection(withKey.head(key))).details?.field).toBe('serverSideEncryption');
      // And back to AES256 on an SSE-C backend: stored without a customer key.
      const aes = `${key}-aes`;
      await withKey.upload({ key: aes, body: data, contentType: OCTET, serverSideEncryption: { type: 'AES256' } });
      expect(sha256(await bytesOf(plain, aes))).toBe(sha256(data));
    }
  });
});

/** Files under `dir`, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

describe('on the wire (through the relay proxy)', () => {
  let proxy: TestProxy;
  let wired: S3StorageBackend;
  beforeAll(async () => {
    proxy = await startProxy({ host: '127.0.0.1', port: s3.port });
    wired = backendAt(proxy.endpoint, { serverSideEncryption: ssec(KEY) });
  });
  afterAll(() => proxy?.close());

  const customer = (r: ProxyRequest) => [
    r.headers['x-amz-server-side-encryption-customer-algorithm'],
    r.headers['x-amz-server-side-encryption-customer-key'],
    r.headers['x-amz-server-side-encryption-customer-key-md5'],
  ];
  const source = (r: ProxyRequest) => [
    r.headers['x-amz-copy-source-server-side-encryption-customer-algorithm'],
    r.headers['x-amz-copy-source-server-side-encryption-customer-key'],
    r.headers['x-amz-copy-source-server-side-encryption-customer-key-md5'],
  ];
  const carried = (k: Buffer) => ['AES256', k.toString('base64'), md5b64(k)];
  const none = [undefined, undefined, undefined];
  const about = (key: string) => proxy.requests.filter((r) => decodeURIComponent(r.url.split('?')[0]).endsWith(`/${key}`));

  it('the SSE-C headers (algorithm, key, key MD5) go with PutObject, CreateMultipartUpload, every UploadPart, CompleteMultipartUpload, every GetObject (parallel parts too), HeadObject, and CopyObject / UploadPartCopy as source and target', async () => {
    proxy.reset();
    const small = uniqueKey('wire-small');
    const large = uniqueKey('wire-large');
    const data = randomBuffer(19 * MiB);
    await wired.upload({ key: small, body: data.subarray(0, 1000), contentType: OCTET });
    await wired.upload({ key: large, body: data, contentType: OCTET });
    await readAll(await wired.download(large, { concurrency: 3 }));
    await readAll(await wired.download(small));
    await wired.head(small);
    await wired.exists(small);
    await wired.copy(small, `${small}-copy`);
    await wired.copy(large, `${large}-copy`, { serverSideEncryption: ssec(OTHER_KEY) });

    const ops = (key: string) => about(key).map((r) => s3Op(r));
    expect(ops(small)).toEqual(['put', 'get', 'head', 'head', 'head']); // head, exists, the copy's HEAD of its source
    // The parallel download may also HEAD the version it reads (for its checksum); the copy HEADs its source.
    expect(ops(large).filter((op) => op !== 'head')).toEqual(['create', 'part', 'part', 'part', 'part', 'complete', 'get', 'get', 'get']);
    expect(ops(large).filter((op) => op === 'head').length).toBeGreaterThanOrEqual(1);
    for (const r of [...about(small), ...about(large)]) expect(customer(r), `${s3Op(r)} ${r.url}`).toEqual(carried(KEY));
    // The copies: the source read with the backend's key, the target written with its own.
    const copy = about(`${small}-copy`);
    expect(copy.map((r) => s3Op(r))).toEqual(['put']);
    expect([customer(copy[0]), source(copy[0])]).toEqual([carried(KEY), carried(KEY)]);
    const partCopy = about(`${large}-copy`);
    // moto: the upload checks with a HEAD whether it landed (see MOTO_COMPLETE).
    expect(partCopy.map((r) => s3Op(r)).filter((op) => op !== 'head')).toEqual(['create', 'part', 'part', 'part', 'part', 'complete']);
    for (const r of partCopy) {
      expect(customer(r), `${s3Op(r)} ${r.url}`).toEqual(carried(OTHER_KEY));
      expect(source(r), `${s3Op(r)} ${r.url}`).toEqual(s3Op(r) === 'part' ? carried(KEY) : none);
    }
    // No other encryption header beside them.
    expect(proxy.requests.filter((r) => r.headers['x-amz-server-side-encryption'] !== undefined)).toEqual([]);
  });

  it('a lost CompleteMultipartUpload answer: the HEAD that checks whether the upload landed carries the key, and the outcome reported matches what the server holds', async () => {
    proxy.reset();
    const key = uniqueKey('wire-lost-complete');
    const data = randomBuffer(11 * MiB);
    proxy.resetResponse(-1, 1, { method: 'POST', url: /uploadId=/ });
    const outcome = await wired.upload({ key, body: data, contentType: OCTET }).then(
      () => 'stored',
      (err: unknown) => (errors.push(err), 'failed'),
    );
    const heads = about(key).filter((r) => r.method === 'HEAD');
    expect(heads.length).toBeGreaterThanOrEqual(1);
    for (const r of heads) expect(customer(r)).toEqual(carried(KEY));
    const held = (await wired.exists(key)) ? sha256(await bytesOf(wired, key)) : 'absent';
    expect(held).toBe(outcome === 'stored' ? sha256(data) : 'absent');
  });

  it('AES256 / aws:kms headers go with PutObject, CreateMultipartUpload and CopyObject only: not with parts, GET or HEAD (S3 refuses them there)', async () => {
    const kms = backendAt(proxy.endpoint, { serverSideEncryption: { type: 'aws:kms', keyId: 'alias/school', bucketKey: true } });
    proxy.reset();
    const small = uniqueKey('wire-kms');
    const large = uniqueKey('wire-kms-large');
    await kms.upload({ key: small, body: Buffer.from('x'), contentType: OCTET });
    await kms.upload({ key: large, body: randomBuffer(6 * MiB), contentType: OCTET });
    await readAll(await kms.download(small));
    await kms.head(small);
    await kms.copy(small, `${small}-copy`, { serverSideEncryption: { type: 'AES256' } });
    const sse = (r: ProxyRequest) => [
      r.headers['x-amz-server-side-encryption'],
      r.headers['x-amz-server-side-encryption-aws-kms-key-id'],
      r.headers['x-amz-server-side-encryption-bucket-key-enabled'],
    ];
    const kmsHeaders = ['aws:kms', 'alias/school', 'true'];
    // moto: the multipart upload checks with a HEAD whether it landed (see MOTO_COMPLETE).
    const seen = [...about(small), ...about(large).filter((r) => r.method !== 'HEAD'), ...about(`${small}-copy`)].map((r) => [s3Op(r), sse(r)]);
    expect(seen).toEqual([
      ['put', kmsHeaders],
      ['get', none],
      ['head', none],
      ['head', none], // the copy's HEAD of its source
      ['create', kmsHeaders],
      ['part', none],
      ['part', none],
      ['complete', none],
      ['put', ['AES256', undefined, undefined]],
    ]);
    expect(proxy.requests.filter((r) => customer(r).some((h) => h !== undefined))).toEqual([]);
  });
});

describe('AES256 and aws:kms', () => {
  it('head() returns serverSideEncryption as the server stores it (moto: AES256, aws:kms with keyId and bucketKey; Garage and s3s-fs ignore the headers): backend option, per upload, multipart, copy', async () => {
    const kmsKey = 'arn:aws:kms:us-east-1:123456789012:key/school';
    const aes = backendAt(s3.endpoint, { serverSideEncryption: { type: 'AES256' } });
    const kms = backendAt(s3.endpoint, { serverSideEncryption: { type: 'aws:kms', keyId: kmsKey, bucketKey: true } });
    const key = uniqueKey('sse-s3');
    const expectHead = async (b: S3StorageBackend, k: string, sse: unknown) => {
      const head = await b.head(k);
      expect(head.serverSideEncryption, k).toEqual(ECHOES_SSE ? sse : undefined);
    };
    await aes.upload({ key, body: Buffer.from('a'), contentType: OCTET });
    await expectHead(aes, key, { type: 'AES256' });
    await kms.upload({ key: `${key}-kms`, body: randomBuffer(6 * MiB), contentType: OCTET }); // multipart
    // moto keeps the Bucket Key flag of a PutObject only, not of a CreateMultipartUpload (sent: the wire test above).
    await expectHead(kms, `${key}-kms`, { type: 'aws:kms', keyId: kmsKey });
    await kms.upload({ key: `${key}-kms-put`, body: Buffer.from('k'), contentType: OCTET });
    await expectHead(kms, `${key}-kms-put`, { type: 'aws:kms', keyId: kmsKey, bucketKey: true });
    await plain.upload({ key: `${key}-per-upload`, body: Buffer.from('b'), contentType: OCTET, serverSideEncryption: { type: 'aws:kms', keyId: kmsKey } });
    await expectHead(plain, `${key}-per-upload`, { type: 'aws:kms', keyId: kmsKey });
    await plain.upload({ key: `${key}-none`, body: Buffer.from('c'), contentType: OCTET });
    const none = await plain.head(`${key}-none`);
    expect(none.serverSideEncryption).toBeUndefined();
    // A copy is encrypted as the copying backend (or the call) says, not as its source.
    await aes.copy(`${key}-none`, `${key}-copy-default`);
    await expectHead(plain, `${key}-copy-default`, { type: 'AES256' });
    await plain.copy(`${key}-kms`, `${key}-copy-override`, { serverSideEncryption: { type: 'AES256' } });
    await expectHead(plain, `${key}-copy-override`, { type: 'AES256' });
    for (const k of [key, `${key}-kms`, `${key}-copy-default`, `${key}-copy-override`]) expect((await bytesOf(plain, k)).length).toBeGreaterThan(0);
  });
});

describe('signed URLs and forms', () => {
  it('SSE-C: getSignedUrl refuses without includeCustomerKey (invalid_argument, field serverSideEncryption), saying why', async () => {
    for (const method of ['GET', 'PUT'] as const) {
      const err = await rejection(withKey.getSignedUrl(uniqueKey('sse-url'), { method }));
      expect([err.details?.reason, err.details?.field]).toEqual(['invalid_argument', 'serverSideEncryption']);
      expect(err.message).toContain('includeCustomerKey');
      expectNoKeyInError(err);
    }
    // AES256 / aws:kms GET URLs need nothing: the service decrypts by itself.
    const aes = backendAt(s3.endpoint, { serverSideEncryption: { type: 'AES256' } });
    expect(await aes.getSignedUrl(uniqueKey('sse-url'))).not.toHaveProperty('headers');
  });

  it('SSE-C with includeCustomerKey: GET and PUT URLs work with the headers returned (signed); Garage refuses them without; JSON.stringify and util.inspect of the result show the key as [redacted]', async () => {
    const key = uniqueKey('ssec-url');
    const data = randomBuffer(5000);
    const put = await withKey.getSignedUrl(key, { method: 'PUT', includeCustomerKey: true });
    expect(Object.keys(put.headers ?? {}).sort()).toEqual([
      'x-amz-server-side-encryption-customer-algorithm',
      'x-amz-server-side-encryption-customer-key',
      'x-amz-server-side-encryption-customer-key-md5',
    ]);
    expect(put.headers!['x-amz-server-side-encryption-customer-key']).toBe(KEY.toString('base64'));
    expect(put.headers!['x-amz-server-side-encryption-customer-key-md5']).toBe(md5b64(KEY));
    expect(put.url).toContain('x-amz-server-side-encryption-customer-key');
    expectNoKey(put.url, 'the URL');
    for (const shown of [JSON.stringify(put), inspect(put, { depth: 5 })]) {
      expectNoKey(shown, 'the signed result');
      expect(shown).toContain('[redacted]');
    }
    // The headers are part of the signature: without them the signature does not match
    // (moto does not check signatures and stores the body).
    const bare = await fetch(put.url, { method: 'PUT', body: data });
    if (s3.server !== 'moto') expect([400, 403]).toContain(bare.status);
    const stored = await fetch(put.url, { method: 'PUT', body: data, headers: put.headers });
    expect(stored.status).toBe(200);
    expect((await bytesOf(withKey, key)).equals(data)).toBe(true);
    if (ENFORCES_SSE_C) expect((await rejection(bytesOf(plain, key))).details?.field).toBe('serverSideEncryption');

    const get = await withKey.getSignedUrl(key, { includeCustomerKey: true, downloadFilename: 'a.bin' });
    const read = await fetch(get.url, { headers: get.headers });
    expect(read.status).toBe(200);
    expect(Buffer.from(await read.arrayBuffer()).equals(data)).toBe(true);
    const without = await fetch(get.url);
    if (s3.server !== 'moto') expect([400, 403]).toContain(without.status);
    else expect(without.status).toBe(200); // moto: no signature check, no SSE-C
  });

  it('a PUT URL of an AES256 / aws:kms backend signs x-amz-server-side-encryption: sent, the object is stored so (moto returns it on HEAD)', async () => {
    const kms = backendAt(s3.endpoint, { serverSideEncryption: { type: 'aws:kms', keyId: 'alias/school' } });
    const key = uniqueKey('sse-put-url');
    const signed = await kms.getSignedUrl(key, { method: 'PUT', contentType: 'text/plain' });
    expect({ ...signed.headers }).toEqual({ 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'alias/school' });
    const res = await fetch(signed.url, { method: 'PUT', body: 'hello', headers: { 'content-type': 'text/plain', ...signed.headers } });
    expect(res.status).toBe(200);
    expect((await kms.head(key)).serverSideEncryption).toEqual(ECHOES_SSE ? { type: 'aws:kms', keyId: 'alias/school' } : undefined);
    if (s3.server !== 'moto') {
      const bare = await fetch(signed.url, { method: 'PUT', body: 'hello', headers: { 'content-type': 'text/plain' } });
      expect([400, 403]).toContain(bare.status); // a signed header missing (Garage: 400, s3s-fs: 403 signature mismatch)
    }
  });

  it('createPresignedPost: an SSE-C backend refuses (the form would hand the key to the browser); an AES256 form carries x-amz-server-side-encryption as a field and a condition', async () => {
    const err = await rejection(withKey.createPresignedPost({ key: uniqueKey('sse-post'), maxSize: 100 }));
    expect([err.details?.reason, err.details?.field]).toEqual(['invalid_argument', 'serverSideEncryption']);
    const aes = backendAt(s3.endpoint, { serverSideEncryption: { type: 'AES256' } });
    const key = uniqueKey('sse-post');
    const form = await aes.createPresignedPost({ key, maxSize: 100 });
    expect(form.fields['x-amz-server-side-encryption']).toBe('AES256');
    const policy = JSON.parse(Buffer.from(form.fields.Policy, 'base64').toString('utf8'));
    expect(policy.conditions).toContainEqual({ 'x-amz-server-side-encryption': 'AES256' });
    const body = new FormData();
    for (const [name, value] of Object.entries(form.fields)) body.append(name, value);
    body.append('file', new Blob([Buffer.from('posted')]), 'f.bin');
    const res = await fetch(form.url, { method: 'POST', body });
    expect([200, 201, 204]).toContain(res.status);
    // No server here applies the form field (moto stores a posted object without it; S3 does apply it).
    expect((await aes.head(key)).serverSideEncryption).toBeUndefined();
    expect((await bytesOf(aes, key)).toString()).toBe('posted');
  });
});

describe('the key nowhere else', () => {
  it('no onRequest event of this file (SSE-C uploads, parts, reads, copies, refusals) holds a key', () => {
    expect(events.length).toBeGreaterThan(50);
    expect(events.some((e) => e.s3Operation === 'UploadPartCopy')).toBe(true);
    expectNoKey(JSON.stringify(events), 'onRequest events');
    expectNoKey(inspect(events, { depth: 10 }), 'onRequest events');
  });

  it('no error of this file holds a key', () => {
    expect(errors.length).toBeGreaterThan(10);
    for (const err of errors) expectNoKeyInError(err);
  });
});
