// The packed tarball is the product: install it into fresh ESM and CommonJS
// projects, as the host would, and run a round trip from each.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testServer } from './helpers/s3'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const s3 = testServer()
let work: string
let tarball: string

const ROUND_TRIP = (imports: string) => `
${imports}
const b = createS3Backend(${JSON.stringify({
  STORAGE_S3_ENDPOINT: s3.endpoint,
  STORAGE_S3_REGION: s3.region,
  STORAGE_S3_BUCKET: s3.bucket,
  STORAGE_S3_ACCESS_KEY_ID: s3.accessKeyId,
  STORAGE_S3_SECRET_ACCESS_KEY: s3.secretAccessKey,
})})
const key = generateStorageKey({ groupId: 'pkg', filename: 'x.txt' })
;(async () => {
  await b.upload({ key, body: Buffer.from('packed'), contentType: 'text/plain' })
  const chunks = []
  for await (const c of await b.download(key)) chunks.push(c)
  const missing = await b.download(key + '.nope').catch((e) => e)
  await b.delete(key)
  console.log(JSON.stringify({
    body: Buffer.concat(chunks).toString(),
    exists: await b.exists(key),
    notFound: missing instanceof FileNotFoundError,
  }))
})()
`

function npm(args: string[], cwd: string) {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false' } })
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 's3-native-pack-'))
  npm(['pack', '--pack-destination', work], root)
  tarball = path.join(work, readdirSync(work).find((f) => f.endsWith('.tgz'))!)
}, 180_000)

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('the packed tarball', () => {
  it('holds the addon, JS layer, typings and README, and no sources', () => {
    const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean)
    const files = listing.map((f) => f.replace(/^package\//, ''))
    for (const f of ['index.d.ts', 'binding.cjs', 'lib/index.cjs', 'lib/index.mjs', 'lib/errors.cjs', 'bin/check.mjs', 'README.md', 'package.json']) {
      expect(files).toContain(f)
    }
    expect(files.some((f) => /^storage-s3-native\.[\w-]+\.node$/.test(f))).toBe(true)
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('core/') || f.startsWith('target/') || f.startsWith('__test__/'))).toEqual([])
  })

  for (const flavour of ['esm', 'cjs'] as const) {
    it(`installs into a fresh ${flavour.toUpperCase()} project and round-trips`, () => {
      const dir = path.join(work, flavour)
      execFileSync('mkdir', ['-p', dir])
      writeFileSync(
        path.join(dir, 'package.json'),
        JSON.stringify({ name: `host-${flavour}`, private: true, ...(flavour === 'esm' ? { type: 'module' } : {}) }),
      )
      npm(['install', '--offline', '--no-package-lock', tarball], dir)
      const imports =
        flavour === 'esm'
          ? `import { createS3Backend, generateStorageKey, FileNotFoundError } from '@raptscallions/storage-s3-native'`
          : `const { createS3Backend, generateStorageKey, FileNotFoundError } = require('@raptscallions/storage-s3-native')`
      const file = path.join(dir, flavour === 'esm' ? 'main.js' : 'main.cjs')
      writeFileSync(file, ROUND_TRIP(imports))
      const out = execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8' })
      expect(JSON.parse(out)).toEqual({ body: 'packed', exists: false, notFound: true })
    }, 120_000)
  }
})
