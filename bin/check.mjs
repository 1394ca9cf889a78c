#!/usr/bin/env node
// storage-s3-check: validates a deployment end to end, one PASS/FAIL line per
// step. With STORAGE_S3_* set it checks that service; with none set it starts
// a local s3s-fs server and checks against it. Exit code 0 only if all pass.
// Secrets are never printed.

import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { createS3Backend, generateStorageKey } from '../lib/index.mjs'

const configured = Object.keys(process.env).some((k) => k.startsWith('STORAGE_S3_') && process.env[k])
const results = []

function line(ok, name, ms, extra = '') {
  const status = ok ? 'PASS' : 'FAIL'
  console.log(`${status}  ${name.padEnd(34)} ${ms.toFixed(1).padStart(8)} ms${extra ? `  ${extra}` : ''}`)
}

async function step(name, fn) {
  const t0 = performance.now()
  try {
    const extra = await fn()
    line(true, name, performance.now() - t0, extra)
    results.push(true)
    return true
  } catch (err) {
    const reason = err?.details?.reason ? ` [${err.details.reason}]` : ''
    line(false, name, performance.now() - t0, `${err?.message ?? err}${reason}`)
    results.push(false)
    return false
  }
}

function sha256(buf) {
  return createHash('sha256').update(buf).digest('hex')
}

async function readAll(stream) {
  const chunks = []
  for await (const c of stream) chunks.push(c)
  return Buffer.concat(chunks)
}

async function main() {
  let server
  let env = process.env
  if (!configured) {
    const { startS3Server } = await import('../scripts/s3-server.mjs')
    server = await startS3Server()
    env = {
      STORAGE_S3_ENDPOINT: server.endpoint,
      STORAGE_S3_REGION: server.region,
      STORAGE_S3_BUCKET: server.bucket,
      STORAGE_S3_ACCESS_KEY_ID: server.accessKeyId,
      STORAGE_S3_SECRET_ACCESS_KEY: server.secretAccessKey,
    }
  }
  try {
    let backend
    const ok = await step('configuration', () => {
      backend = createS3Backend(env)
      const d = backend.describe()
      return `${d.endpoint ?? 'AWS S3'} bucket=${d.bucket} region=${d.region} ${d.forcePathStyle ? 'path-style' : 'virtual-hosted'}${server ? ' (local s3s-fs)' : ''}`
    })
    if (!ok) return

    const key = generateStorageKey({ groupId: 'storage-s3-check', filename: 'probe.bin' })
    const body = randomBytes(256 * 1024 + 17)
    const probe = `${key}.missing`

    await step('connectivity and bucket access', async () => `exists(missing key) = ${await backend.exists(probe)}`)
    await step('upload (Buffer)', async () => `etag ${(await backend.upload({ key, body, contentType: 'application/octet-stream', metadata: { check: 'storage-s3-check' } })).etag}`)
    await step('exists', async () => {
      if (!(await backend.exists(key))) throw new Error('the uploaded object is not visible')
    })
    await step('download and byte-compare', async () => {
      const got = await readAll(await backend.download(key))
      if (sha256(got) !== sha256(body)) throw new Error(`downloaded ${got.length} bytes differ from the ${body.length} uploaded`)
      return `${got.length} bytes match`
    })
    await step('upload (stream of unknown length)', async () => {
      await backend.upload({ key: `${key}.stream`, body: Readable.from([body.subarray(0, 1000), body.subarray(1000)]), contentType: 'application/octet-stream' })
      const got = await readAll(await backend.download(`${key}.stream`))
      if (!got.equals(body)) throw new Error('stream upload does not round-trip')
      await backend.delete(`${key}.stream`)
    })
    await step('signed GET URL over HTTP', async () => {
      const { url } = await backend.getSignedUrl(key, { expiresIn: 60 })
      const res = await fetch(url)
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`)
      const got = Buffer.from(await res.arrayBuffer())
      if (!got.equals(body)) throw new Error('signed GET returned other bytes')
      return `HTTP ${res.status}`
    })
    await step('signed PUT URL over HTTP', async () => {
      const putKey = `${key}.put`
      const { url } = await backend.getSignedUrl(putKey, { method: 'PUT', contentType: 'text/plain', expiresIn: 60 })
      const res = await fetch(url, { method: 'PUT', body: 'signed put', headers: { 'Content-Type': 'text/plain' } })
      if (res.status !== 200) throw new Error(`HTTP ${res.status}`)
      const got = await readAll(await backend.download(putKey))
      if (got.toString() !== 'signed put') throw new Error('signed PUT stored other bytes')
      await backend.delete(putKey)
      return `HTTP ${res.status}`
    })
    await step('delete (twice: idempotent)', async () => {
      await backend.delete(key)
      await backend.delete(key)
      if (await backend.exists(key)) throw new Error('object still exists after delete')
    })
  } finally {
    await server?.stop()
  }
}

await main().catch((err) => {
  console.log(`FAIL  unexpected: ${err?.message ?? err}`)
  results.push(false)
})
const failed = results.filter((r) => !r).length
console.log(`\n${results.length - failed} passed, ${failed} failed`)
process.exitCode = failed || results.length === 0 ? 1 : 0
