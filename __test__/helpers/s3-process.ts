// An S3 server as a process the test controls: a fixed port and data dir, so it can be killed
// (SIGKILL) and started again where it was, with the same credentials and (except on moto,
// which keeps everything in memory) the same objects. The kind is S3_TEST_SERVER's
// (see servers.ts); scripts/s3-server.mjs picks a fresh port each time and owns its process.
import { freePort, startTestServer, type ServerKind, type TestServer } from './servers';

export { freePort };

export type S3Process = TestServer;

export interface S3ProcessOptions {
  port: number;
  dataDir: string;
  bucket?: string;
  accessKeyId: string;
  secretAccessKey: string;
  kind?: ServerKind;
}

/** Starts the server on `port` with `dataDir`; resolves when it serves its bucket. */
export function spawnS3Process(opts: S3ProcessOptions): Promise<S3Process> {
  return startTestServer({ ...opts });
}
