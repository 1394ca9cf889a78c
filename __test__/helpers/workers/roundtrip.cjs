'use strict'
// Worker: loads the CommonJS entry and does a round trip.
const { parentPort, workerData } = require('node:worker_threads')
const path = require('node:path')
const { roundTrip } = require('./roundtrip-body.cjs')

const pkg = require(path.resolve(__dirname, '../../../lib/index.cjs'))
roundTrip(pkg, workerData).then(
  (report) => parentPort.postMessage({ ok: true, entry: 'cjs', report }),
  (err) => parentPort.postMessage({ ok: false, entry: 'cjs', error: String(err?.stack ?? err) }),
)
