// Worker: loads the ESM entry and does a round trip.
import { parentPort, workerData } from 'node:worker_threads'
import { createRequire } from 'node:module'
import * as pkg from '../../../lib/index.mjs'

const { roundTrip } = createRequire(import.meta.url)('./roundtrip-body.cjs')
roundTrip(pkg, workerData).then(
  (report) => parentPort.postMessage({ ok: true, entry: 'esm', report }),
  (err) => parentPort.postMessage({ ok: false, entry: 'esm', error: String(err?.stack ?? err) }),
)
