// `@raptscallions/storage-s3-native/testing`: startLocalS3(), the S3 server inside the addon.
// It runs in this vitest worker, imported from ESM and from CJS, and is checked as a server:
// strict SigV4, its own random credentials, 127.0.0.1, objects in memory or in `dir`.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { S3StorageBackend, StorageError } from '@raptscallions/storage-s3-native';
import { startLocalS3 as startFromEsm, type LocalS3 } from '@raptscallions/storage-s3-native/testing';
import { localhostResolves } from './helpers/s3';

const require = createRequire(import.meta.url);
const { startLocalS3: startFromCjs } = require('@raptscallions/storage-s3-native/testing') as typeof import('@raptscallions/storage-s3-native/testing');

const vhost = await localhostResolves();
const started: LocalS3[] = [];
async function start(options?: Parameters<typeof startFromEsm>[0]) {
  const s3 = await startFromEsm(options);
  started.push(s3);
  return s3;
}
afterAll(async () => {
  for (const s3 of started) await s3.stop();
});

async function text(stream: AsyncIterable<Buffer>) {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks).toString();
}

describe('startLocalS3', () => {
  it('the ESM and the CJS entry are the same function', () => {
    expect(startFromCjs).toBe(startFromEsm);
  });

  for (const [entry, startLocalS3] of [
    ['ESM', startFromEsm],
    ['CJS', startFromCjs],
  ] as const) {
    it(`${entry}: starts on 127.0.0.1 with the bucket, and the backend built from it round-trips`, async () => {
      const s3 = await startLocalS3();
      try {
        expect(s3.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
        expect(s3).toMatchObject({ bucket: 'test-bucket', region: 'us-east-1' });
        const backend = new S3StorageBackend(s3);
        await backend.upload({ key: 'work/essay ü.txt', body: Buffer.from('essay'), contentType: 'text/plain' });
        expect(await backend.exists('work/essay ü.txt')).toBe(true);
        expect(await text(await backend.download('work/essay ü.txt'))).toBe('essay');
        await backend.delete('work/essay ü.txt');
        expect(await backend.exists('work/essay ü.txt')).toBe(false);
      } finally {
        await s3.stop();
      }
    });
  }

  it('makes different random credentials for each server', async () => {
    const [a, b] = await Promise.all([start(), start()]);
    expect(a.credentials.accessKeyId).not.toBe(b.credentials.accessKeyId);
    expect(a.credentials.secretAccessKey).not.toBe(b.credentials.secretAccessKey);
    expect(a.credentials.secretAccessKey).toHaveLength(40);
    expect(a.endpoint).not.toBe(b.endpoint);
  });

  it('checks SigV4: a wrong secret is refused with reason auth, an unsigned request with 403', async () => {
    const s3 = await start();
    const wrong = new S3StorageBackend({ ...s3, credentials: { ...s3.credentials, secretAccessKey: 'x'.repeat(40) }, retry: { maxAttempts: 1 } });
    const err = await wrong.upload({ key: 'k', body: Buffer.from('x'), contentType: 'text/plain' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).details?.reason).toBe('auth');
    const res = await fetch(`${s3.endpoint}/${s3.bucket}/k`);
    expect(res.status).toBe(403);
    expect(await new S3StorageBackend(s3).exists('k')).toBe(false); // the refused upload stored nothing
  });

  it('signed URLs from the backend work with plain fetch', async () => {
    const s3 = await start();
    const backend = new S3StorageBackend(s3);
    const put = await backend.getSignedUrl('signed.txt', { method: 'PUT', contentType: 'text/plain' });
    expect((await fetch(put.url, { method: 'PUT', body: 'via url', headers: { 'content-type': 'text/plain' } })).status).toBe(200);
    const get = await backend.getSignedUrl('signed.txt');
    expect(await (await fetch(get.url)).text()).toBe('via url');
  });

  it('without dir: objects live in a directory of its own (memory-backed /dev/shm on Linux), removed by stop()', async () => {
    const s3 = await startFromEsm();
    await new S3StorageBackend(s3).upload({ key: 'a.txt', body: Buffer.from('a'), contentType: 'text/plain' });
    if (process.platform === 'linux' && existsSync('/dev/shm')) expect(s3.dir.startsWith('/dev/shm/')).toBe(true);
    expect(readdirSync(path.join(s3.dir, s3.bucket))).toContain('a.txt');
    await s3.stop();
    expect(existsSync(s3.dir)).toBe(false);
    await s3.stop(); // twice is fine
  });

  it('with dir: objects stay there after stop(), and a server started again on it sees them', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'local-s3-'));
    try {
      const first = await startFromEsm({ dir, bucket: 'files' });
      await new S3StorageBackend(first).upload({ key: 'kept.txt', body: Buffer.from('kept'), contentType: 'text/plain' });
      await first.stop();
      expect(existsSync(path.join(dir, 'files', 'kept.txt'))).toBe(true);
      const again = await startFromEsm({ dir, bucket: 'files', ...first.credentials });
      expect(await text(await new S3StorageBackend(again).download('kept.txt'))).toBe('kept');
      await again.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('takes a fixed port, region and credentials', async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const s3 = await start({ port, region: 'eu-west-1', accessKeyId: 'AKIALOCALTEST0000000', secretAccessKey: 's'.repeat(40) });
    expect(s3.endpoint).toBe(`http://127.0.0.1:${port}`);
    expect(s3).toMatchObject({ region: 'eu-west-1', credentials: { accessKeyId: 'AKIALOCALTEST0000000', secretAccessKey: 's'.repeat(40) } });
    expect(await new S3StorageBackend(s3).exists('nothing')).toBe(false);
  });

  it.skipIf(!vhost)('with domain: virtual-hosted-style requests reach the bucket', async () => {
    const s3 = await start({ domain: 'localhost' });
    const port = new URL(s3.endpoint).port;
    const backend = new S3StorageBackend({ ...s3, endpoint: `http://localhost:${port}`, forcePathStyle: false });
    await backend.upload({ key: 'vh.txt', body: Buffer.from('vh'), contentType: 'text/plain' });
    expect(await text(await new S3StorageBackend(s3).download('vh.txt'))).toBe('vh');
  });

  it('bad options are refused before anything starts, naming the option', async () => {
    await expect(startFromEsm({ buckett: 'x' } as never)).rejects.toThrow(/unknown option "buckett"/);
    await expect(startFromEsm({ port: 70000 })).rejects.toThrow(/port must be an integer from 0 to 65535/);
    await expect(startFromEsm({ bucket: 'A_B' })).rejects.toThrow(/bucket "A_B" is not a valid S3 bucket name/);
    await expect(startFromEsm({ accessKeyId: 'only-one' })).rejects.toThrow(/accessKeyId and secretAccessKey go together/);
    await expect(startFromEsm({ dir: 42 } as never)).rejects.toThrow(/dir must be a string/);
  });

  it('a port already in use is an error that names it', async () => {
    const s3 = await start();
    const port = Number(new URL(s3.endpoint).port);
    await expect(startFromEsm({ port })).rejects.toThrow(new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
  });

  it("answers MinIO's unsigned health probes with 200, so suites that wait for MinIO run unchanged", async () => {
    const s3 = await start();
    for (const probe of ['/minio/health/live', '/minio/health/ready']) {
      expect((await fetch(`${s3.endpoint}${probe}`)).status).toBe(200);
      expect((await fetch(`${s3.endpoint}${probe}`, { method: 'HEAD' })).status).toBe(200);
    }
    // Anything else unsigned is refused as before.
    expect((await fetch(`${s3.endpoint}/minio/health/other`)).status).toBe(403);
  });

  it('requestCount() counts the HTTP requests the server answered', async () => {
    const s3 = await start();
    expect(s3.requestCount()).toBe(0);
    const backend = new S3StorageBackend(s3);
    await backend.upload({ key: 'n.txt', body: Buffer.from('n'), contentType: 'text/plain' });
    await backend.exists('n.txt');
    await fetch(`${s3.endpoint}/minio/health/live`);
    expect(s3.requestCount()).toBe(3);
    expect(Object.keys(s3).sort()).toEqual(['bucket', 'credentials', 'endpoint', 'region']);
  });

  it('storage-s3-local (testing/serve.mjs) stops on its own when the process that started it is gone', async () => {
    const serve = path.join(path.dirname(require.resolve('@raptscallions/storage-s3-native/testing')), 'serve.mjs');
    // A parent shell that starts the server, prints its first line and exits at once.
    const { execFileSync } = await import('node:child_process');
    const line = execFileSync('sh', ['-c', `"${process.execPath}" "${serve}" & sleep 1; exit 0`], { encoding: 'utf8', timeout: 10_000 })
      .split('\n')
      .find((l) => l.startsWith('{'));
    const { endpoint, dir } = JSON.parse(line!) as { endpoint: string; dir: string };
    const answers = async () => (await fetch(`${endpoint}/minio/health/live`).then((r) => r.status, () => 'closed'));
    await expect.poll(answers, { timeout: 5_000, interval: 200 }).toBe('closed');
    await expect.poll(() => existsSync(dir), { timeout: 5_000 }).toBe(false);
  });

  it('after stop() the port is closed', async () => {
    const s3 = await startFromEsm();
    await s3.stop();
    const err = await new S3StorageBackend({ ...s3, retry: { maxAttempts: 1 } }).exists('k').catch((e: unknown) => e);
    expect((err as StorageError).details?.reason).toBe('unavailable');
  });
});
