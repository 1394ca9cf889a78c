// Types for s3-server.mjs.

export type ServerKind = 'builtin' | 's3s-fs' | 'garage' | 'moto';

export declare const S3S_FS_VERSION: string;
export declare const GARAGE_VERSION: string;
/** The region Garage signs with (set in its config). */
export declare const GARAGE_REGION: 'garage';
export declare const SERVER_KINDS: readonly ServerKind[];
/** Kinds that are s3s-fs 0.14.1 (the built-in server is its library). */
export declare function isS3sFs(kind: string | undefined): boolean;

export interface S3ServerOptions {
  /** Default "s3s-fs" (startServer only; the start<Kind> functions set it). */
  kind?: ServerKind;
  /** Bucket to create. Default "test-bucket". */
  bucket?: string;
  /** Default: random hex. */
  accessKeyId?: string;
  /** Default: random hex. */
  secretAccessKey?: string;
  /**
   * Base domain(s) for virtual-hosted style, e.g. "localhost" -> http://<bucket>.localhost:<port>.
   * s3s-fs: entries without a port get the server's port; add `localhost:<proxyPort>` for a
   * proxy in front. Garage (root_domain ".localhost") and moto ignore it.
   */
  domain?: string | string[];
  /** Keep data here (not removed on stop); a restart on it sees the same objects (not on moto). Default: a fresh temp dir, removed on stop. */
  dataDir?: string;
  /** A fixed port (to start a killed server again where it was). Default: a free one. */
  port?: number;
}

export interface S3Server {
  kind: ServerKind;
  /** http://127.0.0.1:PORT */
  endpoint: string;
  host: '127.0.0.1';
  port: number;
  /** "us-east-1", or "garage" for Garage. */
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * The server's directory: s3s-fs keeps the buckets (and multipart state) in it, Garage its
   * config, metadata and blocks, moto only its spooled large bodies.
   */
  dataDir: string;
  /** The first `domain` option, as given. */
  domain?: string;
  pid: number;
  /** Resolves once the process exited. */
  exited: Promise<void>;
  /** Sends `signal` (default SIGKILL) and waits for the exit; keeps the data directory. */
  kill(signal?: string | number): Promise<void>;
  createBucket(name: string): Promise<void>;
  /** Stops the server and removes a temporary data dir; safe to call more than once. */
  stop(): Promise<void>;
}

export interface SignInput {
  method: string;
  /** Full URL as the server will see it: its host:port is signed as the Host header. */
  url: string;
  headers?: Record<string, string | number>;
  accessKeyId: string;
  secretAccessKey: string;
  region?: string;
  /** Hex SHA-256 of the body, or UNSIGNED-PAYLOAD (the default). */
  payloadHash?: string;
}

export interface S3Coords {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** The region a server of this kind signs with. */
export declare function regionOf(kind: ServerKind): string;
/** Whether `file` exists and may be executed. */
export declare function isExecutable(file: string): boolean;
/** The first executable `name` (plus .exe on Windows) in a PATH directory. */
export declare function findOnPath(name: string): string | undefined;
/** garage from GARAGE_BIN, PATH or ~/.cargo/bin, or undefined. */
export declare function findGarage(): string | undefined;
/** moto_server from MOTO_SERVER_BIN or PATH, or undefined. */
export declare function findMoto(): string | undefined;
/** A 127.0.0.1 port nobody listens on (right now). */
export declare function freePort(): Promise<number>;
export declare function findOrInstallS3sFs(opts?: { install?: boolean }): Promise<string>;
/** Hex SHA-256 of a request body. */
export declare function hashPayload(body: string | Uint8Array): string;
/** SigV4 headers (lowercase names) for a raw request, including host, x-amz-date, x-amz-content-sha256, authorization. */
export declare function signHeaders(input: SignInput): Record<string, string>;
/** One SigV4-signed request to `coords.endpoint` + `pathAndQuery` (already URI-encoded). */
export declare function s3Request(coords: S3Coords, method: string, pathAndQuery: string, body?: string | Uint8Array): Promise<{ status: number; body: string }>;
/** Starts a server of `opts.kind` (default s3s-fs) with its bucket ready. */
export declare function startServer(opts?: S3ServerOptions): Promise<S3Server>;
export declare function startS3Server(opts?: Omit<S3ServerOptions, 'kind'>): Promise<S3Server>;
export declare function startGarage(opts?: Omit<S3ServerOptions, 'kind'>): Promise<S3Server>;
export declare function startMoto(opts?: Omit<S3ServerOptions, 'kind'>): Promise<S3Server>;

export interface GarageClusterOptions {
  /** Garage processes, one per node. Default 3. */
  nodes?: number;
  /** Default min(nodes, 3). */
  replicationFactor?: number;
  /** Bucket to create. Default "test-bucket". */
  bucket?: string;
  /** Default: random hex. */
  accessKeyId?: string;
  /** Default: random hex. Garage wants at least 16 characters. */
  secretAccessKey?: string;
}

export interface GarageCluster {
  kind: 'garage';
  nodes: number;
  replicationFactor: number;
  /** Node 0's S3 API, http://127.0.0.1:PORT */
  endpoint: string;
  /** Each node's S3 API, by node index. */
  endpoints: string[];
  /** Each node's S3 API port. */
  ports: number[];
  /** Each node's full id (hex public key). */
  nodeIds: string[];
  host: '127.0.0.1';
  region: 'garage';
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The cluster's temporary directory (node-<i>/ per node: config, metadata, blocks); removed by stop(). */
  dataDir: string;
  /** Whether node i's process is alive. */
  running(i: number): boolean;
  /** Node i's process id (its latest start). */
  pid(i: number): number;
  /** Sends `signal` (default SIGKILL) to node i and waits for its exit; keeps its directory. */
  kill(i: number, signal?: string | number): Promise<void>;
  /** Starts node i again on its ports and directory (rejects if it runs); resolves once it answers a signed HEAD of the bucket and is connected to the running nodes. */
  start(i: number): Promise<void>;
  /** `garage status` as node i (default: the first running node) sees it. */
  status(i?: number): Promise<string>;
  /** Stops every node and removes the directory; safe to call more than once. */
  stop(): Promise<void>;
}

/**
 * Starts a Garage cluster on 127.0.0.1: `nodes` processes (free ports, a temporary directory
 * each), connected, layout applied, key imported, bucket created; resolves once a signed HEAD
 * of the bucket answers 200 on every node.
 */
export declare function startGarageCluster(opts?: GarageClusterOptions): Promise<GarageCluster>;
