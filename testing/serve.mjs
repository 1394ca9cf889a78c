#!/usr/bin/env node
// `storage-s3-local [--port P] [--dir D] [--bucket B] [--region R]
//   [--access-key K --secret-key S] [--domain D]...`: the built-in S3 server
// (startLocalS3) as a process of its own, for a manual try or for tests that
// kill and restart a server. Prints one JSON line (endpoint, bucket, region,
// credentials) once it serves; stops on SIGTERM or SIGINT.
import { parseArgs } from 'node:util'
import { startLocalS3 } from './index.mjs'

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
// The server runs on the addon's threads, which do not keep Node's event loop alive.
const alive = setInterval(() => {}, 1 << 30)
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    clearInterval(alive)
    s3.stop().then(() => process.exit(0), () => process.exit(1))
  })
}
