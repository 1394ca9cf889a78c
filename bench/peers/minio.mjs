// minio-js (npm minio), path-style. Its multipart path (Buffers over 64 MiB,
// streams of unknown length) first calls ListMultipartUploads, which s3s-fs
// does not implement: those workloads fail here, as they would for users.
import * as Minio from 'minio';

export const label = 'minio-js';

export function create(s) {
  const u = new URL(s.endpoint);
  const c = new Minio.Client({
    endPoint: u.hostname,
    port: Number(u.port),
    useSSL: false,
    accessKey: s.accessKeyId,
    secretKey: s.secretAccessKey,
    region: s.region,
    pathStyle: true,
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
    async download(key) {
      let n = 0;
      for await (const ch of await c.getObject(B, key)) n += ch.length;
      return n;
    },
  };
}
