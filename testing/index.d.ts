// Typings of `@raptscallions/storage-s3-native/testing`.

/** Options of {@link startLocalS3}; every field is optional. */
export interface LocalS3Options {
  /**
   * Keep the buckets in this directory (created if missing, kept by `stop()`);
   * a server started again on it sees the same objects. Default: a fresh
   * directory in memory-backed storage where the system has one (`/dev/shm` on
   * Linux), else in the temp dir, removed by `stop()` or at process exit.
   */
  dir?: string;
  /** The bucket to create. Default `"test-bucket"`. */
  bucket?: string;
  /** Port on 127.0.0.1. Default: one the system picks. */
  port?: number;
  /** The region clients sign for. Default `"us-east-1"`. */
  region?: string;
  /** Fixed credentials instead of random ones: both or neither. */
  accessKeyId?: string;
  /** Fixed credentials instead of random ones: both or neither. */
  secretAccessKey?: string;
  /**
   * Base domain(s) for virtual-hosted-style requests, e.g. `"localhost"` for
   * `http://<bucket>.localhost:<port>` (the name must resolve to 127.0.0.1). A
   * domain without a port also matches with the server's port; add
   * `"localhost:<proxyPort>"` for a proxy in front. Path style always works.
   */
  domain?: string | string[];
}

/**
 * A running server. Its enumerable fields are valid `S3StorageBackend` options:
 * `new S3StorageBackend(s3)` (`dir`, `requestCount` and `stop` are not enumerable).
 * It also answers MinIO's health probes (unsigned GET/HEAD of
 * `/minio/health/live` and `/minio/health/ready`) with 200, so suites that wait
 * for MinIO run unchanged.
 */
export interface LocalS3 {
  /** `http://127.0.0.1:<port>` */
  endpoint: string;
  bucket: string;
  region: string;
  /** Random unless given: requests must be signed with them (SigV4 is checked strictly). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Where the objects are kept (one directory per bucket). */
  dir: string;
  /**
   * HTTP requests the server has answered so far (S3 requests, refused ones and
   * health probes alike), to see that a suite's traffic really reached it.
   */
  requestCount(): number;
  /** Stops the server (open requests get up to 2 s) and removes its directory unless `dir` was given. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a real S3 server inside this process, on 127.0.0.1, with one bucket and
 * random credentials: s3s and its file-system backend (the s3s-fs server, 0.14.1).
 * No child process, no Docker, no system change.
 *
 * @example
 * const s3 = await startLocalS3();
 * const backend = new S3StorageBackend(s3);
 * // ...
 * await s3.stop();
 */
export declare function startLocalS3(options?: LocalS3Options): Promise<LocalS3>;
