// Compile-time proof that the package drops into the host's backend slot.
// The host's interface is copied verbatim from its storage package; each
// method is checked as a function type, so a narrower parameter or a wider
// return type fails `tsc --strict` (npm run test:types).
import type { Readable } from 'node:stream'
import {
  S3StorageBackend,
  createS3Backend,
  generateStorageKey,
  StorageError,
  FileNotFoundError,
  ConfigurationError,
  type IStorageBackend as PackageStorageBackend,
  type S3BackendOptions,
  type UploadParams as PackageUploadParams,
  type SignedUrlOptions as PackageSignedUrlOptions,
  type UploadResult as PackageUploadResult,
  type SignedUrl as PackageSignedUrl,
} from '@raptscallions/storage-s3-native'

// ---- the host's contract ---------------------------------------------------
interface UploadParams {
  key: string
  body: Buffer | Readable
  contentType: string
  contentLength?: number
  metadata?: Record<string, string>
}
interface UploadResult { key: string; etag?: string; url?: string }
interface SignedUrlOptions {
  expiresIn?: number
  method?: 'GET' | 'PUT'
  contentType?: string
}
interface SignedUrl { url: string; expiresAt: string }
interface IStorageBackend {
  upload(params: UploadParams): Promise<UploadResult>
  download(key: string): Promise<Readable>
  delete(key: string): Promise<void>
  exists(key: string): Promise<boolean>
  getSignedUrl(key: string, options?: SignedUrlOptions): Promise<SignedUrl>
}

// Host error classes, as an injected mapping would pass them.
class HostStorageError extends Error {
  readonly code = 'STORAGE_ERROR'
  readonly statusCode = 500
  constructor(message: string, public details?: Record<string, unknown>) { super(message) }
}
class HostFileNotFoundError extends Error {
  readonly code = 'FILE_NOT_FOUND'
  readonly statusCode = 404
  constructor(key: string) { super(`File not found: ${key}`) }
}
class HostConfigurationError extends Error {
  readonly code = 'CONFIGURATION_ERROR'
  readonly statusCode = 500
  constructor(message: string, public details?: { issues?: { field: string; message: string }[]; backend?: string }) { super(message) }
}

// ---- exact type equality helper -------------------------------------------
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false
const same = <T extends true>(): T => true as T

// The exported interface types are identical to the host's.
same<Equals<PackageUploadParams, UploadParams>>()
same<Equals<PackageUploadResult, UploadResult>>()
same<Equals<PackageSignedUrlOptions, SignedUrlOptions>>()
same<Equals<PackageSignedUrl, SignedUrl>>()
same<Equals<PackageStorageBackend, IStorageBackend>>()

// Method by method, re-declared as function types: method signatures are
// compared bivariantly, function types strictly (strictFunctionTypes).
type StrictFn<F> = F extends (...args: infer A) => infer R ? (...args: A) => R : never
type M<K extends keyof IStorageBackend> = StrictFn<IStorageBackend[K]>
declare const b: S3StorageBackend
const upload: M<'upload'> = b.upload.bind(b)
const download: M<'download'> = b.download.bind(b)
const del: M<'delete'> = b.delete.bind(b)
const exists: M<'exists'> = b.exists.bind(b)
const getSignedUrl: M<'getSignedUrl'> = b.getSignedUrl.bind(b)
void [upload, download, del, exists, getSignedUrl]

// The whole class, and the registry's factory slot.
const asHost: IStorageBackend = b
void asHost
declare function registerBackend(name: string, factory: () => IStorageBackend): void
registerBackend('s3', () => createS3Backend())
registerBackend('s3-env', () => createS3Backend(process.env, { signedUrlExpiration: 60 }))

// Constructor options, including the host's own error classes.
const options: S3BackendOptions = {
  bucket: 'files',
  endpoint: 'http://127.0.0.1:9000',
  credentials: { accessKeyId: 'id', secretAccessKey: 'secret' },
  errorClasses: {
    StorageError: HostStorageError,
    FileNotFoundError: HostFileNotFoundError,
    ConfigurationError: HostConfigurationError,
  },
}
new S3StorageBackend(options)

// Errors carry what the host's HTTP layer reads.
function httpFields(e: StorageError | FileNotFoundError | ConfigurationError): [string, number] {
  return [e.code, e.statusCode]
}
void httpFields
const key: string = generateStorageKey({ groupId: 'group-1', filename: 'a.pdf', date: new Date() })
void key
// A Uint8Array body, which the runtime takes as it takes a Buffer.
void b.upload({ key: 'k', body: new Uint8Array([1, 2, 3]), contentType: 'application/octet-stream' })
// A web ReadableStream body (fetch's response.body), which the runtime streams like a Readable.
declare const web: import('node:stream/web').ReadableStream<Uint8Array>
void b.upload({ key: 'k', body: web, contentType: 'application/octet-stream' })
// @ts-expect-error a web stream of numbers is not a body (the runtime refuses such chunks too)
void b.upload({ key: 'k', body: web as unknown as import('node:stream/web').ReadableStream<number>, contentType: 'text/plain' })

// ---- negative checks: these must NOT compile ------------------------------
// A narrower parameter is not assignable to the host's method type.
declare const narrowerDownload: (key: 'only-this-key') => Promise<Readable>
// @ts-expect-error
const narrower: M<'download'> = narrowerDownload
void narrower
declare const narrowerUpload: (params: UploadParams & { contentLength: number }) => Promise<UploadResult>
// @ts-expect-error
const narrowerUp: M<'upload'> = narrowerUpload
void narrowerUp
// A method option the host does not allow is rejected.
// @ts-expect-error
b.getSignedUrl('k', { method: 'DELETE' })
// @ts-expect-error
b.upload({ key: 'k', body: 'a string', contentType: 'text/plain' })
