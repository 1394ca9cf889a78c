#!/usr/bin/env node
// storage-s3-check: validates a deployment end to end, one PASS/FAIL line per
// step (or one JSON document with --json). With STORAGE_S3_* set it checks that
// service; with none set it starts the package's built-in S3 server
// (startLocalS3, in this process: no cargo, no Docker) and checks against it,
// and says so: that run checks this package, not a deployment. It stops after
// the first failed step that makes the rest meaningless (configuration,
// connectivity, credentials, bucket), and every step has a time limit, so an
// endpoint that never answers fails in seconds. Exit code 0 only if all pass.
// Secrets are never printed.

import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { createS3Backend, generateStorageKey } from '../lib/index.mjs'

const json = process.argv.includes('--json')
const configured = Object.keys(process.env).some((k) => k.startsWith('STORAGE_S3_') && process.env[k])
/** Requests of the check: one attempt each, 3 s to connect, 4 s without progress. */
const CHECK_OPTIONS = { retry: { maxAttempts: 1 }, timeouts: { connectMs: 3000, requestMs: 4000 } }
/** The longest any one step may take. */
const STEP_LIMIT_MS = 8000

/** What to check, by the error's reason. */
const HINTS = {
  unavailable: 'check STORAGE_S3_ENDPOINT (scheme, host, port) and that the service is running and reachable from here',
  auth: 'check STORAGE_S3_ACCESS_KEY_ID, STORAGE_S3_SECRET_ACCESS_KEY and STORAGE_S3_REGION',
  access_denied: "check the access key's permissions on the bucket (GetObject, PutObject, DeleteObject, ListBucket)",
  bucket_not_found: 'check STORAGE_S3_BUCKET, and that STORAGE_S3_ENDPOINT is an S3 service',
  invalid_argument: 'check the STORAGE_S3_* values',
}
/** Reasons after which no later step can pass. */
const FATAL = new Set(['unavailable', 'auth', 'access_denied', 'bucket_not_found'])

const steps = []

function print(s) {
  if (json) return
  const extra = s.ok ? s.detail : `${s.error}${s.reason ? ` [${s.reason}]` : ''}${s.hint ? ` — ${s.hint}` : ''}`
  console.log(`${s.ok ? 'PASS' : 'FAIL'}  ${s.name.padEnd(34)} ${s.ms.toFixed(1).padStart(8)} ms${extra ? `  ${extra}` : ''}`)
}

/** Runs a step under the step limit; returns false when the check should stop. */
async function step(name, fn) {
  const t0 = performance.now()
  const signal = AbortSignal.timeout(STEP_LIMIT_MS)
  let s
  try {
    const detail = await Promise.race([
      fn(signal),
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error(`no answer within ${STEP_LIMIT_MS} ms`)), { once: true })),
    ])
    s = { name, ok: true, ms: performance.now() - t0, detail: detail ?? '' }
  } catch (err) {
    const reason = err?.details?.reason ?? (signal.aborted ? 'unavailable' : undefined)
    s = { name, ok: false, ms: performance.now() - t0, error: err?.message ?? String(err), reason, hint: HINTS[reason] ?? (err?.details?.issues ? HINTS.invalid_argument : undefined) }
  }
  steps.push(s)
  print(s)
  return s.ok || !FATAL.has(s.reason)
}

function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex')
}

async function readAll(stream) {
  const chunks = []
  for await (const c of stream) chunks.push(c)
  return Buffer.concat(chunks)
}

async function main(target) {
  let backend
  const configOk = await step('configuration', async () => {
    backend = createS3Backend(target.env, CHECK_OPTIONS)
    const d = backend.describe()
    return `${d.endpoint ?? 'AWS S3'} bucket=${d.bucket} region=${d.region} ${d.forcePathStyle ? 'path-style' : 'virtual-hosted'}${target.local ? ' (built-in local server)' : ''}`
  })
  if (!configOk || !backend) return

  const key = generateStorageKey({ groupId: 'storage-s3-check', filename: 'probe.bin' })
  const body = randomBytes(256 * 1024 + 17)
  const probe = `${key}.missing`

  // Connectivity, credentials and the bucket: nothing after this can pass without them.
  if (!(await step('connectivity and bucket access', async (signal) => `exists(missing key) = ${await backend.exists(probe, { signal })}`))) return
  if (!(await step('upload (Buffer)', async (signal) => `etag ${(await backend.upload({ key, body, contentType: 'application/octet-stream', metadata: { check: 'storage-s3-check' } }, { signal })).etag}`))) return
  await step('exists', async (signal) => {
    if (!(await backend.exists(key, { signal }))) throw new Error('the uploaded object is not visible')
  })
  await step('download and byte-compare', async (signal) => {
    const got = await readAll(await backend.download(key, { signal }))
    if (sha256(got) !== sha256(body)) throw new Error(`downloaded ${got.length} bytes differ from the ${body.length} uploaded`)
    return `${got.length} bytes match`
  })
  await step('upload (stream of unknown length)', async (signal) => {
    await backend.upload({ key: `${key}.stream`, body: Readable.from([body.subarray(0, 1000), body.subarray(1000)]), contentType: 'application/octet-stream' }, { signal })
    const got = await readAll(await backend.download(`${key}.stream`, { signal }))
    if (!got.equals(body)) throw new Error('stream upload does not round-trip')
    await backend.delete(`${key}.stream`, { signal })
  })
  await step('signed GET URL over HTTP', async (signal) => {
    const { url } = await backend.getSignedUrl(key, { expiresIn: 60 })
    const res = await fetch(url, { signal })
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`)
    const got = Buffer.from(await res.arrayBuffer())
    if (!got.equals(body)) throw new Error('signed GET returned other bytes')
    return `HTTP ${res.status}`
  })
  await step('signed PUT URL over HTTP', async (signal) => {
    const putKey = `${key}.put`
    const { url } = await backend.getSignedUrl(putKey, { method: 'PUT', contentType: 'text/plain', expiresIn: 60 })
    const res = await fetch(url, { method: 'PUT', body: 'signed put', headers: { 'Content-Type': 'text/plain' }, signal })
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`)
    const got = await readAll(await backend.download(putKey, { signal }))
    if (got.toString() !== 'signed put') throw new Error('signed PUT stored other bytes')
    await backend.delete(putKey, { signal })
    return `HTTP ${res.status}`
  })
  await step('delete (twice: idempotent)', async (signal) => {
    await backend.delete(key, { signal })
    await backend.delete(key, { signal })
    if (await backend.exists(key, { signal })) throw new Error('object still exists after delete')
  })
}

let server
const target = { env: process.env, local: false }
try {
  if (!configured) {
    const { startLocalS3 } = await import('../testing/index.mjs')
    server = await startLocalS3()
    target.local = true
    target.env = {
      STORAGE_S3_ENDPOINT: server.endpoint,
      STORAGE_S3_REGION: server.region,
      STORAGE_S3_BUCKET: server.bucket,
      STORAGE_S3_ACCESS_KEY_ID: server.credentials.accessKeyId,
      STORAGE_S3_SECRET_ACCESS_KEY: server.credentials.secretAccessKey,
    }
  }
  await main(target)
} catch (err) {
  const s = { name: 'unexpected', ok: false, ms: 0, error: err?.message ?? String(err) }
  steps.push(s)
  print(s)
} finally {
  await server?.stop()
}
const failed = steps.filter((s) => !s.ok).length
const passed = steps.length - failed
const what = target.local
  ? 'the built-in local S3 server, started for this check because no STORAGE_S3_* is set: this checked the package, not your deployment'
  : `the service STORAGE_S3_* names`
if (json) {
  console.log(JSON.stringify({ target: target.local ? 'local' : 'configured', checked: what, passed, failed, steps }, null, 2))
} else {
  console.log(`\n${passed} passed, ${failed} failed`)
  console.log(`checked: ${what}`)
}
process.exitCode = failed || steps.length === 0 ? 1 : 0
