// Worker: starts a large transfer and reports progress, so the parent can
// terminate it mid-way. workerData: { s3, key, mode: 'upload' | 'download', multipart? }
import { parentPort, workerData } from 'node:worker_threads'
import { Readable } from 'node:stream'
import { S3StorageBackend } from '../../../lib/index.mjs'

const { s3, key, mode, multipart, contentLength } = workerData
const backend = new S3StorageBackend({
  bucket: s3.bucket,
  endpoint: s3.endpoint,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  multipart,
})
const CHUNK = 256 * 1024

if (mode === 'upload') {
  // Far more than will be sent before the parent terminates us.
  const total = contentLength ?? 1024 * 1024 * 1024
  let sent = 0
  const chunk = Buffer.alloc(CHUNK, 0x61)
  const body = new Readable({
    read() {
      sent += CHUNK
      parentPort.postMessage({ sent })
      this.push(sent <= total ? chunk : null)
    },
  })
  backend.upload({ key, body, contentType: 'application/octet-stream', contentLength }).then(
    () => parentPort.postMessage({ done: true }),
    (err) => parentPort.postMessage({ error: String(err) }),
  )
} else {
  const stream = await backend.download(key)
  let received = 0
  // Read slowly, so the parent can stop us in the middle.
  stream.on('data', (c) => {
    received += c.length
    parentPort.postMessage({ received })
    stream.pause()
    setTimeout(() => stream.resume(), 20)
  })
  stream.on('end', () => parentPort.postMessage({ done: true, received }))
  stream.on('error', (err) => parentPort.postMessage({ error: String(err) }))
}
