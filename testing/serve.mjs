#!/usr/bin/env node
// `storage-s3-local [--port P] [--dir D] [--bucket B] [--region R]
//   [--access-key K --secret-key S] [--domain D]...`: the built-in S3 server
// (startLocalS3) as a process of its own, for a manual try or for tests that
// kill and restart a server. Prints one JSON line (endpoint, bucket, region,
// credentials) once it serves; stops on SIGTERM, SIGINT or SIGHUP, or when
// its parent process is gone.
import { parseArgs } from 'node:util'

// Read before anything slow (loading the addon, starting the server): a parent that exits in
// the meantime would otherwise be missed, and the server would outlive it.
const parent = process.ppid
const { startLocalS3 } = await import('./index.mjs')

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    dir: { type: 'string' },
    bucket: { type: 'string' },
    region: { type: 'string' },
    'access-key': { type: 'string' },
    'secret-key': { type: 'string' },
    domain: { type: 'string', multiple: true },
  },
  strict: true,
})

const s3 = await startLocalS3({
  port: values.port === undefined ? undefined : Number(values.port),
  dir: values.dir,
  bucket: values.bucket,
  region: values.region,
  accessKeyId: values['access-key'],
  secretAccessKey: values['secret-key'],
  domain: values.domain,
})
console.log(JSON.stringify({ ...s3, dir: s3.dir }))
let stopping = false
function stop() {
  if (stopping) return
  stopping = true
  clearInterval(alive)
  s3.stop().then(() => process.exit(0), () => process.exit(1))
}
// The server runs on the addon's threads, which do not keep Node's event loop
// alive; this timer does. It also ends the server when the process that
// started it is gone (`npx` does not pass SIGTERM on to its child).
const alive = setInterval(() => {
  if (process.ppid !== parent) stop()
}, 1000)
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.once(signal, stop)
