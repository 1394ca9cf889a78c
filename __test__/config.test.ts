// Construction: options, the host's STORAGE_* variables, error class injection,
// generateStorageKey, and that no secret is ever shown.
import { inspect } from 'node:util'
import { execFileSync } from 'node:child_process'
import { afterEach, describe, expect, it } from 'vitest'
import {
  S3StorageBackend,
  createS3Backend,
  generateStorageKey,
  ConfigurationError,
  StorageError,
  FileNotFoundError,
} from '../lib/index.mjs'
import { testServer, uniqueKey } from './helpers/s3'

const s3 = testServer()

function hostEnv(overrides: Record<string, string | undefined> = {}) {
  return {
    STORAGE_S3_ENDPOINT: s3.endpoint,
    STORAGE_S3_REGION: s3.region,
    STORAGE_S3_BUCKET: s3.bucket,
    STORAGE_S3_ACCESS_KEY_ID: s3.accessKeyId,
    STORAGE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
    ...overrides,
  }
}

function catchSync(fn: () => unknown): any {
  try {
    fn()
  } catch (err) {
    return err
  }
  throw new Error('expected a throw')
}

describe('constructor options', () => {
  it('names every bad option at once in a ConfigurationError', () => {
    const err = catchSync(
      () =>
        new S3StorageBackend({
          bucket: '',
          region: 'not a region!',
          endpoint: 'ftp://example',
          credentials: { accessKeyId: 'AKIA' } as any,
          signedUrlExpiration: -5,
          bukcet: 'typo',
        } as any),
    )
    expect(err).toBeInstanceOf(ConfigurationError)
    expect(err.code).toBe('CONFIGURATION_ERROR')
    expect(err.statusCode).toBe(500)
    const fields = err.details.issues.map((i: { field: string }) => i.field).sort()
    expect(fields).toEqual(
      ['bucket', 'bukcet', 'credentials.secretAccessKey', 'endpoint', 'region', 'signedUrlExpiration'].sort(),
    )
    expect(err.details.backend).toBe('s3')
    expect(err.message).toMatch(/^Invalid storage configuration: /)
    for (const f of fields) expect(err.message).toContain(`${f}: `)
  })

  it('rejects a non-object and wrong types', () => {
    expect(catchSync(() => new S3StorageBackend(null as any))).toBeInstanceOf(ConfigurationError)
    const err = catchSync(() => new S3StorageBackend({ bucket: 42, forcePathStyle: 'yes' } as any))
    expect(err.details.issues.map((i: any) => i.field).sort()).toEqual(['bucket', 'forcePathStyle'])
  })

  it('defaults: us-east-1, path-style only with an endpoint, 900 s URLs', () => {
    const aws = new S3StorageBackend({ bucket: 'files', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } })
    expect(aws.describe()).toMatchObject({ region: 'us-east-1', forcePathStyle: false, signedUrlExpiration: 900 })
    const minio = new S3StorageBackend({ bucket: 'files', endpoint: 'http://127.0.0.1:9000' })
    expect(minio.describe()).toMatchObject({ forcePathStyle: true, credentials: 'default-chain' })
  })

  it('never shows credentials in inspect, JSON or describe()', () => {
    const secret = 'sup3r-s3cret-value-abcdef'
    const token = 'session-token-xyz-987'
    const b = new S3StorageBackend({
      bucket: 'files',
      endpoint: 'http://127.0.0.1:9000',
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: secret, sessionToken: token },
    })
    for (const text of [inspect(b, { showHidden: true, depth: 10 }), JSON.stringify(b), String(b), JSON.stringify(b.describe())]) {
      expect(text).not.toContain(secret)
      expect(text).not.toContain(token)
    }
    expect(JSON.stringify(b)).toContain('"bucket":"files"')
  })

  it('keeps an endpoint password out of the error', () => {
    const err = catchSync(() => new S3StorageBackend({ bucket: 'files', endpoint: 'http://admin:hunter2@127.0.0.1:9000' }))
    expect(err).toBeInstanceOf(ConfigurationError)
    expect(err.message + JSON.stringify(err.details) + err.stack).not.toContain('hunter2')
  })

  it('shares one set of classes between the ESM and CommonJS entries (plain Node)', () => {
    // In a real Node process, not through vitest's module loader.
    const script = `
      import { createRequire } from 'node:module'
      import * as esm from '${new URL('../lib/index.mjs', import.meta.url).href}'
      const cjs = createRequire(import.meta.url)('${new URL('../lib/index.cjs', import.meta.url).pathname}')
      const names = ['S3StorageBackend', 'createS3Backend', 'generateStorageKey', 'StorageError', 'FileNotFoundError', 'ConfigurationError']
      console.log(JSON.stringify(names.map((n) => typeof esm[n] === 'function' && esm[n] === cjs[n])))
    `
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' })
    expect(JSON.parse(out)).toEqual([true, true, true, true, true, true])
  })
})

describe('createS3Backend (host environment variables)', () => {
  afterEach(() => {
    for (const name of Object.keys(process.env)) if (name.startsWith('STORAGE_')) delete process.env[name]
  })

  it('builds a working backend from STORAGE_* variables', async () => {
    const b = createS3Backend(hostEnv())
    const key = uniqueKey('env')
    await b.upload({ key, body: Buffer.from('from env'), contentType: 'text/plain' })
    expect(await b.exists(key)).toBe(true)
    expect(b.describe()).toMatchObject({ bucket: s3.bucket, forcePathStyle: true, signedUrlExpiration: 900 })
    await b.delete(key)
  })

  it('reads process.env by default', async () => {
    Object.assign(process.env, hostEnv({ STORAGE_SIGNED_URL_EXPIRATION_SECONDS: '120' }))
    const b = createS3Backend()
    expect(b.describe().signedUrlExpiration).toBe(120)
    expect(await b.exists(uniqueKey('none'))).toBe(false)
  })

  it('names every missing variable in the host format', () => {
    const err = catchSync(() => createS3Backend({ STORAGE_S3_ENDPOINT: s3.endpoint }))
    expect(err).toBeInstanceOf(ConfigurationError)
    expect(err.message).toMatch(/^Invalid storage configuration: /)
    expect(err.message).toContain('STORAGE_S3_REGION: S3 region is required')
    expect(err.message).toContain('STORAGE_S3_BUCKET: S3 bucket is required')
    // No key variables is not an error: the AWS default credential chain is used.
    const fields = err.details.issues.map((i: any) => i.field).sort()
    expect(fields).toEqual(['STORAGE_S3_BUCKET', 'STORAGE_S3_REGION'])
  })

  it('without access key variables uses the default credential chain; one key without the other names the missing one', () => {
    const { STORAGE_S3_ACCESS_KEY_ID: _id, STORAGE_S3_SECRET_ACCESS_KEY: _secret, ...noKeys } = hostEnv()
    expect(createS3Backend(noKeys).describe()).toMatchObject({ credentials: 'default-chain' })
    const err = catchSync(() => createS3Backend({ ...noKeys, STORAGE_S3_ACCESS_KEY_ID: 'AK' }))
    expect(err.details.issues.map((i: any) => i.field)).toEqual(['STORAGE_S3_SECRET_ACCESS_KEY'])
  })

  it('names an unknown STORAGE_S3_* variable (a typo would leave the real one unset)', () => {
    const err = catchSync(() => createS3Backend(hostEnv({ STORAGE_S3_BUKET: 'typo' })))
    expect(err).toBeInstanceOf(ConfigurationError)
    expect(err.details.issues.map((i: any) => i.field)).toEqual(['STORAGE_S3_BUKET'])
    expect(err.message).toContain('STORAGE_S3_BUKET: unknown variable')
  })

  it('STORAGE_S3_FORCE_PATH_STYLE takes true or false (any case) and nothing else', () => {
    expect(createS3Backend(hostEnv({ STORAGE_S3_FORCE_PATH_STYLE: 'False' })).describe().forcePathStyle).toBe(false)
    for (const bad of ['1', '0', 'yes']) {
      const err = catchSync(() => createS3Backend(hostEnv({ STORAGE_S3_FORCE_PATH_STYLE: bad })))
      expect(err.details.issues.map((i: any) => i.field)).toEqual(['STORAGE_S3_FORCE_PATH_STYLE'])
    }
  })

  it('rejects a bad expiration variable and an empty required one', () => {
    for (const bad of ['0', '-1', 'abc', '1.5', '604801']) {
      const err = catchSync(() => createS3Backend(hostEnv({ STORAGE_SIGNED_URL_EXPIRATION_SECONDS: bad })))
      expect(err.details.issues.map((i: any) => i.field)).toEqual(['STORAGE_SIGNED_URL_EXPIRATION_SECONDS'])
    }
    const err = catchSync(() => createS3Backend(hostEnv({ STORAGE_S3_BUCKET: '' })))
    expect(err.details.issues.map((i: any) => i.field)).toEqual(['STORAGE_S3_BUCKET'])
  })

  it('lets explicit options win over the environment', () => {
    const b = createS3Backend(hostEnv(), { signedUrlExpiration: 30, bucket: 'other-bucket' })
    expect(b.describe()).toMatchObject({ signedUrlExpiration: 30, bucket: 'other-bucket' })
  })

  it('never echoes the secret variable', () => {
    const secret = 'env-secret-should-not-leak-123'
    const err = catchSync(() => createS3Backend(hostEnv({ STORAGE_S3_SECRET_ACCESS_KEY: secret, STORAGE_S3_REGION: '' })))
    expect(err.message + JSON.stringify(err.details) + err.stack + inspect(err)).not.toContain(secret)
  })
})

describe('error class injection', () => {
  class HostStorageError extends Error {
    code = 'STORAGE_ERROR'
    statusCode = 500
    constructor(message: string, public details?: Record<string, unknown>) {
      super(message)
    }
  }
  class HostFileNotFoundError extends Error {
    code = 'FILE_NOT_FOUND'
    statusCode = 404
    constructor(public key: string) {
      super(`File not found: ${key}`)
    }
  }
  class HostConfigurationError extends Error {
    code = 'CONFIGURATION_ERROR'
    statusCode = 500
    constructor(message: string, public details?: Record<string, unknown>) {
      super(message)
    }
  }
  const errorClasses = {
    StorageError: HostStorageError,
    FileNotFoundError: HostFileNotFoundError,
    ConfigurationError: HostConfigurationError,
  }

  it('raises the host classes for not-found, storage and configuration errors', async () => {
    const b = new S3StorageBackend({
      bucket: s3.bucket,
      region: s3.region,
      endpoint: s3.endpoint,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      errorClasses,
    })
    const key = uniqueKey('host')
    const notFound = await b.download(key).catch((e) => e)
    expect(notFound).toBeInstanceOf(HostFileNotFoundError)
    expect(notFound.key).toBe(key)
    expect(notFound).not.toBeInstanceOf(FileNotFoundError)

    const invalid = await b.upload({ key: '', body: Buffer.from('x'), contentType: 'text/plain' }).catch((e) => e)
    expect(invalid).toBeInstanceOf(HostStorageError)
    expect(invalid.details).toMatchObject({ reason: 'invalid_argument', operation: 'upload', field: 'key' })

    const config = catchSync(() => new S3StorageBackend({ bucket: '', errorClasses }))
    expect(config).toBeInstanceOf(HostConfigurationError)
    expect(config.details.issues[0].field).toBe('bucket')

    const fromEnv = catchSync(() => createS3Backend({}, { errorClasses }))
    expect(fromEnv).toBeInstanceOf(HostConfigurationError)
  })

  it('rejects an errorClasses entry that is not a class', () => {
    const err = catchSync(() => new S3StorageBackend({ bucket: 'files', errorClasses: { StorageError: 'nope' as any } }))
    expect(err).toBeInstanceOf(ConfigurationError)
    expect(err.details.issues[0].field).toBe('errorClasses.StorageError')
  })
})

describe('the package error classes', () => {
  it('match the host shapes', () => {
    const s = new StorageError('boom', { reason: 'unavailable' })
    expect([s.code, s.statusCode, s.details]).toEqual(['STORAGE_ERROR', 503, { reason: 'unavailable' }])
    expect(new StorageError('bad', { reason: 'invalid_argument' }).statusCode).toBe(400)
    expect(new StorageError('other').statusCode).toBe(500)
    const f = new FileNotFoundError('a/b.pdf')
    expect([f.code, f.statusCode, f.details.key, f.message]).toEqual(['FILE_NOT_FOUND', 404, 'a/b.pdf', 'File not found: a/b.pdf'])
    const c = new ConfigurationError('Invalid storage configuration: x: y', { issues: [{ field: 'x', message: 'y' }] })
    expect([c.code, c.statusCode]).toEqual(['CONFIGURATION_ERROR', 500])
    expect(s).toBeInstanceOf(Error)
  })
})

describe('generateStorageKey', () => {
  const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}'

  it('files keys by group, UTC year and month, with the extension', () => {
    // 23:30 UTC on Jan 31 is already February in UTC+1 and still January in UTC-5: UTC decides.
    const date = new Date(Date.UTC(2026, 0, 31, 23, 30))
    const key = generateStorageKey({ groupId: 'group-1', filename: 'Essay Final.PDF', date })
    expect(key).toMatch(new RegExp(`^group-1/2026/01/${UUID}\\.pdf$`))
    expect(generateStorageKey({ groupId: 'g', date })).toMatch(new RegExp(`^g/2026/01/${UUID}$`))
    expect(generateStorageKey({ groupId: 'g', filename: 'archive.tar.gz', date })).toMatch(/\.gz$/)
    expect(generateStorageKey({ groupId: 'g', filename: '.env', date })).not.toContain('.')
  })

  it('defaults to now and never repeats', () => {
    const now = new Date()
    const keys = new Set(Array.from({ length: 1000 }, () => generateStorageKey({ groupId: 'g' })))
    expect(keys.size).toBe(1000)
    const [k] = keys
    const month = String(now.getUTCMonth() + 1).padStart(2, '0')
    expect(k.startsWith(`g/${now.getUTCFullYear()}/${month}/`)).toBe(true)
  })

  it('rejects bad input with a typed invalid_argument error', () => {
    for (const input of [{ groupId: '' }, { groupId: 'a/b' }, { groupId: 5 }, { groupId: 'g', date: new Date('nope') }, null]) {
      const err = catchSync(() => generateStorageKey(input as any))
      expect(err).toBeInstanceOf(StorageError)
      expect(err.details.reason).toBe('invalid_argument')
      expect(err.statusCode).toBe(400)
    }
  })
})
