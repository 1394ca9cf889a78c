// The S3 servers the integration suite runs against, picked with S3_TEST_SERVER (s3s-fs,
// the default; builtin, the package's own startLocalS3; garage; moto). They are started by scripts/s3-server.mjs (see there for what
// each is and where its binary comes from); this file adds what only tests need: the kind
// S3_TEST_SERVER names, and listings of what a server holds.
//
// Every server listens on a free 127.0.0.1 port, keeps its data in a temporary directory,
// has one bucket ready and random credentials, and is stopped (directory removed) by stop().
// With a fixed `port` and `dataDir` a server can be killed and started again where it was
// (faults-server-down.test.ts); moto keeps everything in memory, so a restarted moto is empty
// (its bucket is created again). .ci/run installs Garage and moto.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { freePort, isS3sFs, regionOf, s3Request, SERVER_KINDS, startServer, type S3Server, type S3ServerOptions, type ServerKind } from '../../scripts/s3-server.mjs';

export { freePort, isS3sFs, regionOf, type ServerKind };

/** The kind S3_TEST_SERVER names (default s3s-fs). */
export function selectedServerKind(): ServerKind {
  const value = process.env.S3_TEST_SERVER || 's3s-fs';
  if (!(SERVER_KINDS as readonly string[]).includes(value)) {
    throw new Error(`S3_TEST_SERVER=${value}: expected one of ${SERVER_KINDS.join(', ')}`);
  }
  return value as ServerKind;
}

export type TestServer = S3Server;
export type StartOptions = S3ServerOptions;

/** Starts a server of `opts.kind` (default: S3_TEST_SERVER) with a bucket ready to use. */
export function startTestServer(opts: StartOptions = {}): Promise<TestServer> {
  return startServer({ ...opts, kind: opts.kind ?? selectedServerKind() });
}

// ---- what a server holds (signed requests; no dependency on the library under test) ----

export interface Coords {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

const xmlValues = (xml: string, tag: string) => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]);

/** ListMultipartUploads on the bucket: `<key> <uploadId>` per unfinished upload. */
export async function listMultipartUploads(coords: Coords): Promise<string[]> {
  const res = await s3Request(coords, 'GET', `/${coords.bucket}?uploads=`);
  if (res.status !== 200) throw new Error(`ListMultipartUploads answered ${res.status}: ${res.body}`);
  return [...res.body.matchAll(/<Upload>([\s\S]*?)<\/Upload>/g)]
    .map((m) => `${xmlValues(m[1], 'Key')[0]} ${xmlValues(m[1], 'UploadId')[0]}`)
    .sort();
}

/** ListObjectsV2 on the bucket (first 1,000 keys). */
export async function listObjectKeys(coords: Coords, prefix = ''): Promise<string[]> {
  const res = await s3Request(coords, 'GET', `/${coords.bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
  if (res.status !== 200) throw new Error(`ListObjectsV2 answered ${res.status}: ${res.body}`);
  return xmlValues(res.body, 'Key').sort();
}

// State files s3s-fs 0.14.1 keeps for an unfinished multipart upload (all in the data dir root):
//   .upload-<uuid>.json                                    upload id -> access key
//   .upload_id-<uuid>.part-<n>                             uploaded parts
//   .bucket-<b64>.object-<b64>.upload-<uuid>.metadata.json metadata given at create
const UPLOAD_STATE = /^\.upload[-_]|\.upload-[0-9a-f-]{36}\.metadata\.json$/;

/** Paths (relative to dataDir) of s3s-fs multipart upload state files. */
export function listS3sFsLeftovers(dataDir: string): string[] {
  return readdirSync(dataDir, { recursive: true, encoding: 'utf8' })
    .filter((rel) => UPLOAD_STATE.test(path.basename(rel)))
    .sort();
}

/**
 * Unfinished uploads the server holds: on s3s-fs (no ListMultipartUploads) its multipart state
 * files, plus with `tempFiles` the `.tmp.*` files of PutObjects still being received; on
 * Garage, moto and external servers ListMultipartUploads on the bucket.
 */
export async function unfinishedUploads(
  server: Coords & { kind?: ServerKind | 'external'; server?: ServerKind | 'external'; dataDir?: string },
  { tempFiles = false } = {},
): Promise<string[]> {
  const kind = server.kind ?? server.server;
  if (isS3sFs(kind)) {
    if (!server.dataDir) throw new Error('an s3s-fs server without a data dir');
    const temp = tempFiles ? readdirSync(server.dataDir).filter((f) => f.startsWith('.tmp.')) : [];
    return [...listS3sFsLeftovers(server.dataDir), ...temp];
  }
  return listMultipartUploads(server);
}
