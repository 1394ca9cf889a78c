'use strict'
// A round trip with the package, run inside a worker thread (shared by the ESM
// and CommonJS worker entries). `pkg` is the loaded package; returns a report.
const { Readable } = require('node:stream')

async function readAll(stream) {
  const chunks = []
  for await (const chunk of stream) chunks.push(chunk)
  return Buffer.concat(chunks)
}

async function roundTrip(pkg, { s3, key }) {
  const { S3StorageBackend, FileNotFoundError } = pkg
  const backend = new S3StorageBackend({
    bucket: s3.bucket,
    region: s3.region,
    endpoint: s3.endpoint,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  })
  const body = Buffer.from(`${key}\n`.repeat(2000))
  await backend.upload({ key, body, contentType: 'text/plain' })
  const streamed = `${key}.stream`
  await backend.upload({ key: streamed, body: Readable.from([body, body]), contentType: 'text/plain' })

  const report = {}
  report.exists = await backend.exists(key)
  report.downloadMatches = (await readAll(await backend.download(key))).equals(body)
  report.streamedMatches = (await readAll(await backend.download(streamed))).equals(Buffer.concat([body, body]))
  const { url } = await backend.getSignedUrl(key)
  const res = await fetch(url)
  report.signedStatus = res.status
  report.signedMatches = Buffer.from(await res.arrayBuffer()).equals(body)
  await backend.delete(key)
  await backend.delete(streamed)
  report.existsAfterDelete = await backend.exists(key)
  const missing = await backend.download(key).catch((e) => e)
  report.missingIsFileNotFound = missing instanceof FileNotFoundError
  return report
}

module.exports = { roundTrip }
