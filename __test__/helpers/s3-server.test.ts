import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { startS3Server } from '../../scripts/s3-server.mjs';
import { signedRequest } from './http';
import { listLeftovers, localhostResolves, testServer, uniqueKey } from './s3';

const s3 = testServer();
/** Virtual-hosted style needs <bucket>.<domain> to resolve here (localhostResolves). */
const vhost = await localhostResolves(`${s3.bucket}.${s3.domain ?? 'localhost'}`);
const creds = { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region };

describe('shared test server', () => {
  it('serves path-style requests on its endpoint', async () => {
    const url = `${s3.endpoint}/${s3.bucket}/${uniqueKey('path')}`;
    expect((await signedRequest({ method: 'PUT', url, body: 'path', creds })).status).toBe(200);
    expect((await signedRequest({ method: 'GET', url, creds })).body.toString()).toBe('path');
  });

  it.runIf(s3.domain && vhost)('serves virtual-hosted-style requests on <bucket>.<domain>:<port>', async () => {
    const key = uniqueKey('vhost');
    const url = `http://${s3.bucket}.${s3.domain}:${s3.port}/${key}`;
    expect((await signedRequest({ method: 'PUT', url, body: 'vhost', creds })).status).toBe(200);
    // Same object, path style.
    const get = await signedRequest({ method: 'GET', url: `${s3.endpoint}/${s3.bucket}/${key}`, creds });
    expect(get.body.toString()).toBe('vhost');
  });
});

describe('startS3Server', () => {
  it('creates buckets, tracks multipart state files and cleans up on stop', async () => {
    const server = await startS3Server({ bucket: 'first-bucket' });
    try {
      const own = { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey };
      await server.createBucket('second-bucket');
      const url = `${server.endpoint}/second-bucket/mp.bin`;

      const created = await signedRequest({ method: 'POST', url: `${url}?uploads=`, creds: own });
      const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.body.toString())?.[1];
      expect(uploadId, created.body.toString()).toBeTruthy();
      const part = await signedRequest({ method: 'PUT', url: `${url}?partNumber=1&uploadId=${uploadId}`, body: 'part', creds: own });
      expect(part.status).toBe(200);
      expect(listLeftovers(server.dataDir)).toEqual(
        [
          `.bucket-${b64url('second-bucket')}.object-${b64url('mp.bin')}.upload-${uploadId}.metadata.json`,
          `.upload-${uploadId}.json`,
          `.upload_id-${uploadId}.part-1`,
        ].sort(),
      );

      const aborted = await signedRequest({ method: 'DELETE', url: `${url}?uploadId=${uploadId}`, creds: own });
      expect(aborted.status).toBe(204);
      expect(listLeftovers(server.dataDir)).toEqual([]);
    } finally {
      await server.stop();
    }
    expect(existsSync(server.dataDir)).toBe(false);
    expect(() => process.kill(server.pid, 0)).toThrow(); // gone
    await server.stop(); // second call is a no-op
  });
});

function b64url(s: string) {
  return Buffer.from(s).toString('base64url');
}
