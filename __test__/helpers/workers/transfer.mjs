// Worker: starts a large transfer and reports progress, so the parent can
// terminate it in the middle.
// workerData: { s3, key, mode: 'upload' | 'upload-buffer' | 'download', multipart?, contentLength?, stallAfter?, flowing?, size? }
//   upload: a stream of `contentLength` bytes (1 GiB when absent); with `stallAfter`, the
//           source stops producing after that many bytes (and posts { stalled }) but stays open.
//   upload-buffer: one Buffer of `size` bytes; posts { started } once upload() was called.
//   download: reads the object slowly (pauses 20 ms after each chunk), or as fast as it
//             comes with `flowing`; with `stallAfter`, stops reading after that many bytes
//             (and posts { stalled }), the download left open.
import { parentPort, workerData } from 'node:worker_threads'
import { Readable } from 'node:stream'
import { S3StorageBackend } from '../../../lib/index.mjs'

const { s3, key, mode, multipart, contentLength, stallAfter, flowing } = workerData
const backend = new S3StorageBackend({
  bucket: s3.bucket,
  region: s3.region,
  endpoint: s3.endpoint,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  multipart,
})
const CHUNK = 256 * 1024

if (mode === 'upload') {
  const total = contentLength ?? 1024 * 1024 * 1024
  const chunk = Buffer.alloc(CHUNK, 0x61)
  let sent = 0
  const body = new Readable({
    read() {
      if (stallAfter !== undefined && sent >= stallAfter) {
        // Keep the worker alive with the upload open, waiting for more data.
        setInterval(() => {}, 1000)
        parentPort.postMessage({ stalled: true, sent })
        return
      }
      const n = Math.min(CHUNK, total - sent)
      sent += n
      parentPort.postMessage({ sent })
      this.push(n > 0 ? chunk.subarray(0, n) : null)
    },
  })
  backend.upload({ key, body, contentType: 'application/octet-stream', contentLength }).then(
    () => parentPort.postMessage({ done: true }),
    (err) => parentPort.postMessage({ error: String(err) }),
  )
} else if (mode === 'upload-buffer') {
  const body = Buffer.alloc(workerData.size, 0x65)
  backend.upload({ key, body, contentType: 'application/octet-stream' }).then(
    () => parentPort.postMessage({ done: true }),
    (err) => parentPort.postMessage({ error: String(err) }),
  )
  parentPort.postMessage({ started: true })
} else {
  const stream = await backend.download(key)
  let received = 0
  stream.on('data', (c) => {
    received += c.length
    parentPort.postMessage({ received })
    if (stallAfter !== undefined && received >= stallAfter) {
      // Stop reading for good, the download left open (the timer keeps the worker alive).
      stream.pause()
      setInterval(() => {}, 1000)
      parentPort.postMessage({ stalled: true, received })
      return
    }
    if (flowing) return
    stream.pause()
    setTimeout(() => stream.resume(), 20)
  })
  stream.on('end', () => parentPort.postMessage({ done: true, received }))
  stream.on('error', (err) => parentPort.postMessage({ error: String(err) }))
}
