// End-to-end checksums on upload: `upload({ checksum })` computes the value as the body
// streams and sends it for the service to verify; the result (and head()) carry it.
// Server differences are stated next to the assertions they change.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { S3StorageBackend, StorageError } from '../lib/index.mjs';
import { testServer, unfinishedUploads, uniqueKey } from './helpers/s3';
import { MiB, randomBuffer, readAll, sha256 } from './helpers/streams';

const s3 = testServer();
const options = {
  bucket: s3.bucket,
  region: s3.region,
  endpoint: s3.endpoint,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
};
/** 5 MiB parts above 5 MiB. */
const backend = new S3StorageBackend({ ...options, multipart: { partSize: 5 * MiB, threshold: 5 * MiB, queueSize: 2 } });
/** One PutObject up to 64 MiB. */
const single = new S3StorageBackend({ ...options, multipart: { partSize: 5 * MiB, threshold: 64 * MiB, queueSize: 2 } });
const OCTET = 'application/octet-stream';
const ALGORITHMS = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA256'] as const;
/** Bytes of each algorithm's value. */
const SIZE = { CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA256: 32 } as const;

describe('upload({ checksum })', () => {
  it.each(ALGORITHMS)('%s, one PutObject (Buffer): resolves with the value, which the service accepted; head() returns it (s3s-fs, built-in)', async (algorithm) => {
    const key = uniqueKey(`checksum-${algorithm}`);
    const data = randomBuffer(300 * 1024);
    const out = await backend.upload({ key, body: data, contentType: OCTET, checksum: algorithm });
    expect(out.checksum?.algorithm).toBe(algorithm);
    expect(Buffer.from(out.checksum!.value, 'base64')).toHaveLength(SIZE[algorithm]);
    if (algorithm === 'SHA256') expect(out.checksum!.value).toBe(createHash('sha256').update(data).digest('base64'));
    expect(sha256(await readAll(await backend.download(key)))).toBe(sha256(data));
    const h = await backend.head(key);
    // s3s-fs (and the built-in server) return it on HEAD; Garage 2.5.0 and moto 5 do not.
    if (s3.server === 'builtin' || s3.server === 's3s-fs') expect(h.checksum).toEqual(out.checksum);
    else expect(h.checksum === undefined || h.checksum.value === out.checksum!.value).toBe(true);
  });

  it.each(ALGORITHMS.filter((a) => a !== 'SHA256'))(
    '%s, multipart: the whole-object (FULL_OBJECT) value equals that of the same bytes sent in one PutObject',
    async (algorithm) => {
      const data = randomBuffer(11 * MiB + 123);
      const whole = await single.upload({ key: uniqueKey('checksum-single'), body: data, contentType: OCTET, checksum: algorithm });
      const key = uniqueKey('checksum-multipart');
      const parts = await backend.upload({ key, body: Readable.from([data]), contentType: OCTET, checksum: algorithm });
      expect(parts.etag).toMatch(/-3"$/); // three parts
      expect(parts.checksum).toEqual(whole.checksum);
      if (s3.server === 'moto' && algorithm !== 'CRC32') {
        // moto stores its own, wrong CRC32C / CRC64NVME value for a multipart object (not the
        // one sent), so the download's verification refuses the bytes there.
        const err = await readAll(await backend.download(key)).catch((e: unknown) => e);
        expect((err as StorageError).details?.reason).toBe('checksum_mismatch');
      } else {
        expect(sha256(await readAll(await backend.download(key)))).toBe(sha256(data));
      }
      expect(await unfinishedUploads(s3)).toEqual([]);
    },
  );

  it('SHA256, multipart: stored whole; the value is the service\'s composite one when it gives one', async () => {
    const key = uniqueKey('checksum-sha-multipart');
    const data = randomBuffer(11 * MiB);
    const out = await backend.upload({ key, body: Readable.from([data]), contentType: OCTET, checksum: 'SHA256' });
    expect(sha256(await readAll(await backend.download(key)))).toBe(sha256(data));
    // s3s-fs computes no composite value: then none is reported (nothing was computed for the whole object).
    if (out.checksum) expect(out.checksum.value).toMatch(/-3$/);
  });

  it('a stream with contentLength above a part goes as multipart when a checksum is asked for (its value must precede the body)', async () => {
    const key = uniqueKey('checksum-sized');
    const data = randomBuffer(6 * MiB);
    const out = await single.upload({ key, body: Readable.from([data]), contentLength: data.length, contentType: OCTET, checksum: 'CRC32C' });
    expect(out.etag).toMatch(/-2"$/);
    const whole = await single.upload({ key: uniqueKey('checksum-sized-whole'), body: data, contentType: OCTET, checksum: 'CRC32C' });
    expect(out.checksum).toEqual(whole.checksum);
  });

  it('without checksum nothing is reported, and an unknown algorithm is refused before any request, naming the field', async () => {
    const key = uniqueKey('checksum-none');
    const out = await backend.upload({ key, body: Buffer.from('x'), contentType: OCTET });
    expect(out.checksum).toBeUndefined();
    const err = await backend.upload({ key: uniqueKey('checksum-bad'), body: Buffer.from('x'), contentType: OCTET, checksum: 'MD5' as never }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as StorageError).details).toMatchObject({ reason: 'invalid_argument', field: 'checksum' });
    expect((err as StorageError).message).toContain("'CRC32', 'CRC32C', 'CRC64NVME', 'SHA256'");
  });
});
