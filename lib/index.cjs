'use strict'
// The package entry: argument checks that need JavaScript types, Node
// streams on top of the native reader/writer, and error classes. Everything
// else happens in Rust (binding.cjs loads it).

const { Readable } = require('node:stream')
const { isMainThread } = require('node:worker_threads')
const { inspect } = require('node:util')
const native = require('./load-binding.cjs').backend() // ../binding.cjs, with a clear error when no binary fits
const errors = require('./errors.cjs')
const args = require('./args.cjs')

const { OWN_CLASSES, ConfigurationError, buildError, configurationError, described, toStorageError, isTyped, parseNative } = errors

/**
 * Upload bytes are shared with Rust without a copy on the main thread. In a
 * worker they are copied: terminating a worker frees its memory while a
 * transfer may still be reading it.
 */
const COPY_BODIES = !isMainThread

const INTERNAL = Symbol('S3StorageBackend.internal')

function bufferView(u8) {
  return Buffer.isBuffer(u8) ? u8 : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength)
}

/** Plain JSON for the native config parser; keeps wrong types visible as wrong types. */
function toPlainJson(value) {
  return JSON.parse(
    JSON.stringify(value ?? {}, (_k, v) => {
      if (typeof v === 'function' || typeof v === 'symbol') return `[${typeof v}]`
      if (typeof v === 'bigint') return v.toString()
      return v
    }),
  )
}

function resolveErrorClasses(errorClasses) {
  if (errorClasses === undefined || errorClasses === null) return { classes: OWN_CLASSES, issues: [] }
  const issues = []
  if (typeof errorClasses !== 'object') {
    return { classes: OWN_CLASSES, issues: [{ field: 'errorClasses', message: 'must be an object of error classes' }] }
  }
  const classes = { ...OWN_CLASSES }
  for (const name of Object.keys(errorClasses)) {
    const cls = errorClasses[name]
    if (!(name in OWN_CLASSES)) {
      issues.push({ field: `errorClasses.${name}`, message: 'unknown error class (StorageError, FileNotFoundError, ConfigurationError)' })
    } else if (cls !== undefined && typeof cls !== 'function') {
      issues.push({ field: `errorClasses.${name}`, message: 'must be a class (constructor function)' })
    } else if (cls !== undefined) {
      classes[name] = cls
    }
  }
  return { classes: issues.length ? OWN_CLASSES : Object.freeze(classes), issues }
}

/** Reads the caller's options; what cannot be read (a cycle, a throwing getter) is a configuration error. */
function readable(field, read) {
  try {
    return read()
  } catch (err) {
    throw configurationError(OWN_CLASSES, [{ field, message: `cannot be read: ${err?.message ?? String(err)}` }])
  }
}

/**
 * `tls.ca` as PEM text: a Buffer (or Uint8Array) is read as text and an array
 * joined, as Node's `tls.ca` takes them; anything else goes on for the core to name.
 */
function pemText(ca) {
  const one = (c) => (c instanceof Uint8Array ? Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('latin1') : c)
  if (Array.isArray(ca)) return ca.every((c) => typeof c === 'string' || c instanceof Uint8Array) ? ca.map(one).join('\n') : ca
  return one(ca)
}

/**
 * `serverSideEncryption` as the native side takes it: an SSE-C key as a
 * Buffer (a Uint8Array is viewed as one, not copied); the core checks the rest.
 */
function encryptionParams(sse) {
  if (sse === undefined || sse === null) return undefined
  const { type, keyId, bucketKey, key } = sse
  return { type, keyId: keyId ?? undefined, bucketKey: bucketKey ?? undefined, key: key instanceof Uint8Array ? bufferView(key) : undefined }
}

const SSE_C_KEY_HEADER = 'x-amz-server-side-encryption-customer-key'

/**
 * The headers a signed URL's request must send: own properties name to value,
 * as `fetch(url, { headers })` takes them. With SSE-C they hold the key, there
 * to be sent; JSON.stringify and util.inspect (methods of the prototype, so
 * fetch sees only the headers) show it as [redacted], so logging does not leak it.
 */
class SignedHeaders {
  constructor(list) {
    for (const { name, value } of list) this[name] = value
  }

  toJSON() {
    return Object.fromEntries(Object.entries(this).map(([n, v]) => [n, n === SSE_C_KEY_HEADER ? '[redacted]' : v]))
  }

  [inspect.custom](_depth, options) {
    return inspect(this.toJSON(), options)
  }
}

/** A signed URL result: `headers` only when the request must send some. */
function signedResult(s) {
  const out = { url: s.url, expiresAt: s.expiresAt }
  if (s.headers?.length) out.headers = new SignedHeaders(s.headers)
  return out
}

/** The proxy variables of this thread's `process.env` (the core reads them once, at construction). */
function proxyVars() {
  const vars = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (typeof value === 'string' && (/^(https?|all|no)_proxy$/i.test(name) || name === 'REQUEST_METHOD')) vars[name] = value
  }
  return vars
}

/**
 * The `onRequest` hook as the native side calls it: what it throws must not
 * reach the request (it has already ended) nor crash the process (an error
 * thrown from a native callback is an uncaught exception), so it is caught
 * and reported once as a process warning.
 */
function requestHook(onRequest) {
  if (onRequest === undefined || onRequest === null) return undefined
  let warned = false
  return (event) => {
    try {
      onRequest(event)
    } catch (err) {
      if (warned) return
      warned = true
      process.emitWarning(`onRequest threw: ${err?.message ?? String(err)}. Requests are not affected; later errors of this hook are not reported.`, {
        code: 'STORAGE_S3_ON_REQUEST',
      })
    }
  }
}

/** Splits `errorClasses` and `onRequest` (functions, kept in JS) from the JSON options. */
function splitOptions(options, what) {
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) {
    throw configurationError(OWN_CLASSES, [{ field: what, message: 'must be an object' }])
  }
  const { errorClasses, onRequest, ...rest } = readable(what, () => ({ ...options }))
  const { classes, issues } = resolveErrorClasses(errorClasses)
  if (onRequest !== undefined && onRequest !== null && typeof onRequest !== 'function') {
    issues.push({ field: 'onRequest', message: `must be a function, got ${typeof onRequest}` })
  }
  if (issues.length) throw configurationError(classes, issues)
  const tls = rest.tls
  if (tls !== null && typeof tls === 'object' && !Array.isArray(tls) && tls.ca !== undefined) {
    rest.tls = readable('tls', () => ({ ...tls, ca: pemText(tls.ca) }))
  }
  // An SSE-C key reaches the core as a Buffer's JSON; a Uint8Array is viewed as a Buffer.
  const sse = rest.serverSideEncryption
  if (sse !== null && typeof sse === 'object' && sse.key instanceof Uint8Array) {
    rest.serverSideEncryption = readable('serverSideEncryption', () => ({ ...sse, key: bufferView(sse.key) }))
  }
  return { classes, json: readable(what, () => toPlainJson(rest)), hook: requestHook(onRequest) }
}

function createNative(classes, make) {
  try {
    return make()
  } catch (err) {
    const desc = parseNative(err)
    if (desc) throw buildError(classes, desc)
    throw err
  }
}

/** An upload's result: `versionId` only when the service gave one. */
function uploadResult(key, out) {
  const result = { key, etag: out.etag ?? undefined }
  if (out.versionId) result.versionId = out.versionId
  if (out.checksum) result.checksum = { algorithm: out.checksum.algorithm, value: out.checksum.value }
  return result
}

/** A WHATWG ReadableStream (not a Node Readable). */
const isWebStream = (v) => typeof v?.getReader === 'function' && typeof v?.pipeTo === 'function'

/** A Node Readable over the native reader: pulls only when the consumer asks. */
class DownloadStream extends Readable {
  #reader
  #whole
  #toError
  #release
  #onProgress
  #loaded = 0

  constructor(reader, toError, release, onProgress) {
    super()
    if (reader.body !== undefined) this.#whole = reader.body
    else this.#reader = reader
    this.#toError = toError
    this.#release = release
    this.#onProgress = onProgress
    /** Object size in bytes, from the response headers. */
    this.contentLength = reader.contentLength ?? undefined
    this.contentType = reader.contentType ?? undefined
    this.etag = reader.etag ?? undefined
  }

  _read() {
    // A small object came whole with the answer (a plain object, no native
    // reader): no native calls at all.
    const whole = this.#whole
    if (whole) {
      this.#whole = undefined
      if (this.#onProgress) report(this.#onProgress, { loaded: whole.length, total: this.contentLength })
      if (whole.length) this.push(whole)
      this.push(null)
      return
    }
    this.#reader.read().then(
      (chunk) => {
        if (this.destroyed) return this.#reader.close()
        if (this.#onProgress && (chunk !== null || this.#loaded === 0)) {
          this.#loaded += chunk?.length ?? 0
          report(this.#onProgress, { loaded: this.#loaded, total: this.contentLength })
        }
        this.push(chunk)
      },
      (err) => this.destroy(this.#toError(err)),
    )
  }

  _destroy(err, callback) {
    this.#reader?.close()
    this.#release?.()
    callback(err)
  }
}

/** What an upload stores besides its type and metadata (each sends the whole `store` object). */
const PLAIN_STORE = ['ifNoneMatch', 'ifMatch', 'cacheControl', 'contentDisposition', 'contentEncoding', 'contentLanguage', 'expires', 'storageClass', 'tags', 'checksum', 'serverSideEncryption']

const noop = () => {}

/** A download's native options; `undefined` when none is given (nothing to convert). */
function getOptions(range, concurrency, ifMatch, ifNoneMatch, versionId) {
  if (range === undefined && concurrency === undefined && ifMatch === undefined && ifNoneMatch === undefined && versionId === undefined) return undefined
  return { rangeStart: range?.start, rangeEnd: range?.end, concurrency, ifMatch, ifNoneMatch, versionId }
}

/** Calls a progress callback; what it throws must not break the transfer. */
function report(onProgress, event) {
  try {
    onProgress(event.total === undefined ? { loaded: event.loaded } : event)
  } catch {
    // ignored, as documented
  }
}

/** How often an upload's sent-bytes counter is read for `onProgress`. */
const PROGRESS_INTERVAL_MS = 100

/**
 * Reports upload progress from the native counter of bytes sent: monotonic
 * (a retried request sends bytes again) and capped at the total.
 */
class UploadProgress {
  #onProgress
  #total
  #last = -1
  #timer
  counter

  constructor(onProgress, total) {
    this.#onProgress = onProgress
    this.#total = total
    this.counter = new native.TransferCounter()
    this.#timer = setInterval(() => this.poll(), PROGRESS_INTERVAL_MS)
    this.#timer.unref?.()
  }

  poll() {
    let loaded = Math.max(this.#last, this.counter.value)
    if (this.#total !== undefined) loaded = Math.min(loaded, this.#total)
    if (loaded === this.#last) return
    this.#last = loaded
    report(this.#onProgress, { loaded, total: this.#total })
  }

  /** Stops polling; after success, reports the whole body as sent. */
  stop(ok) {
    clearInterval(this.#timer)
    if (!ok) return
    const loaded = this.#total ?? Math.max(this.#last, this.counter.value)
    // Unknown length: the last event also carries the total, now known.
    if (loaded !== this.#last || this.#total === undefined) {
      this.#last = loaded
      report(this.#onProgress, { loaded, total: this.#total ?? loaded })
    }
  }
}

class S3StorageBackend {
  #native
  #classes

  constructor(options, internal) {
    if (internal?.token === INTERNAL) {
      this.#native = internal.native
      this.#classes = internal.classes
      return
    }
    const { classes, json, hook } = splitOptions(options, 'options')
    this.#classes = classes
    this.#native = createNative(classes, () => new native.NativeBackend(json, proxyVars(), hook))
  }

  #fail(err, operation, key) {
    return toStorageError(this.#classes, err, operation, key)
  }

  #invalid(operation, key, field, message) {
    return described(this.#classes, 'invalid_argument', operation, key, field, message)
  }

  #aborted(operation, key, signal) {
    return described(this.#classes, 'aborted', operation, key, undefined, '', signal?.reason)
  }

  /** Checks argument `arg` of `method` against the one table (lib/args.cjs); returns it or `{}`. */
  #args(method, arg, value, key, operation = method) {
    return args.check(method, arg, value, (field, message) => this.#invalid(operation, key, field, message))
  }

  /** A Date as ISO 8601; an invalid Date is an argument error. */
  #isoDate(operation, key, field, date) {
    if (Number.isNaN(date.getTime())) throw this.#invalid(operation, key, field, 'is an invalid Date')
    return date.toISOString()
  }

  #checkKey(operation, key) {
    args.checkKey(key, (field, message) => this.#invalid(operation, key, field, message))
  }

  /**
   * Runs `call(abortHandle)` under the caller's `signal`: an already-aborted
   * signal rejects before any request; a later abort cancels the native call,
   * which drops its connection. `keep(result, signal, release)` returns true
   * for calls whose result outlives the promise (downloads): they release.
   */
  async #run(operation, key, signal, call, keep) {
    if (!signal) {
      // No signal (most calls): no handle, no listener, nothing to release.
      try {
        const result = await call(undefined)
        if (keep) keep(result, undefined, noop)
        return result
      } catch (err) {
        if (isTyped(this.#classes, err)) throw err
        throw this.#fail(err, operation, key)
      }
    }
    if (signal.aborted) throw this.#aborted(operation, key, signal)
    const handle = new native.AbortHandle()
    const onAbort = () => handle.abort()
    signal.addEventListener('abort', onAbort, { once: true })
    const release = () => signal.removeEventListener('abort', onAbort)
    let kept = false
    try {
      const result = await call(handle)
      if (keep) kept = keep(result, signal, release)
      return result
    } catch (err) {
      if (signal.aborted) throw this.#aborted(operation, key, signal)
      if (isTyped(this.#classes, err)) throw err
      throw this.#fail(err, operation, key)
    } finally {
      if (!kept) release()
    }
  }

  async upload(params, opts) {
    const p = this.#args('upload', 'params', params, params?.key)
    const { key, body, contentLength } = p
    const { signal, onProgress } = this.#args('upload', 'options', opts, key)
    this.#checkKey('upload', key)
    // What is stored with the object and on what condition; the core checks it.
    const store = {
      contentType: p.contentType,
      metadata: p.metadata ?? undefined,
      ifNoneMatch: p.ifNoneMatch ?? undefined,
      ifMatch: p.ifMatch ?? undefined,
      cacheControl: p.cacheControl ?? undefined,
      contentDisposition: p.contentDisposition ?? undefined,
      contentEncoding: p.contentEncoding ?? undefined,
      contentLanguage: p.contentLanguage ?? undefined,
      expires: p.expires instanceof Date ? this.#isoDate('upload', key, 'expires', p.expires) : (p.expires ?? undefined),
      storageClass: p.storageClass ?? undefined,
      tags: p.tags ?? undefined,
      checksum: p.checksum ?? undefined,
      serverSideEncryption: encryptionParams(p.serverSideEncryption),
    }
    if (body instanceof Uint8Array) {
      if (contentLength !== undefined && contentLength !== body.byteLength) {
        throw this.#invalid('upload', key, 'contentLength', `is ${contentLength} but the body has ${body.byteLength} bytes`)
      }
      const progress = onProgress && new UploadProgress(onProgress, body.byteLength)
      let ok = false
      try {
        // Only a type and metadata (the common upload): two plain arguments, no object to convert.
        const plain = PLAIN_STORE.every((name) => store[name] === undefined)
        const out = await this.#run('upload', key, signal, (abort) =>
          this.#native.putBuffer(key, bufferView(body), store.contentType, store.metadata, plain ? undefined : store, abort, COPY_BODIES, progress?.counter),
        )
        ok = true
        return uploadResult(key, out)
      } finally {
        progress?.stop(ok)
      }
    }
    const progress = onProgress && new UploadProgress(onProgress, contentLength)
    let ok = false
    try {
      const out = await this.#run('upload', key, signal, (abort) =>
        this.#uploadStream(key, body, store, contentLength, abort, signal, progress),
      )
      ok = true
      return out
    } finally {
      progress?.stop(ok)
    }
  }

  async #uploadStream(key, source, store, contentLength, abort, signal, progress) {
    // A web ReadableStream (fetch's response.body, Blob.stream()) as a Node
    // Readable, so that an abort can destroy it like any other source.
    const body = isWebStream(source) ? Readable.fromWeb(source) : source
    const upload = await this.#native.startUpload(key, store, contentLength, abort, progress?.counter)
    const encoding = body.readableEncoding ?? 'utf8'
    // An abort must also stop waiting for a source that never ends.
    const stopSource = () => body.destroy?.(this.#aborted('upload', key, signal))
    signal?.addEventListener('abort', stopSource, { once: true })
    let sourceFailed = true
    try {
      for await (const chunk of body) {
        let buf
        if (chunk instanceof Uint8Array) buf = bufferView(chunk)
        else if (typeof chunk === 'string') buf = Buffer.from(chunk, encoding)
        else {
          sourceFailed = false
          throw this.#invalid('upload', key, 'body', `stream chunks must be Buffers, Uint8Arrays or strings, got ${typeof chunk}`)
        }
        if (buf.length === 0) continue
        sourceFailed = false
        await upload.write(buf, COPY_BODIES)
        sourceFailed = true
      }
      sourceFailed = false
      const out = await upload.finish()
      return uploadResult(key, out)
    } catch (err) {
      if (signal?.aborted) {
        // Reject at once; the engine still aborts the upload on the server.
        upload.abort().catch(() => {})
        throw this.#aborted('upload', key, signal)
      }
      await upload.abort().catch(() => {})
      if (sourceFailed) throw described(this.#classes, 'source_failed', 'upload', key, undefined, err?.message ?? String(err), err)
      throw err
    } finally {
      signal?.removeEventListener('abort', stopSource)
    }
  }

  async download(key, opts) {
    this.#checkKey('download', key)
    const { signal, onProgress, range, concurrency, ifMatch, ifNoneMatch, versionId } = this.#args('download', 'options', opts, key)
    const get = getOptions(range, concurrency, ifMatch, ifNoneMatch, versionId)
    let stream
    await this.#run(
      'download',
      key,
      signal,
      (abort) => this.#native.openDownload(key, abort, get),
      (reader, signal, release) => {
        // After the download resolved, an abort ends the stream with a typed error;
        // both listeners go when the stream is destroyed (ended, failed or aborted).
        const onAbort = () => stream.destroy(this.#aborted('download', key, signal))
        const releaseAll = () => {
          release()
          signal?.removeEventListener('abort', onAbort)
        }
        stream = new DownloadStream(reader, (err) => this.#fail(err, 'download', key), releaseAll, onProgress)
        if (!signal) return false
        signal.addEventListener('abort', onAbort, { once: true })
        return true
      },
    )
    return stream
  }

  async downloadBuffer(key, opts) {
    this.#checkKey('download', key)
    const { signal, onProgress, range, concurrency, ifMatch, ifNoneMatch, versionId } = this.#args('download', 'options', opts, key)
    const get = getOptions(range, concurrency, ifMatch, ifNoneMatch, versionId)
    return this.#run('download', key, signal, async (abort) => {
      const reader = await this.#native.downloadWhole(key, abort, get)
      if (Buffer.isBuffer(reader)) {
        if (onProgress) report(onProgress, { loaded: reader.length, total: reader.length })
        return reader
      }
      const total = reader.contentLength ?? undefined
      try {
        const chunks = []
        let loaded = 0
        for (let chunk; (chunk = await reader.read()) !== null; ) {
          chunks.push(chunk)
          loaded += chunk.length
          if (onProgress) report(onProgress, { loaded, total })
        }
        return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, loaded)
      } finally {
        reader.close()
      }
    })
  }

  async delete(key, opts) {
    this.#checkKey('delete', key)
    const { signal, versionId } = this.#args('delete', 'options', opts, key)
    await this.#run('delete', key, signal, (abort) => this.#native.delete(key, abort, versionId ?? undefined))
  }

  async exists(key, opts) {
    this.#checkKey('exists', key)
    const { signal } = this.#args('exists', 'options', opts, key)
    return this.#run('exists', key, signal, (abort) => this.#native.exists(key, abort))
  }

  async getSignedUrl(key, options) {
    this.#checkKey('getSignedUrl', key)
    // napi reads only the signing options from it (not `signal`).
    const request = this.#args('getSignedUrl', 'options', options, key)
    const signal = request.signal
    if (signal?.aborted) throw this.#aborted('getSignedUrl', key, signal)
    let signed
    try {
      // Static credentials: signed right here, no request and no thread hop.
      signed = this.#native.signUrlNow(key, request)
    } catch (err) {
      throw this.#fail(err, 'getSignedUrl', key)
    }
    if (signed) return signedResult(signed)
    return signedResult(await this.#run('getSignedUrl', key, signal, () => this.#native.signUrl(key, request)))
  }

  /**
   * A browser form upload (S3 POST Object) whose size the service enforces:
   * post `fields` then the file (last) as multipart/form-data to `url`.
   */
  async createPresignedPost(params, opts) {
    const { key, contentType, maxSize, minSize, expiresIn } = this.#args('createPresignedPost', 'params', params, params?.key)
    const { signal } = this.#args('createPresignedPost', 'options', opts, key)
    this.#checkKey('createPresignedPost', key)
    const form = await this.#run('createPresignedPost', key, signal, () =>
      this.#native.presignPost({ key, contentType, maxSize, minSize, expiresIn }),
    )
    const fields = {}
    for (const { name, value } of form.fields) fields[name] = value
    return { url: form.url, fields, expiresAt: form.expiresAt }
  }

  /** Size, ETag, content type, last modified time, metadata, stored headers and version of an object. */
  async head(key, opts) {
    this.#checkKey('head', key)
    const { signal } = this.#args('head', 'options', opts, key)
    const h = await this.#run('head', key, signal, (abort) => this.#native.head(key, abort))
    const out = {
      key,
      size: h.size,
      etag: h.etag ?? undefined,
      contentType: h.contentType ?? undefined,
      lastModified: h.lastModified ?? undefined,
      metadata: h.metadata ?? {},
    }
    // Only what the object has: absent headers are not keys of the result.
    for (const name of ['cacheControl', 'contentDisposition', 'contentEncoding', 'contentLanguage', 'expires', 'storageClass', 'versionId', 'checksum']) {
      if (h[name] !== undefined && h[name] !== null) out[name] = h[name]
    }
    const sse = h.serverSideEncryption
    if (sse) {
      out.serverSideEncryption = { type: sse.type }
      if (sse.keyId) out.serverSideEncryption.keyId = sse.keyId
      if (sse.bucketKey !== undefined && sse.bucketKey !== null) out.serverSideEncryption.bucketKey = sse.bucketKey
    }
    return out
  }

  /**
   * Server-side copy of any size; `contentType`/`metadata` replace the source's;
   * `serverSideEncryption` replaces the backend's for the copy.
   */
  async copy(fromKey, toKey, options) {
    this.#checkKey('copy', fromKey)
    this.#checkKey('copy', toKey)
    const { contentType, metadata, serverSideEncryption, signal } = this.#args('copy', 'options', options, toKey)
    const sse = encryptionParams(serverSideEncryption)
    const out = await this.#run('copy', toKey, signal, (abort) => this.#native.copy(fromKey, toKey, contentType, metadata ?? undefined, abort, sse))
    return { key: toKey, etag: out.etag ?? undefined }
  }

  /** One page of objects under `prefix`, in key order; pass `nextCursor` back for the next. */
  async list(options) {
    const { prefix, cursor, limit, signal } = this.#args('list', 'options', options, options?.prefix)
    const page = await this.#run('list', prefix ?? '', signal, (abort) => this.#native.list(prefix, cursor, limit, abort))
    const items = page.items.map((o) => ({
      key: o.key,
      size: o.size,
      etag: o.etag ?? undefined,
      lastModified: o.lastModified ?? undefined,
    }))
    return page.nextCursor ? { items, nextCursor: page.nextCursor } : { items }
  }

  /** Every object under `prefix`, fetching pages only as the loop asks for them. */
  async *listAll(options) {
    const { pageSize, ...rest } = this.#args('listAll', 'options', options, options?.prefix, 'list')
    let cursor
    do {
      const page = await this.list({ ...rest, cursor, limit: pageSize })
      yield* page.items
      cursor = page.nextCursor
    } while (cursor)
  }

  /**
   * Deletes many keys, 1,000 per request; missing keys count as deleted.
   * Resolves with each key's outcome; rejects only when a request fails as
   * a whole (then retrying is safe: deletes are idempotent).
   */
  async deleteMany(keys, opts) {
    if (!Array.isArray(keys)) throw this.#invalid('deleteMany', undefined, 'keys', 'must be an array of keys')
    // A key, or { key, versionId? } for one version of it.
    const items = keys.map((item, i) => {
      // Anything but a plain object is a key, and checked as one below.
      if (item === null || typeof item !== 'object' || Array.isArray(item)) return { key: item }
      for (const name of Object.keys(item)) {
        if (name !== 'key' && name !== 'versionId') throw this.#invalid('deleteMany', item.key, `keys[${i}].${name}`, 'unknown option')
      }
      if (item.versionId !== undefined && typeof item.versionId !== 'string') {
        throw this.#invalid('deleteMany', item.key, `keys[${i}].versionId`, 'must be a string')
      }
      return { key: item.key, versionId: item.versionId }
    })
    for (const { key } of items) this.#checkKey('deleteMany', key)
    const first = items[0]?.key
    const { signal } = this.#args('deleteMany', 'options', opts, first)
    if (items.length === 0) return { deleted: [], failed: [] }
    const out = await this.#run('deleteMany', first, signal, (abort) => this.#native.deleteMany(items, abort))
    return {
      deleted: out.deleted,
      failed: out.failed.map(({ key, error }) => ({ key, error: buildError(this.#classes, JSON.parse(error)) })),
    }
  }

  /** The configuration in force, without secrets. */
  describe() {
    return this.#native.describe()
  }

  toJSON() {
    return this.describe()
  }

  [inspect.custom]() {
    return `S3StorageBackend ${inspect(this.describe())}`
  }
}

/**
 * Builds a backend from the host's `STORAGE_*` variables (default
 * `process.env`); `options` override them. Proxy variables are read from
 * `process.env` in any case.
 */
function createS3Backend(env = process.env, options) {
  const { classes, json, hook } = splitOptions(options, 'options')
  // The proxy variables are the process's, whatever `env` holds.
  const vars = proxyVars()
  for (const [name, value] of readable('env', () => Object.entries(env ?? {}))) {
    if (name.startsWith('STORAGE_') && typeof value === 'string') vars[name] = value
  }
  const nativeBackend = createNative(classes, () => native.NativeBackend.fromEnv(vars, json, hook))
  return new S3StorageBackend(undefined, { token: INTERNAL, native: nativeBackend, classes })
}

/** `<groupId>/<yyyy>/<mm>/<uuid>[.<ext>]` with the UTC year and month of `date` (default now). */
function generateStorageKey(input) {
  const bad = (field, message) => described(OWN_CLASSES, 'invalid_argument', 'generateStorageKey', undefined, field, message)
  if (input === null || typeof input !== 'object') throw bad('input', 'must be an object { groupId, filename?, date? }')
  const { groupId, filename, date = new Date() } = input
  if (typeof groupId !== 'string') throw bad('groupId', 'must be a string')
  if (filename !== undefined && typeof filename !== 'string') throw bad('filename', 'must be a string')
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) throw bad('date', 'must be a valid Date')
  try {
    return native.generateStorageKey(groupId, filename, date.getTime())
  } catch (err) {
    throw toStorageError(OWN_CLASSES, err, 'generateStorageKey', groupId)
  }
}

module.exports = {
  S3StorageBackend,
  createS3Backend,
  generateStorageKey,
  StorageError: errors.StorageError,
  FileNotFoundError: errors.FileNotFoundError,
  ConfigurationError,
}
