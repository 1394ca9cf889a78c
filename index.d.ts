import type { Readable } from 'node:stream'
import type { ReadableStream as WebReadableStream } from 'node:stream/web'

// ---- The host's storage interface (identical in shape) --------------------

export interface UploadParams {
  /** Storage key, e.g. "group-1/2026/11/<uuid>.pdf". At most 1024 UTF-8 bytes. */
  key: string
  /** The whole file, or a stream of it (chunks: Buffer, Uint8Array or string). */
  body: Buffer | Readable
  /** MIME type stored with the object. */
  contentType: string
  /** Byte count, when the caller knows it; a stream of another length is rejected and nothing is stored. */
  contentLength?: number
  /** User metadata (x-amz-meta-*): printable ASCII, names are returned lower-cased. */
  metadata?: Record<string, string>
}

export interface UploadResult {
  key: string
  etag?: string
  url?: string
}

export interface SignedUrlOptions {
  /** Seconds, an integer from 1 to 604800; the backend's default (900) when absent. */
  expiresIn?: number
  /** GET when absent. */
  method?: 'GET' | 'PUT'
  /** For PUT: the Content-Type the uploader must send (it is signed). On a GET URL it is an error (use `responseContentType`). */
  contentType?: string
}

export interface SignedUrl {
  url: string
  /** ISO 8601. */
  expiresAt: string
}

export interface IStorageBackend {
  upload(params: UploadParams): Promise<UploadResult>
  download(key: string): Promise<Readable>
  delete(key: string): Promise<void>
  exists(key: string): Promise<boolean>
  getSignedUrl(key: string, options?: SignedUrlOptions): Promise<SignedUrl>
}

// ---- This package ---------------------------------------------------------

/**
 * `UploadParams` with every body the package takes: also a `Uint8Array` (sent
 * without a copy) and a web `ReadableStream` (e.g. `fetch()`'s `response.body`;
 * streamed like a `Readable`).
 */
export interface UploadInput extends Omit<UploadParams, 'body'> {
  body: Buffer | Uint8Array | Readable | WebReadableStream<Uint8Array>
  /**
   * `'*'`: store only if no object is at the key. Otherwise the call rejects with
   * `StorageError` reason `precondition_failed` (412), or `conflict` (409) when
   * another conditional write was in progress; the stored object stays as it was.
   * On multipart uploads it goes on CompleteMultipartUpload (the parts are then
   * aborted). Garage ignores it; see docs/compatibility.md.
   */
  ifNoneMatch?: '*'
  /** Store only if the object at the key has this ETag (e.g. from `head()`); else as `ifNoneMatch`. */
  ifMatch?: string
  /** `Cache-Control` stored with the object and sent with every download. */
  cacheControl?: string
  /** `Content-Disposition`, e.g. `attachment; filename="essay.pdf"`. */
  contentDisposition?: string
  /** `Content-Encoding`, e.g. `gzip` for a body you compressed. */
  contentEncoding?: string
  /** `Content-Language`, e.g. `en-GB`. */
  contentLanguage?: string
  /** `Expires`: a Date or an ISO 8601 string. */
  expires?: Date | string
  /** Storage class, e.g. `STANDARD_IA` (the service decides which it has). */
  storageClass?: string
  /** Up to 10 tags (keys 1–128 characters, values up to 256), sent as `x-amz-tagging`. */
  tags?: Record<string, string>
  /**
   * An end-to-end checksum, computed as the body streams (nothing buffered beyond a
   * part) and sent for the service to verify (a mismatch rejects, nothing stored).
   * Multipart uploads send each part's, and for the CRCs the whole object's
   * (FULL_OBJECT); for SHA256 the service computes a composite value (`…-N`). A
   * stream with `contentLength` above `partSize` then goes as multipart. Without it,
   * nothing changes: checksums only where an operation requires one.
   */
  checksum?: ChecksumAlgorithm
  /**
   * How the service encrypts this object at rest, instead of the backend's
   * `serverSideEncryption`. With SSE-C the object can later be read, copied and signed
   * only by a backend whose `serverSideEncryption` holds the same key.
   */
  serverSideEncryption?: ServerSideEncryption
}

/**
 * Server-side encryption of an object at rest:
 * - `AES256`: SSE-S3, keys managed by the service.
 * - `aws:kms`: SSE-KMS with `keyId` (a key id, ARN or alias; absent: the account's
 *   `aws/s3` key), `bucketKey` for an S3 Bucket Key.
 * - `SSE-C`: the service encrypts with `key` (exactly 32 bytes, e.g.
 *   `crypto.randomBytes(32)`) and keeps only its MD5. Every request on such an object
 *   must send the key (the backend does, with its own key); a lost key is a lost object.
 *   The key never appears in errors, `describe()`, `JSON.stringify`, `util.inspect` or
 *   `onRequest` events.
 */
export type ServerSideEncryption =
  | { type: 'AES256' }
  | { type: 'aws:kms'; keyId?: string; bucketKey?: boolean }
  | { type: 'SSE-C'; key: Buffer | Uint8Array }

export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA256'

/** A checksum as S3 gives it: `value` base64. */
export interface ChecksumValue {
  algorithm: ChecksumAlgorithm
  value: string
}

/** What `upload()` resolves with: the host's `UploadResult`, and the version when the service gives one. */
export interface UploadOutput extends UploadResult {
  /** The new object's version id (a versioned bucket; Garage sends one always). */
  versionId?: string
  /** With `checksum`: the object's checksum (the service's, or the one sent when it returns none). */
  checksum?: ChecksumValue
}

/** `delete()` options. */
export interface DeleteOptions extends CallOptions {
  /** Remove this version of the object for good (a versioned bucket). */
  versionId?: string
}

export interface S3Credentials {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
}

export interface MultipartOptions {
  /** Bytes per part, 5 MiB to 5 GiB. Default 5 MiB. */
  partSize?: number
  /** Parts uploaded at once, 1 to 64. Default 3. Part buffers stay under partSize × (queueSize + 1). */
  queueSize?: number
  /** Bodies of known length up to this many bytes go in one PutObject. Default 256 MiB (a Buffer above it goes as concurrent parts). */
  threshold?: number
  /** `copy()` of objects up to this size is one CopyObject; above it, UploadPartCopy. Default and maximum 5 GiB. */
  copyThreshold?: number
  /** Bytes per UploadPartCopy above `copyThreshold` (raised when 10,000 parts would not do). Default 512 MiB. */
  copyPartSize?: number
}

export interface RetryOptions {
  /** Attempts in all, the first included (1–20; 1 disables retries). Default 3. */
  maxAttempts?: number
  /** First backoff in ms; doubles per retry, with full jitter. Default 100. */
  baseDelayMs?: number
  /** Backoff ceiling in ms. Default 5000. */
  maxDelayMs?: number
}

export interface TimeoutOptions {
  /** Establishing a connection. Default 5000 ms. */
  connectMs?: number
  /**
   * The longest the service may go without progress: answering a request,
   * taking upload bytes, or sending download bytes that were asked for.
   * Default 30000 ms. A stall becomes a StorageError with reason "unavailable".
   */
  requestMs?: number
}

/** The optional last argument of every method. */
export interface CallOptions {
  /** Aborting rejects at once with reason "aborted", stops the transfer and frees its connection. */
  signal?: AbortSignal
}

/** Progress of a transfer: bytes sent (upload) or delivered to the stream (download). */
export interface TransferProgress {
  loaded: number
  /** Known for Buffers, streams with contentLength, and downloads. */
  total?: number
}

export interface TransferOptions extends CallOptions {
  /**
   * Called as bytes move (uploads: every 100 ms while sending, and once at the
   * end; downloads: per chunk). `loaded` never decreases. What it throws is ignored.
   */
  onProgress?: (progress: TransferProgress) => void
}

/**
 * `download()` options.
 *
 * Resumed downloads: a body whose connection breaks mid-way (reset, clean close before the
 * end, no data for `timeouts.requestMs`) is asked for again from the next byte, with `Range`
 * and `If-Match` on the first answer's ETag (and `versionId` when given); the stream goes on
 * with every byte once. A download makes at most `retry.maxAttempts` GETs in all (a parallel
 * download: per 8 MiB part); each resumed GET is one HTTP attempt, after the retry backoff.
 * Then the stream ends with reason `unavailable`. If the object changed (or was deleted) in
 * between, it ends with `precondition_failed`, "the object changed during the download".
 * An answer without an ETag is not resumed.
 *
 * Checksums: a whole-object download asks for the object's checksum and, when the answer
 * carries a full-object CRC32, CRC32C, CRC64NVME or SHA256 value, verifies it over the
 * bytes as they stream, across resumed answers: a mismatch ends the stream with reason
 * `checksum_mismatch` (502), never with a clean end (a small object: `download()` rejects).
 * A parallel download gets the value from one HEAD pinned to the first answer's ETag and
 * verifies the object as it is handed on in order. Not verified: `range` downloads (ranged
 * answers carry no checksum), composite values (`…-N`, a checksum of the parts' checksums
 * of a multipart upload), and objects stored without a checksum.
 */
export interface DownloadOptions extends TransferOptions {
  /** Only bytes `start` to `end` (inclusive; to the end of the object without `end`). */
  range?: { start: number; end?: number }
  /**
   * 2–16: an object above 8 MiB comes as that many ranged GETs at once (8 MiB each, same
   * version via If-Match), delivered in order; memory up to (concurrency + 2) × 8 MiB.
   * Default 1 (one GET, streamed). Not with `range`.
   */
  concurrency?: number
  /**
   * Only if the object has this ETag; otherwise the call rejects with reason
   * `precondition_failed` (412). Also checked on the answer, so servers that
   * ignore the header (s3s-fs) behave the same.
   */
  ifMatch?: string
  /** Only if the object's ETag is not this one; otherwise the call rejects with reason `not_modified` (304). */
  ifNoneMatch?: string
  /** This version of the object (a versioned bucket). */
  versionId?: string
}

/** `getSignedUrl` options beyond the host's. */
export interface SignedUrlRequest extends SignedUrlOptions, CallOptions {
  /** PUT: the exact body size the uploader must send (signed; another size is refused by the service). */
  contentLength?: number
  /** GET: the Content-Type the response will carry. */
  responseContentType?: string
  /** GET: serve as an attachment under this file name (any Unicode; RFC 6266 / 5987 encoded). */
  downloadFilename?: string
  /**
   * When the backend's `serverSideEncryption` is SSE-C: sign the URL anyway and return the
   * headers its request must send, the key among them (`headers`). Without it such a URL is
   * refused (`invalid_argument`, field `serverSideEncryption`): a link or a browser cannot
   * send the key by itself. Ignored otherwise.
   */
  includeCustomerKey?: boolean
}

/** What `getSignedUrl` resolves with. */
export interface SignedUrlOutput extends SignedUrl {
  /**
   * Headers the request must send exactly so (they are signed): the backend's server-side
   * encryption on a PUT URL (`x-amz-server-side-encryption`, ...), and with SSE-C (and
   * `includeCustomerKey`) the key's three headers on GET and PUT URLs. Absent when none.
   * A browser sending them needs the bucket's CORS to allow them. The SSE-C key shows as
   * `[redacted]` in `JSON.stringify` and `util.inspect`; `fetch(url, { headers })` sends it.
   */
  headers?: Record<string, string>
}

export interface ObjectHead {
  key: string
  size: number
  etag?: string
  contentType?: string
  /** ISO 8601. */
  lastModified?: string
  /** Names lower-cased. */
  metadata: Record<string, string>
  /** Present only when stored with the object: */
  cacheControl?: string
  contentDisposition?: string
  contentEncoding?: string
  contentLanguage?: string
  /** ISO 8601 (or the header as stored, when it is not a date). */
  expires?: string
  /** Absent for STANDARD on S3. */
  storageClass?: string
  /** The version read (a versioned bucket). */
  versionId?: string
  /** The checksum stored with the object (HEAD with checksum mode), when it has one. */
  checksum?: ChecksumValue
  /**
   * How the service says the object is encrypted, when it says: `SSE-C` when it names the
   * customer algorithm, else its `x-amz-server-side-encryption` (`AES256`, `aws:kms`,
   * `aws:kms:dsse`) with the KMS key and Bucket Key.
   */
  serverSideEncryption?: { type: 'AES256' | 'aws:kms' | 'aws:kms:dsse' | 'SSE-C' | (string & {}); keyId?: string; bucketKey?: boolean }
}

export interface CopyOptions extends CallOptions {
  /** Replaces the source's content type (metadata is kept unless also given). */
  contentType?: string
  /** Replaces the source's metadata (the content type is kept unless also given). */
  metadata?: Record<string, string>
  /**
   * How the copy is encrypted, instead of the backend's `serverSideEncryption` (the service
   * does not carry the source's over). An SSE-C source is read with the backend's key.
   */
  serverSideEncryption?: ServerSideEncryption
}

export interface ListOptions extends CallOptions {
  /** Only keys starting with this. */
  prefix?: string
  /** `nextCursor` of the previous page. */
  cursor?: string
  /** Objects per page, 1–1000. Default 1000. */
  limit?: number
}

export interface ObjectSummary {
  key: string
  size: number
  etag?: string
  /** ISO 8601. */
  lastModified?: string
}

export interface ListPage {
  items: ObjectSummary[]
  /** Present when more objects follow. */
  nextCursor?: string
}

export interface ListAllOptions extends CallOptions {
  prefix?: string
  /** Objects fetched per request, 1–1000. Default 1000. */
  pageSize?: number
}

export interface DeleteManyResult {
  /** Keys that are gone (missing keys included). */
  deleted: string[]
  /** Keys the service refused, each with its typed error. */
  failed: { key: string; error: StorageError }[]
}

export interface PresignedPostParams {
  key: string
  /** The Content-Type the form must send (a condition of the policy). */
  contentType?: string
  /** Largest accepted file, bytes (enforced by the service). */
  maxSize: number
  /** Smallest accepted file, bytes. Default 0. */
  minSize?: number
  /** Seconds, 1–604800; the backend's default when absent. */
  expiresIn?: number
}

export interface PresignedPost {
  /** Form action. */
  url: string
  /** Form fields to send before the file (the file field, named "file", goes last). */
  fields: Record<string, string>
  /** ISO 8601. */
  expiresAt: string
}

export interface TlsOptions {
  /**
   * CA certificate(s), PEM (one or more `-----BEGIN CERTIFICATE-----` blocks; a string, a Buffer, or an
   * array of them), that https:// connections trust instead of the system's root certificates, as
   * Node's `tls` `ca` option does: for a service whose certificate a private CA signed. To trust the
   * public CAs as well, include them. Checked when the backend is built (bad PEM: ConfigurationError
   * naming `tls.ca`).
   */
  ca?: string | Buffer | Array<string | Buffer>
}

/** One HTTP attempt, as `onRequest` receives it. Never carries credentials, headers, URLs or query strings. */
export interface RequestEvent {
  /** The public method that sent it (a copy's HEAD of its source is 'copy'). */
  operation: StorageErrorDetails['operation']
  /** The S3 API call: 'PutObject', 'CreateMultipartUpload', 'UploadPart', 'GetObject', 'HeadObject', 'HeadBucket', ... */
  s3Operation: string
  /** HTTP method. */
  method: string
  /** HTTP status of the answer; absent when none came (refused, reset, timed out, TLS failure, abandoned). */
  status?: number
  /** 1 for the first attempt, 2 for the first retry, ... (the SDK's retries; an upload part sent again after a stall starts at 1). */
  attempt: number
  /** From sending the request to the answer's headers (a download's body streams afterwards), or to the failure. */
  durationMs: number
  /** `x-amz-request-id` of the answer, when it has one. */
  requestId?: string
  /** Why no answer came, in short (e.g. "Connection refused (os error 111)", "abandoned: ..."). */
  error?: string
  /** The key concerned (`list`: the prefix); absent for `deleteMany`. */
  key?: string
  bucket: string
}

export interface ErrorClasses {
  StorageError?: new (message: string, details?: Record<string, unknown>) => Error
  FileNotFoundError?: new (key: string) => Error
  ConfigurationError?: new (message: string, details?: Record<string, unknown>) => Error
}

export interface S3BackendOptions {
  bucket: string
  /** Default "us-east-1". */
  region?: string
  /** S3-compatible service URL (MinIO, R2, ...); absent for AWS S3. */
  endpoint?: string
  /** Default: true when `endpoint` is set, else false. */
  forcePathStyle?: boolean
  /** Absent: the AWS default provider chain (env, profile, web identity, IMDS). */
  credentials?: S3Credentials
  /** Seconds, default 900. */
  signedUrlExpiration?: number
  multipart?: MultipartOptions
  retry?: RetryOptions
  timeouts?: TimeoutOptions
  /**
   * HTTP proxy for the S3 requests. Absent: from `process.env` when the backend is built —
   * `https_proxy` / `HTTPS_PROXY` for https:// endpoints and AWS, `http_proxy` / `HTTP_PROXY` for
   * http:// ones, then `all_proxy` / `ALL_PROXY` (lower case first; `http://user:pass@host:port`
   * for Basic auth); `no_proxy` / `NO_PROXY` lists hosts reached directly (`*`, names with their
   * subdomains, IPs, CIDR networks, any of them with `:port`). A URL: that proxy for every request,
   * the environment not read. `false`: no proxy.
   */
  proxy?: string | false
  /** TLS for https:// endpoints (and https:// proxies). */
  tls?: TlsOptions
  /**
   * How uploads and copies are encrypted at rest, unless a call says otherwise. With SSE-C
   * the key also goes with every read (download, parallel parts, head, exists, a copy's
   * source), every part of a multipart upload, and signed URLs that ask for it
   * (`includeCustomerKey`); POST forms are refused. Checked when the backend is built
   * (ConfigurationError naming `serverSideEncryption.key` for a key that is not 32 bytes).
   */
  serverSideEncryption?: ServerSideEncryption
  /**
   * Called once per HTTP attempt, retries included, after it ended (asynchronously, on the JS
   * thread; presigning sends nothing and fires nothing). What it throws is caught: the request is
   * not affected, and the first such error is reported as a process warning (STORAGE_S3_ON_REQUEST).
   * Without it no interceptor runs.
   */
  onRequest?: (event: RequestEvent) => void
  /** The host's own error classes; the package's own when absent. */
  errorClasses?: ErrorClasses
}

/** Machine-readable cause of a failure (`error.details.reason`). */
export type StorageErrorReason =
  | 'not_found'
  | 'bucket_not_found'
  | 'unavailable'
  | 'auth'
  | 'access_denied'
  | 'invalid_argument'
  /** 412: `ifMatch` / `ifNoneMatch: '*'` did not hold, or the object changed during a download. */
  | 'precondition_failed'
  /** 409: a conditional write raced another one to the same key; trying again may succeed. */
  | 'conflict'
  /** 304: a download's `ifNoneMatch` matched the object's ETag. */
  | 'not_modified'
  /**
   * 502: a download's bytes do not match the object's full-object checksum (changed on the
   * way, or not the bytes the service stored); `details.algorithm`, `details.expected` and
   * `details.actual` (base64) say which. The stream ends with it instead of a clean end.
   */
  | 'checksum_mismatch'
  | 'aborted'
  | 'unknown'

export interface StorageErrorDetails {
  reason: StorageErrorReason
  operation:
    | 'upload'
    | 'download'
    | 'delete'
    | 'exists'
    | 'head'
    | 'getSignedUrl'
    | 'generateStorageKey'
    | 'copy'
    | 'list'
    | 'deleteMany'
    | 'createPresignedPost'
  key?: string
  bucket?: string
  /** The argument at fault, for invalid_argument. */
  field?: string
  /** HTTP status of the service's answer. */
  status?: number
  /** S3 error code, e.g. "SignatureDoesNotMatch". */
  code?: string
  requestId?: string
  /** checksum_mismatch: the algorithm, the object's value and the value of the bytes received (base64). */
  algorithm?: string
  expected?: string
  actual?: string
  [extra: string]: unknown
}

/** What `describe()`, `JSON.stringify` and `util.inspect` show: no secrets. */
export interface BackendDescription {
  bucket: string
  region: string
  endpoint?: string
  forcePathStyle: boolean
  credentials: 'static' | 'default-chain' | string
  signedUrlExpiration: number
  multipart: Required<MultipartOptions>
  retry: Required<RetryOptions>
  timeouts: Required<TimeoutOptions>
  /** The proxy in force (without its credentials) and where it was set ('proxy' or a variable); absent: direct. */
  proxy?: { url: string; from: string; noProxy?: string }
  /** How many CA certificates `tls.ca` holds; absent: the system's roots. */
  tls?: { caCertificates: number }
  /** The type (and KMS key); never an SSE-C key. */
  serverSideEncryption?: { type: 'AES256' | 'aws:kms' | 'SSE-C'; keyId?: string; bucketKey?: boolean }
}

/** The Readable `download` resolves to, with the response's headers. */
export interface DownloadStream extends Readable {
  readonly contentLength?: number
  readonly contentType?: string
  readonly etag?: string
}

export declare class S3StorageBackend implements IStorageBackend {
  /** @throws ConfigurationError naming every bad option. */
  constructor(options: S3BackendOptions)
  upload(params: UploadInput, options?: TransferOptions): Promise<UploadOutput>
  download(key: string, options?: DownloadOptions): Promise<DownloadStream>
  /**
   * The whole object (or `range`) in one Buffer: what `download()` streams, with the same
   * options, resumption, verification and errors. A small object (up to 256 KiB) arrives in
   * one native call; a larger one is read in 1 MiB chunks. The whole body is held in memory:
   * use `download()` for objects of unbounded size.
   */
  downloadBuffer(key: string, options?: DownloadOptions): Promise<Buffer>
  delete(key: string, options?: DeleteOptions): Promise<void>
  exists(key: string, options?: CallOptions): Promise<boolean>
  getSignedUrl(key: string, options?: SignedUrlRequest): Promise<SignedUrlOutput>
  /** @throws FileNotFoundError when the object does not exist. */
  head(key: string, options?: CallOptions): Promise<ObjectHead>
  /** Server-side copy of any size. @throws FileNotFoundError (key: fromKey) when the source does not exist. */
  copy(fromKey: string, toKey: string, options?: CopyOptions): Promise<UploadResult>
  list(options?: ListOptions): Promise<ListPage>
  /** Every object under `prefix`; pages are fetched as the loop asks for them. */
  listAll(options?: ListAllOptions): AsyncIterableIterator<ObjectSummary>
  /** Rejects only when a request fails as a whole; retrying is safe. */
  /** Keys, or `{ key, versionId }` for one version of a key (a versioned bucket). */
  deleteMany(keys: readonly (string | { key: string; versionId?: string })[], options?: CallOptions): Promise<DeleteManyResult>
  createPresignedPost(params: PresignedPostParams, options?: CallOptions): Promise<PresignedPost>
  describe(): BackendDescription
  toJSON(): BackendDescription
}

/**
 * Builds a backend from the host's variables: STORAGE_S3_ENDPOINT, STORAGE_S3_REGION,
 * STORAGE_S3_BUCKET, STORAGE_S3_ACCESS_KEY_ID, STORAGE_S3_SECRET_ACCESS_KEY,
 * STORAGE_SIGNED_URL_EXPIRATION_SECONDS (and optional STORAGE_S3_SESSION_TOKEN,
 * STORAGE_S3_FORCE_PATH_STYLE; STORAGE_S3_SSE = AES256 | aws:kms | SSE-C with
 * STORAGE_S3_SSE_KMS_KEY_ID for aws:kms or STORAGE_S3_SSE_CUSTOMER_KEY, the 32-byte key
 * in base64, for SSE-C). `options` win over the environment. Proxy variables
 * (HTTPS_PROXY, NO_PROXY, ...) are read from `process.env`, whatever `env` is.
 * @throws ConfigurationError naming every bad variable.
 */
export declare function createS3Backend(
  env?: Record<string, string | undefined>,
  options?: Partial<S3BackendOptions>,
): S3StorageBackend

/** "<groupId>/<yyyy>/<mm>/<uuid>[.<ext>]", UTC year and month of `date` (default now). */
export declare function generateStorageKey(input: { groupId: string; filename?: string; date?: Date }): string

export declare class StorageError extends Error {
  constructor(message: string, details?: Record<string, unknown>)
  readonly code: 'STORAGE_ERROR'
  /** 400 for invalid_argument, 503 for unavailable, else 500. */
  readonly statusCode: number
  readonly reason?: StorageErrorReason
  readonly details?: StorageErrorDetails
}

export declare class FileNotFoundError extends Error {
  constructor(key: string)
  readonly code: 'FILE_NOT_FOUND'
  readonly statusCode: 404
  readonly reason: 'not_found'
  readonly details: StorageErrorDetails & { key: string }
}

export declare class ConfigurationError extends Error {
  constructor(message: string, details?: { issues?: { field: string; message: string }[]; backend?: string })
  readonly code: 'CONFIGURATION_ERROR'
  readonly statusCode: 500
  readonly details?: { issues?: { field: string; message: string }[]; backend?: string }
}
