// @raptscallions/storage-s3-native, used as the host uses it (IStorageBackend).
import { S3StorageBackend } from '../../lib/index.mjs';

export const label = 'ours (storage-s3-native)';

export function create(s) {
  return createWith(S3StorageBackend, s);
}

/** The workloads on a backend class (this checkout's, or an earlier build's: peers/baseline.mjs). */
export function createWith(S3StorageBackend, s) {
  const b = new S3StorageBackend({
    bucket: s.bucket,
    region: s.region,
    endpoint: s.endpoint,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
  });
  const CT = 'application/octet-stream';
  const readAll = async (key) => {
    const chunks = [];
    for await (const c of await b.download(key)) chunks.push(c);
    return Buffer.concat(chunks);
  };
  return {
    presign: async (key) => (await b.getSignedUrl(key)).url,
    put: (key, buf) => b.upload({ key, body: buf, contentType: CT }),
    head: (key) => b.exists(key),
    get: readAll,
    del: (key) => b.delete(key),
    uploadBuffer: (key, buf) => b.upload({ key, body: buf, contentType: CT }),
    uploadStream: (key, readable) => b.upload({ key, body: readable, contentType: CT }),
    async download(key) {
      let n = 0;
      for await (const c of await b.download(key)) n += c.length;
      return n;
    },
  };
}
