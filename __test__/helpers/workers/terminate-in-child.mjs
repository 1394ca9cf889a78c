// Child process for workers.test.ts: starts transfer.mjs workers, terminates each once it
// posts a message matching its `until`, then uses the package on this thread; ROUNDS times.
// A crash shows up as this process's exit signal, a hang as the parent's kill.
// Env: S3 = JSON { bucket, region, endpoint, accessKeyId, secretAccessKey };
//      JOBS = JSON [{ workerData, until, stall? }]; `until` is "name" (truthy) or "name>=number";
//        with `stall: { limit, direction }` the worker talks through a proxy.mjs relay that
//        holds the response after `limit` body bytes (direction 'response', the default) or
//        stops reading the request after `limit` body bytes ('request'), and is terminated
//        only once that relay holds its connection;
//      ROUNDS = how many times to run all jobs (default 1); upload keys get "-r<round>" appended.
// Prints one JSON line: { exitCodes, finished, objects, roundTrip, connectionsLeft }; `objects`
// maps each upload key to 'absent', 'intact' (only possible for upload-buffer) or 'corrupt';
// `connectionsLeft`: relay connections still open 10 s after the terminations at most.
import { Worker } from 'node:worker_threads'
import { S3StorageBackend } from '../../../lib/index.mjs'
import { startProxy } from '../proxy.mjs'

const s3 = JSON.parse(process.env.S3)
const jobs = JSON.parse(process.env.JOBS)
const rounds = Number(process.env.ROUNDS ?? 1)

function matcher(until) {
  const [name, min] = until.split('>=')
  return min === undefined ? (m) => Boolean(m[name]) : (m) => m[name] >= Number(min)
}

const backend = new S3StorageBackend({
  bucket: s3.bucket,
  region: s3.region,
  endpoint: s3.endpoint,
  credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
})

async function readAll(stream) {
  const chunks = []
  for await (const c of stream) chunks.push(c)
  return Buffer.concat(chunks)
}

const exitCodes = []
/** Messages saying a transfer ended (none must have). */
const finished = []
const uploads = []
let roundTrip = true
let connectionsLeft = 0
const target = { host: new URL(s3.endpoint).hostname, port: Number(new URL(s3.endpoint).port) }
for (let round = 0; round < rounds; round++) {
  const proxies = []
  const workers = await Promise.all(
    jobs.map(async ({ workerData, until, stall }) => {
      const data = { ...workerData, s3 }
      let proxy
      const stallKind = stall?.direction === 'request' ? 'stallRequest' : 'stallResponse'
      if (stall) {
        proxy = await startProxy(target)
        proxy[stallKind](stall.limit)
        proxies.push(proxy)
        data.s3 = { ...s3, endpoint: proxy.endpoint }
      }
      if (data.mode !== 'download') {
        data.key = `${data.key}-r${round}`
        uploads.push(data)
      }
      const worker = new Worker(new URL('./transfer.mjs', import.meta.url), { workerData: data })
      const matches = matcher(until)
      await new Promise((resolve, reject) => {
        worker.on('message', (m) => {
          if ('done' in m || 'error' in m) finished.push(m)
          if (matches(m)) resolve()
        })
        worker.on('error', reject)
        worker.on('exit', (code) => reject(new Error(`worker exited (${code}) before ${until}`)))
      })
      while (proxy && !proxy.faults()[stallKind]) await new Promise((r) => setTimeout(r, 20))
      return worker
    }),
  )
  exitCodes.push(...(await Promise.all(workers.map((w) => w.terminate()))))
  // A dead worker's transfers must not keep their connections (the relays never finish them).
  const open = () => proxies.reduce((n, p) => n + p.openConnections(), 0)
  for (let waited = 0; open() > 0 && waited < 10_000; waited += 50) await new Promise((r) => setTimeout(r, 50))
  connectionsLeft += open()
  await Promise.all(proxies.map((p) => p.close()))

  // Use the package meanwhile, while whatever the dead workers left running runs too.
  const key = `${jobs[0].workerData.key}.after-r${round}`
  const body = Buffer.alloc(3 * 1024 * 1024, 0x66)
  for (let i = 0; i < 4; i++) {
    await backend.upload({ key, body, contentType: 'application/octet-stream' })
    roundTrip &&= (await readAll(await backend.download(key))).equals(body) && (await backend.exists(key))
    await backend.delete(key)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const objects = {}
for (const { key, mode, size } of uploads) {
  let state = 'absent'
  if (await backend.exists(key)) {
    const whole = mode === 'upload-buffer' && (await readAll(await backend.download(key))).equals(Buffer.alloc(size, 0x65))
    state = whole ? 'intact' : 'corrupt'
  }
  objects[key] = state
}
process.stdout.write(JSON.stringify({ exitCodes, finished, objects, roundTrip, connectionsLeft }) + '\n')
