'use strict'
// The package's error classes, shaped like the host's (same constructors,
// `code`, `statusCode`, `details`), and the mapping from native errors.

/** HTTP status for a StorageError, by `details.reason`. */
function statusForReason(reason) {
  if (reason === 'invalid_argument') return 400
  if (reason === 'unavailable') return 503
  return 500
}

class StorageError extends Error {
  constructor(message, details) {
    super(message)
    this.name = 'StorageError'
    this.code = 'STORAGE_ERROR'
    this.details = details
    this.reason = details?.reason
    this.statusCode = statusForReason(details?.reason)
  }
}

class FileNotFoundError extends Error {
  constructor(key, details) {
    super(`File not found: ${key}`)
    this.name = 'FileNotFoundError'
    this.code = 'FILE_NOT_FOUND'
    this.statusCode = 404
    this.details = { ...details, key }
    this.reason = 'not_found'
  }
}

class ConfigurationError extends Error {
  constructor(message, details) {
    super(message)
    this.name = 'ConfigurationError'
    this.code = 'CONFIGURATION_ERROR'
    this.statusCode = 500
    this.details = details
  }
}

const OWN_CLASSES = Object.freeze({ StorageError, FileNotFoundError, ConfigurationError })

/** Prefix of native error messages carrying a JSON description (src/lib.rs). */
const NATIVE_PREFIX = 'S3_STORAGE_ERROR:'

function parseNative(err) {
  const message = typeof err?.message === 'string' ? err.message : ''
  if (!message.startsWith(NATIVE_PREFIX)) return undefined
  try {
    return JSON.parse(message.slice(NATIVE_PREFIX.length))
  } catch {
    return undefined
  }
}

/**
 * Builds the error to throw, with the host's classes when injected.
 * `desc`: { message, details: { reason, operation, key, ... }, kind? }.
 */
function buildError(classes, desc, cause) {
  let err
  if (desc.kind === 'configuration') {
    err = new classes.ConfigurationError(desc.message, desc.details)
  } else if (desc.details?.reason === 'not_found') {
    const { key, ...rest } = desc.details
    err = classes === OWN_CLASSES ? new FileNotFoundError(key, rest) : new classes.FileNotFoundError(key)
    if (classes === OWN_CLASSES) err.message = desc.message
  } else {
    err = new classes.StorageError(desc.message, desc.details)
  }
  if (cause !== undefined && err.cause === undefined) {
    Object.defineProperty(err, 'cause', { value: cause, writable: true, configurable: true, enumerable: false })
  }
  return err
}

/** Maps anything thrown by the native module (or by us) to a typed error. */
function toStorageError(classes, err, operation, key) {
  const desc = parseNative(err)
  if (desc) return buildError(classes, desc)
  // Not described by the native side: an internal failure.
  return buildError(
    classes,
    {
      message: `Cannot ${VERBS[operation] ?? operation} "${key}": ${err?.message ?? String(err)}`,
      details: { reason: 'unknown', operation, key },
    },
    err,
  )
}

/** Verbs for messages, as the native side words them (core/src/error.rs). */
const VERBS = {
  upload: 'upload',
  download: 'download',
  delete: 'delete',
  exists: 'check',
  head: 'read the metadata of',
  getSignedUrl: 'sign a URL for',
  generateStorageKey: 'generate a storage key',
}

/** An invalid argument found before any request. */
function invalidArgument(classes, operation, key, field, message) {
  const shownKey = typeof key === 'string' ? key : undefined
  return buildError(classes, {
    message: `Cannot ${VERBS[operation] ?? operation}${shownKey === undefined ? '' : ` "${shownKey}"`}: ${field}: ${message}`,
    details: { reason: 'invalid_argument', operation, key: shownKey, field },
  })
}

/** The caller's AbortSignal fired; `cause` is the signal's reason. */
function abortedError(classes, operation, key, cause) {
  return buildError(
    classes,
    { message: `Cannot ${VERBS[operation] ?? operation} "${key}": the operation was aborted`, details: { reason: 'aborted', operation, key } },
    cause,
  )
}

/** Already one of the classes this backend raises. */
function isTyped(classes, err) {
  return (
    err instanceof Error &&
    !parseNative(err) &&
    [classes.StorageError, classes.FileNotFoundError, classes.ConfigurationError, StorageError, FileNotFoundError, ConfigurationError].some(
      (cls) => typeof cls === 'function' && err instanceof cls,
    )
  )
}

module.exports = {
  abortedError,
  isTyped,
  StorageError,
  FileNotFoundError,
  ConfigurationError,
  OWN_CLASSES,
  buildError,
  toStorageError,
  invalidArgument,
  parseNative,
}
