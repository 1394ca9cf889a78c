// minio-js (npm minio), path-style, with our backend's part size (minio-js
// uploads one part at a time: it has no setting for parts in flight). Its
// multipart path (Buffers over one part, streams of unknown length) first calls
// ListMultipartUploads, which s3s-fs does not implement: those workloads fail
// here, as they would for users.
import * as Minio from 'minio';

export const label = 'minio-js';

/** s: the server; opts.multipart.partSize read from our backend's describe(). */
export function create(s, opts) {
  const u = new URL(s.endpoint);
  const c = new Minio.Client({
    endPoint: u.hostname,
    port: Number(u.port),
    useSSL: false,
    accessKey: s.accessKeyId,
    secretKey: s.secretAccessKey,
    region: s.region,
    pathStyle: true,
    partSize: opts.multipart.partSize,
  });
  const B = s.bucket;
  const meta = { 'Content-Type': 'application/octet-stream' };
  return {
    presign: (key) => c.presignedGetObject(B, key, 900),
    put: (key, buf) => c.putObject(B, key, buf, buf.length, meta),
    async head(key) {
      try {
        await c.statObject(B, key);
        return true;
      } catch (err) {
        if (err?.code === 'NotFound' || err?.code === 'NoSuchKey') return false;
        throw err;
      }
    },
    async get(key) {
      const chunks = [];
      for await (const ch of await c.getObject(B, key)) chunks.push(ch);
      return Buffer.concat(chunks);
    },
    del: (key) => c.removeObject(B, key),
    uploadBuffer: (key, buf) => c.putObject(B, key, buf, buf.length, meta),
    uploadStream: (key, readable) => c.putObject(B, key, readable, undefined, meta),
    downloadStream: (key) => c.getObject(B, key),
  };
}
