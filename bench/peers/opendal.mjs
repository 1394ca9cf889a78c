// Apache OpenDAL's Node binding (npm opendal@0.49.2: later prebuilt binaries need glibc 2.38).
import { Operator } from 'opendal';

export const label = 'OpenDAL 0.49.2';

/** s: the server; opts.multipart: { partSize, queueSize } read from our backend's describe(); opts.readChunk: bytes per read. */
export function create(s, opts) {
  const { partSize, queueSize } = opts.multipart;
  const op = new Operator('s3', {
    bucket: s.bucket,
    region: s.region,
    endpoint: s.endpoint,
    access_key_id: s.accessKeyId,
    secret_access_key: s.secretAccessKey,
    disable_config_load: 'true',
    disable_ec2_metadata: 'true',
  });
  const CT = 'application/octet-stream';
  return {
    presign: async (key) => (await op.presignRead(key, 900)).url,
    put: (key, buf) => op.write(key, buf, { contentType: CT }),
    head: (key) => op.stat(key),
    get: (key) => op.read(key),
    del: (key) => op.delete(key),
    uploadBuffer: (key, buf) => op.write(key, buf, { contentType: CT }),
    // Multipart with the same part size and parts in flight as ours.
    async uploadStream(key, readable) {
      const w = await op.writer(key, { contentType: CT, chunk: BigInt(partSize), concurrent: queueSize });
      const { pipeline } = await import('node:stream/promises');
      await pipeline(readable, w.createWriteStream());
    },
    // Reads of opts.readChunk bytes, as ours delivers (the binding's default highWaterMark is 16 KiB).
    async downloadStream(key) {
      const r = await op.reader(key);
      return r.createReadStream({ highWaterMark: opts.readChunk });
    },
  };
}
