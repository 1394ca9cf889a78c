// Child process for workers.test.ts: starts transfer.mjs workers, terminates each once it
// posts a message matching its `until`, then uses the package on this thread. A crash shows
// up as this process's exit signal, a hang as the parent's kill.
// Env: S3 = JSON { bucket, endpoint, accessKeyId, secretAccessKey };
//      JOBS = JSON [{ workerData, until }]; `until` is "name" (truthy) or "name>=number".
// Prints one JSON line: { exitCodes, finished, objects, roundTrip }; `objects` maps each
// upload key to 'absent', 'intact' (only possible for upload-buffer) or 'corrupt'.
import { Worker } from 'node:worker_threads'
import { S3StorageBackend } from '../../../lib/index.mjs'

const s3 = JSON.parse(process.env.S3)
const jobs = JSON.parse(process.env.JOBS)

function matcher(until) {
  const [name, min] = until.split('>=')
  return min === undefined ? (m) => Boolean(m[name]) : (m) => m[name] >= Number(min)
}

/** Messages saying the transfer ended (it must not have). */
const finished = []
const workers = await Promise.all(
  jobs.map(async ({ workerData, until }) => {
    const worker = new Worker(new URL('./transfer.mjs', import.meta.url), { workerData: { s3, ...workerData } })
    const matches = matcher(until)
    await new Promise((resolve, reject) => {
      worker.on('message', (m) => {
        if ('done' in m || 'error' in m) finished.push(m)
        if (matches(m)) resolve()
      })
      worker.on('error', reject)
      worker.on('exit', (code) => reject(new Error(`worker exited (${code}) before ${until}`)))
    })
    return worker
  }),
)
const exitCodes = await Promise.all(workers.map((w) => w.terminate()))

const backend = new S3StorageBackend({
  bucket: s3.bucket,
  endpoint: s3.endpoint,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
})
// Several rounds, so whatever the dead workers left running gets time to run meanwhile.
const key = `${jobs[0].workerData.key}.after`
const body = Buffer.alloc(3 * 1024 * 1024, 0x66)
let roundTrip = true
for (let i = 0; i < 5; i++) {
  await backend.upload({ key, body, contentType: 'application/octet-stream' })
  const chunks = []
  for await (const c of await backend.download(key)) chunks.push(c)
  roundTrip &&= Buffer.concat(chunks).equals(body) && (await backend.exists(key))
  await backend.delete(key)
  await new Promise((r) => setTimeout(r, 50))
}
const objects = {}
for (const { workerData } of jobs) {
  if (workerData.mode === 'download') continue
  let state = 'absent'
  if (await backend.exists(workerData.key)) {
    const chunks = []
    for await (const c of await backend.download(workerData.key)) chunks.push(c)
    const whole = workerData.mode === 'upload-buffer' && Buffer.concat(chunks).equals(Buffer.alloc(workerData.size, 0x65))
    state = whole ? 'intact' : 'corrupt'
  }
  objects[workerData.key] = state
}
process.stdout.write(JSON.stringify({ exitCodes, finished, objects, roundTrip }) + '\n')
