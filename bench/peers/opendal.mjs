// Apache OpenDAL's Node binding (npm opendal@0.49.2: later prebuilt binaries need glibc 2.38).
import { Operator } from 'opendal';

export const label = 'OpenDAL 0.49.2';

const MiB = 1024 * 1024;

export function create(s) {
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
    // Multipart with the same part size and parallelism as ours (8 MiB, 4 in flight).
    async uploadStream(key, readable) {
      const w = await op.writer(key, { contentType: CT, chunk: BigInt(8 * MiB), concurrent: 4 });
      const { pipeline } = await import('node:stream/promises');
      await pipeline(readable, w.createWriteStream());
    },
    // 1 MiB reads, as ours does (the binding's default highWaterMark is 16 KiB).
    async download(key) {
      const r = await op.reader(key);
      let n = 0;
      for await (const c of r.createReadStream({ highWaterMark: MiB })) n += c.length;
      return n;
    },
  };
}
