'use strict'
// The package's error classes, shaped like the host's (same constructors,
// `code`, `statusCode`, `details`), and the mapping from the core's error
// descriptions to them. Every message, reason and status is the core's
// (core/src/error.rs); errors found here are worded there too.

const native = require('./load-binding.cjs').backend()

class StorageError extends Error {
  constructor(message, details) {
    super(message)
    this.name = 'StorageError'
    this.code = 'STORAGE_ERROR'
    this.details = details
    this.reason = details?.reason
    this.statusCode = native.statusForReason(details?.reason ?? 'unknown')
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
 * The error to throw for a description `{ message, statusCode, details, kind? }`,
 * as one of `classes` (the host's when injected).
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

/** An error found in JS, described by the core: `reason` is invalid_argument, aborted, source_failed or unknown. */
function described(classes, reason, operation, key, field, message, cause) {
  const shownKey = typeof key === 'string' ? key : ''
  return buildError(classes, JSON.parse(native.describeError(reason, operation, shownKey, field ?? null, message ?? '')), cause)
}

/** Maps anything thrown by the native module (or by us) to a typed error. */
function toStorageError(classes, err, operation, key) {
  const desc = parseNative(err)
  if (desc) return buildError(classes, desc)
  // Not described by the native side: an internal failure.
  return described(classes, 'unknown', operation, key, undefined, err?.message ?? String(err), err)
}

/** A configuration error found in JS (unreadable options, wrong error classes). */
function configurationError(classes, issues) {
  return buildError(classes, JSON.parse(native.describeConfigError(issues)))
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
  StorageError,
  FileNotFoundError,
  ConfigurationError,
  OWN_CLASSES,
  buildError,
  configurationError,
  described,
  isTyped,
  parseNative,
  toStorageError,
}
