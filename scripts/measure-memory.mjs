#!/usr/bin/env node
// RSS growth of a streaming upload of unknown length and of a download, with
// the default settings, against a local s3s-fs:
//   node scripts/measure-memory.mjs [MiB=512] [chunkMiB=1]
// Optional MULTIPART='{"partSize":5242880,"queueSize":3}' to try other settings.
import { Readable } from 'node:stream'
import { startS3Server } from './s3-server.mjs'
import { S3StorageBackend } from '../lib/index.mjs'

const MiB = 1024 * 1024
const total = Number(process.argv[2] ?? 512) * MiB
const chunk = Math.round(Number(process.argv[3] ?? 1) * MiB)

/** Peak RSS (and V8 ArrayBuffer bytes) above the level at the start. */
async function peakGrowth(run) {
  const base = process.memoryUsage()
  let rss = 0
  let arrayBuffers = 0
  const timer = setInterval(() => {
    const m = process.memoryUsage()
    rss = Math.max(rss, m.rss - base.rss)
    arrayBuffers = Math.max(arrayBuffers, m.arrayBuffers)
  }, 20)
  const t0 = performance.now()
  const result = await run()
  clearInterval(timer)
  return { result, seconds: (performance.now() - t0) / 1000, rss: rss / MiB, arrayBuffers: arrayBuffers / MiB }
}

const server = await startS3Server()
try {
  const backend = new S3StorageBackend({
    bucket: server.bucket,
    endpoint: server.endpoint,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    ...(process.env.MULTIPART ? { multipart: JSON.parse(process.env.MULTIPART) } : {}),
  })
  await backend.upload({ key: 'warm-up', body: Buffer.alloc(1024), contentType: 'application/octet-stream' })
  let sent = 0
  const source = new Readable({
    read() {
      if (sent >= total) return this.push(null)
      const c = Buffer.allocUnsafe(Math.min(chunk, total - sent)).fill(sent & 255)
      sent += c.length
      this.push(c)
    },
  })
  const up = await peakGrowth(() => backend.upload({ key: 'big', body: source, contentType: 'application/octet-stream' }))
  console.log(
    `upload   ${total / MiB} MiB stream, unknown length, ${chunk / MiB} MiB chunks: ${(total / MiB / up.seconds).toFixed(0)} MiB/s, ` +
      `RSS +${up.rss.toFixed(1)} MiB (V8 ArrayBuffers peak ${up.arrayBuffers.toFixed(1)} MiB), etag ${up.result.etag}`,
  )
  const down = await peakGrowth(async () => {
    let n = 0
    for await (const c of await backend.download('big')) n += c.length
    return n
  })
  console.log(`download ${down.result / MiB} MiB: ${(down.result / MiB / down.seconds).toFixed(0)} MiB/s, RSS +${down.rss.toFixed(1)} MiB`)
  console.log(JSON.stringify(backend.describe().multipart))
} finally {
  await server.stop()
}
