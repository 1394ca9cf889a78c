// @raptscallions/storage-s3-native, used as the host uses it (IStorageBackend).
import { S3StorageBackend } from '../../lib/index.mjs';

export const label = 'ours (storage-s3-native)';

export function create(s) {
  return createWith(S3StorageBackend, s);
}

/** The options the benchmark gives the backend: the server and nothing else (multipart and the rest at their defaults). */
export const backendOptions = (s) => ({
  bucket: s.bucket,
  region: s.region,
  endpoint: s.endpoint,
  credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
});

/**
 * The workloads on a backend class (this checkout's, or an earlier build's: peers/baseline.mjs).
 * Its multipart settings are its defaults; bench/run.mjs reads them from describe() and gives the
 * same part size and parts in flight to every other client's multipart path.
 */
export function createWith(S3StorageBackend, s) {
  const b = new S3StorageBackend(backendOptions(s));
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
    get: b.downloadBuffer ? (key) => b.downloadBuffer(key) : readAll,
    // The host's path: download() as a Readable, read to its end.
    getStream: readAll,
    del: (key) => b.delete(key),
    uploadBuffer: (key, buf) => b.upload({ key, body: buf, contentType: CT }),
    uploadStream: (key, readable) => b.upload({ key, body: readable, contentType: CT }),
    /** The object as an async iterable of chunks (the worker consumes it the same way for every client). */
    downloadStream: (key) => b.download(key),
    /** The settings in force: multipart.partSize, multipart.queueSize (parts in flight), … */
    describe: () => b.describe(),
  };
}
