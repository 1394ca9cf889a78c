'use strict'
// `@raptscallions/storage-s3-native/testing`: startLocalS3(), a real S3 server
// inside this process for tests (s3s with its file-system backend, strict
// SigV4, random credentials, 127.0.0.1 only). Its addon is separate from the
// backend's and is loaded on the first call, so importing the backend never
// pays for it.

const { rmSync } = require('node:fs')

const OPTIONS = Object.freeze({
  dir: 'string',
  bucket: 'string',
  port: 'number',
  region: 'string',
  accessKeyId: 'string',
  secretAccessKey: 'string',
  domain: 'string or string[]',
})

let native
/** Directories of servers this process made and has not stopped: removed at exit. */
const temporary = new Set()

function checkOptions(options) {
  if (options === undefined || options === null) return {}
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`startLocalS3(options): options must be an object, got ${Array.isArray(options) ? 'an array' : typeof options}`)
  }
  const out = {}
  for (const [name, value] of Object.entries(options)) {
    const type = OPTIONS[name]
    if (!type) throw new TypeError(`startLocalS3(options): unknown option ${JSON.stringify(name)} (known: ${Object.keys(OPTIONS).join(', ')})`)
    if (value === undefined) continue
    if (name === 'domain') {
      const list = [value].flat()
      if (!list.every((d) => typeof d === 'string')) throw new TypeError('startLocalS3(options): domain must be a string or an array of strings')
      out.domains = list
      continue
    }
    if (typeof value !== type) throw new TypeError(`startLocalS3(options): ${name} must be a ${type}, got ${value === null ? 'null' : typeof value}`)
    if (name === 'port' && !(Number.isInteger(value) && value >= 0 && value <= 65535)) {
      throw new RangeError(`startLocalS3(options): port must be an integer from 0 to 65535, got ${value}`)
    }
    out[name] = value
  }
  return out
}

/**
 * Starts an S3 server on 127.0.0.1 with one bucket.
 * @param {import('./index').LocalS3Options} [options]
 * @returns {Promise<import('./index').LocalS3>}
 */
async function startLocalS3(options) {
  const opts = checkOptions(options)
  native ??= require('../lib/load-binding.cjs').testing()
  const server = await native.startLocalS3(opts)
  const dir = server.dir
  const own = opts.dir === undefined
  if (own) {
    if (temporary.size === 0) process.once('exit', removeTemporary)
    temporary.add(dir)
  }
  let stopping
  const local = {
    endpoint: server.endpoint,
    bucket: server.bucket,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  }
  // Not enumerable: the object itself is valid backend options
  // (`new S3StorageBackend(s3)`, `{ ...s3, retry }`).
  Object.defineProperties(local, {
    dir: { value: dir },
    requestCount: { value: () => server.requestCount() },
    stop: {
      value: () =>
        (stopping ??= server.stop().then(() => {
          temporary.delete(dir)
        })),
    },
  })
  return local
}

/** A process that exits without stop() leaves no directory behind. */
function removeTemporary() {
  for (const dir of temporary) {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // best effort: the process is exiting
    }
  }
}

module.exports = { startLocalS3 }
