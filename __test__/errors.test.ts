// Typed errors against the real server: reasons, status codes, idempotent
// delete, exists semantics, and secrets never leaking.
import { createServer } from 'node:net'
import { inspect } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { S3StorageBackend, StorageError, FileNotFoundError } from '../lib/index.mjs'
import { testServer, uniqueKey } from './helpers/s3'

const s3 = testServer()
const SECRET = 'wrong-secret-0123456789-must-not-leak'

function backend(overrides: Record<string, unknown> = {}) {
  return new S3StorageBackend({
    bucket: s3.bucket,
    endpoint: s3.endpoint,
    region: s3.region,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    ...overrides,
  })
}

/** Every place a secret could surface when an error is logged or returned. */
function everyRendering(err: any): string {
  return [err.message, err.stack, inspect(err, { depth: 10, showHidden: true }), JSON.stringify(err), JSON.stringify(err.details)].join('\n')
}

async function closedPort(): Promise<number> {
  const srv = createServer()
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
  const port = (srv.address() as any).port
  await new Promise((r) => srv.close(r))
  return port
}

describe('not found and idempotence', () => {
  const b = backend()

  it('exists is false for a missing key and true after upload', async () => {
    const key = uniqueKey('exists')
    expect(await b.exists(key)).toBe(false)
    await b.upload({ key, body: Buffer.from('x'), contentType: 'text/plain' })
    expect(await b.exists(key)).toBe(true)
    await b.delete(key)
    expect(await b.exists(key)).toBe(false)
  })

  it('download of a missing key rejects with FileNotFoundError', async () => {
    const key = uniqueKey('missing')
    const err = await b.download(key).catch((e) => e)
    expect(err).toBeInstanceOf(FileNotFoundError)
    expect(err).toMatchObject({ code: 'FILE_NOT_FOUND', statusCode: 404 })
    expect(err.details).toMatchObject({ key, reason: 'not_found', operation: 'download' })
    expect(err.message).toContain(key)
  })

  it('delete is idempotent', async () => {
    const key = uniqueKey('delete')
    await b.upload({ key, body: Buffer.from('x'), contentType: 'text/plain' })
    await expect(b.delete(key)).resolves.toBeUndefined()
    await expect(b.delete(key)).resolves.toBeUndefined()
    await expect(b.delete(uniqueKey('never-existed'))).resolves.toBeUndefined()
    expect(await b.exists(key)).toBe(false)
  })
})

describe('missing bucket', () => {
  const b = backend({ bucket: 'no-such-bucket-here' })

  // Not upload: s3s-fs creates a missing bucket's directory on PutObject.
  it('exists, download and delete throw bucket_not_found', async () => {
    for (const call of [() => b.exists('k'), () => b.download('k'), () => b.delete('k')]) {
      const err = await call().then(
        () => undefined,
        (e) => e,
      )
      expect(err).toBeInstanceOf(StorageError)
      expect(err.details.reason).toBe('bucket_not_found')
      expect(err.details.bucket).toBe('no-such-bucket-here')
      expect(err.statusCode).toBe(500)
    }
  })
})

describe('credentials', () => {
  // moto does not verify signatures or access keys: any credentials are accepted there.
  const checksCredentials = s3.server !== 'moto'
  // Garage answers a bad signature and an unknown access key alike with 403 AccessDenied
  // ("Forbidden: Invalid signature" / "Forbidden: No such key: ..."), where S3 says
  // SignatureDoesNotMatch / InvalidAccessKeyId: the backend can only report access_denied.
  const garage = s3.server === 'garage'

  it.skipIf(!checksCredentials)('a wrong secret gives reason auth on every operation, and the secret appears nowhere', async () => {
    const b = backend({ credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: SECRET } })
    const key = uniqueKey('auth')
    const calls = [
      () => b.exists(key),
      () => b.download(key),
      () => b.delete(key),
      () => b.upload({ key, body: Buffer.from('x'), contentType: 'text/plain' }),
    ]
    for (const call of calls) {
      const err = await call().then(
        () => undefined,
        (e) => e,
      )
      expect(err).toBeInstanceOf(StorageError)
      expect(err.details.reason).toBe(garage ? 'access_denied' : 'auth')
      expect(err.details.code).toBe(garage ? 'AccessDenied' : 'SignatureDoesNotMatch')
      expect(err.message).toMatch(garage ? /denied/i : /credentials/)
      expect(everyRendering(err)).not.toContain(SECRET)
    }
    expect(inspect(b) + JSON.stringify(b)).not.toContain(SECRET)
  })

  it.skipIf(!checksCredentials)('a wrong access key id gives reason auth', async () => {
    const b = backend({ credentials: { accessKeyId: 'AKIAWRONGWRONGWRONG', secretAccessKey: SECRET } })
    const err = await b.exists(uniqueKey('auth')).catch((e) => e)
    expect(err.details.reason).toBe(garage ? 'access_denied' : 'auth')
    // AWS says InvalidAccessKeyId; s3s says NotSignedUp; Garage AccessDenied
    expect(garage ? ['AccessDenied'] : ['InvalidAccessKeyId', 'NotSignedUp']).toContain(err.details.code)
    expect(everyRendering(err)).not.toContain(SECRET)
  })

  describe('absent credentials use the AWS default chain', () => {
    const saved = { ...process.env }
    afterAll(() => {
      for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_EC2_METADATA_DISABLED']) {
        if (saved[name] === undefined) delete process.env[name]
        else process.env[name] = saved[name]
      }
    })

    it('reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment', async () => {
      process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId
      process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey
      process.env.AWS_EC2_METADATA_DISABLED = 'true' // never reach for IMDS from a test
      const b = new S3StorageBackend({ bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region })
      expect(b.describe().credentials).toBe('default-chain')
      const key = uniqueKey('chain')
      await b.upload({ key, body: Buffer.from('chain'), contentType: 'text/plain' })
      expect(await b.exists(key)).toBe(true)
      await b.delete(key)
    })
  })
})

describe('service unreachable', () => {
  it('a refused connection is reason unavailable with status 503, for exists too', async () => {
    const port = await closedPort()
    const b = backend({ endpoint: `http://127.0.0.1:${port}` })
    for (const call of [() => b.exists('k'), () => b.download('k'), () => b.upload({ key: 'k', body: Buffer.from('x'), contentType: 'text/plain' })]) {
      const err = await call().then(
        () => undefined,
        (e) => e,
      )
      expect(err).toBeInstanceOf(StorageError)
      expect(err.details.reason).toBe('unavailable')
      expect(err.statusCode).toBe(503)
      expect(err.message).toMatch(/unavailable/)
    }
  })
})

describe('signed URLs need no server', () => {
  it('signs for a missing key and for an unreachable endpoint', async () => {
    const port = await closedPort()
    const b = backend({ endpoint: `http://127.0.0.1:${port}` })
    const signed = await b.getSignedUrl('any/key.pdf')
    expect(signed.url).toContain(`127.0.0.1:${port}`)
    expect(new Date(signed.expiresAt).toISOString()).toBe(signed.expiresAt)
    expect(signed.url).not.toContain(s3.secretAccessKey)
  })
})

describe('bad arguments are typed and rejected before any request', () => {
  const b = backend({ endpoint: 'http://127.0.0.1:9' }) // a request would fail as unavailable, not invalid_argument
  const cases: [string, () => Promise<unknown>][] = [
    ['exists(non-string)', () => b.exists(42 as any)],
    ['download(empty)', () => b.download('')],
    ['delete(too long)', () => b.delete('k'.repeat(1025))],
    ['exists(control char)', () => b.exists('a\nb')],
    ['getSignedUrl(expiresIn 0)', () => b.getSignedUrl('k', { expiresIn: 0 })],
    ['getSignedUrl(expiresIn 604801)', () => b.getSignedUrl('k', { expiresIn: 604801 })],
    ['getSignedUrl(expiresIn 1.5)', () => b.getSignedUrl('k', { expiresIn: 1.5 })],
    ['getSignedUrl(expiresIn string)', () => b.getSignedUrl('k', { expiresIn: '60' as any })],
    ['getSignedUrl(method DELETE)', () => b.getSignedUrl('k', { method: 'DELETE' as any })],
    ['getSignedUrl(contentType CRLF)', () => b.getSignedUrl('k', { method: 'PUT', contentType: 'text/plain\r\nx: y' })],
    ['upload(empty contentType)', () => b.upload({ key: 'k', body: Buffer.from('x'), contentType: '' })],
    ['upload(metadata number)', () => b.upload({ key: 'k', body: Buffer.from('x'), contentType: 'a/b', metadata: { n: 1 as any } })],
    ['upload(body string)', () => b.upload({ key: 'k', body: 'text' as any, contentType: 'a/b' })],
    ['upload(contentLength -1)', () => b.upload({ key: 'k', body: Buffer.from('x'), contentType: 'a/b', contentLength: -1 })],
  ]
  for (const [name, call] of cases) {
    it(name, async () => {
      const err: any = await call().then(
        () => undefined,
        (e) => e,
      )
      expect(err).toBeInstanceOf(StorageError)
      expect(err.details.reason).toBe('invalid_argument')
      expect(err.statusCode).toBe(400)
      expect(typeof err.details.field).toBe('string')
    })
  }
})
