// AWS SDK for JavaScript v3 as a TypeScript backend uses it: S3Client with
// forcePathStyle, PutObject/GetObject/HeadObject/DeleteObject, lib-storage
// Upload for streams of unknown length (with our backend's part size and parts
// in flight, from bench/run.mjs), s3-request-presigner for URLs. Defaults
// everywhere else (including the SDK's default request checksums).
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';

export const label = 'AWS SDK v3';

/** s: the server; opts.multipart: { partSize, queueSize } read from our backend's describe(). */
export function create(s, opts) {
  const { partSize, queueSize } = opts.multipart;
  const client = new S3Client({
    region: s.region,
    endpoint: s.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
  });
  const Bucket = s.bucket;
  const CT = 'application/octet-stream';
  return {
    presign: (key) => getSignedUrl(client, new GetObjectCommand({ Bucket, Key: key }), { expiresIn: 900 }),
    put: (key, buf) => client.send(new PutObjectCommand({ Bucket, Key: key, Body: buf, ContentType: CT })),
    async head(key) {
      try {
        await client.send(new HeadObjectCommand({ Bucket, Key: key }));
        return true;
      } catch (err) {
        if (err?.name === 'NotFound' || err?.$metadata?.httpStatusCode === 404) return false;
        throw err;
      }
    },
    async get(key) {
      const r = await client.send(new GetObjectCommand({ Bucket, Key: key }));
      return Buffer.from(await r.Body.transformToByteArray());
    },
    del: (key) => client.send(new DeleteObjectCommand({ Bucket, Key: key })),
    uploadBuffer: (key, buf) => client.send(new PutObjectCommand({ Bucket, Key: key, Body: buf, ContentType: CT })),
    uploadStream: (key, readable) => new Upload({ client, params: { Bucket, Key: key, Body: readable, ContentType: CT }, partSize, queueSize }).done(),
    async downloadStream(key) {
      const r = await client.send(new GetObjectCommand({ Bucket, Key: key }));
      return r.Body;
    },
  };
}
