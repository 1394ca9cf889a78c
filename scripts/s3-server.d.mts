// Types for s3-server.mjs.

export declare const S3S_FS_VERSION: string;

export interface S3ServerOptions {
  /** Bucket to create (a directory in dataDir). Default "test-bucket". */
  bucket?: string;
  /** Default: random hex. */
  accessKeyId?: string;
  /** Default: random hex. */
  secretAccessKey?: string;
  /**
   * Base domain(s) for virtual-hosted style, e.g. "localhost" -> http://<bucket>.localhost:<port>.
   * Entries without a port get the server's port; add `localhost:<proxyPort>` for a proxy in front.
   */
  domain?: string | string[];
  /** Keep data here (not removed on stop). Default: a fresh temp dir, removed on stop. */
  dataDir?: string;
}

export interface S3Server {
  /** http://127.0.0.1:PORT */
  endpoint: string;
  host: '127.0.0.1';
  port: number;
  region: 'us-east-1';
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  dataDir: string;
  /** The first `domain` option, as given. */
  domain?: string;
  pid: number;
  createBucket(name: string): Promise<void>;
  /** Kill s3s-fs and remove the temp data dir; safe to call more than once. */
  stop(): Promise<void>;
}

/** Whether `file` exists and may be executed. */
export declare function isExecutable(file: string): boolean;
/** The first executable `name` (plus .exe on Windows) in a PATH directory. */
export declare function findOnPath(name: string): string | undefined;
/** A 127.0.0.1 port nobody listens on (right now). */
export declare function freePort(): Promise<number>;
export declare function findOrInstallS3sFs(opts?: { install?: boolean }): Promise<string>;
export declare function startS3Server(opts?: S3ServerOptions): Promise<S3Server>;
