// The packed tarball is the product: install it into fresh ESM and CommonJS
// projects, as the host would, and run a round trip from each; type-check it
// from strict TypeScript projects; check the per-platform package layout, the
// error when no binary fits, and the glibc the Linux binary needs.
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseTriple } from '@napi-rs/cli'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { testServer } from './helpers/s3'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const rootPkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))
const PKG: string = rootPkg.name
const s3 = testServer()
let work: string
let tarball: string
/** The tarball unpacked: the package as it lands in node_modules. */
let unpacked: string
/** The addon in the tarball, e.g. storage-s3-native.linux-x64-gnu.node. */
let addon: string

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
  mkdirSync(path.join(work, 'unpacked'))
  execFileSync('tar', ['-xzf', tarball, '-C', path.join(work, 'unpacked')])
  unpacked = path.join(work, 'unpacked', 'package')
  addon = readdirSync(unpacked).find((f) => /^storage-s3-native\.[\w-]+\.node$/.test(f)) ?? ''
}, 180_000)

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true })
})

describe('the packed tarball', () => {
  it('holds the addon, JS layer, typings, README and LICENSE, and nothing else', () => {
    const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').filter(Boolean)
    const files = listing.map((f) => f.replace(/^package\//, ''))
    const expected = ['index.d.ts', 'binding.cjs', 'binding.d.ts', 'lib/index.cjs', 'lib/index.mjs', 'lib/errors.cjs', 'lib/load-binding.cjs', 'bin/check.mjs', 'README.md', 'LICENSE', 'package.json']
    // The test server's entry (`/testing`), its loader and its CLI.
    expected.push('testing/index.cjs', 'testing/index.mjs', 'testing/index.d.ts', 'testing/binding.cjs', 'testing/binding.d.ts', 'testing/serve.mjs')
    for (const f of expected) expect(files).toContain(f)
    expect(addon).toMatch(/^storage-s3-native\.[\w-]+\.node$/)
    expect(files.filter((f) => /^testing\/storage-s3-testing\.[\w-]+\.node$/.test(f))).toHaveLength(1)
    const allowed = [
      /^(index\.d\.ts|binding\.cjs|binding\.d\.ts|README\.md|LICENSE|package\.json)$/,
      /^lib\/[\w-]+\.(cjs|mjs)$/,
      /^bin\/[\w-]+\.mjs$/,
      /^testing\/(index\.(cjs|mjs|d\.ts)|binding\.(cjs|d\.ts)|serve\.mjs)$/,
      /^testing\/storage-s3-testing\.[\w-]+\.node$/,
      /^storage-s3-native\.[\w-]+\.node$/,
    ]
    expect(files.filter((f) => !allowed.some((re) => re.test(f)))).toEqual([])
    expect(readFileSync(path.join(unpacked, 'LICENSE'), 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} raptscallions contributors\n/)
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

    it(`${flavour.toUpperCase()}: the installed /testing entry starts a server for a round trip, and the backend's import alone loads no test server`, () => {
      const dir = path.join(work, `${flavour}-local`)
      mkdirSync(dir, { recursive: true })
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `local-${flavour}`, private: true, ...(flavour === 'esm' ? { type: 'module' } : {}) }))
      npm(['install', '--offline', '--no-package-lock', tarball], dir)
      const imports =
        flavour === 'esm'
          ? `import { S3StorageBackend } from '@raptscallions/storage-s3-native'\nconst loaded = () => process.report.getReport().sharedObjects.filter((f) => f.includes('storage-s3-testing')).length\nconst before = loaded()\nconst { startLocalS3 } = await import('@raptscallions/storage-s3-native/testing')`
          : `const { S3StorageBackend } = require('@raptscallions/storage-s3-native')\nconst loaded = () => process.report.getReport().sharedObjects.filter((f) => f.includes('storage-s3-testing')).length\nconst before = loaded()\nconst { startLocalS3 } = require('@raptscallions/storage-s3-native/testing')`
      const body = `
const run = async () => {
  const s3 = await startLocalS3()
  const b = new S3StorageBackend(s3)
  await b.upload({ key: 'k.txt', body: Buffer.from('local'), contentType: 'text/plain' })
  const chunks = []
  for await (const c of await b.download('k.txt')) chunks.push(c)
  const after = loaded()
  await s3.stop()
  console.log(JSON.stringify({ before, after, body: Buffer.concat(chunks).toString(), endpoint: s3.endpoint.replace(/\\d+$/, 'PORT') }))
}
run()
`
      const file = path.join(dir, flavour === 'esm' ? 'local.js' : 'local.cjs')
      writeFileSync(file, `${imports}\n${body}`)
      const out = execFileSync(process.execPath, [file], { cwd: dir, encoding: 'utf8' })
      expect(JSON.parse(out)).toEqual({ before: 0, after: 1, body: 'local', endpoint: 'http://127.0.0.1:PORT' })
    }, 60_000)
  }
})

// ---- per-platform packages ------------------------------------------------
// napi-rs layout, one set per addon: npm/<platform>/ holds the backend's
// package for one binary, testing/npm/<platform>/ the test server's
// (`napi create-npm-dirs`, with -c testing/napi.json --npm-dir testing/npm);
// `napi pre-publish` checks the binaries `napi artifacts` copied in,
// publishes them and only then adds them to optionalDependencies. Listing
// unpublished packages there breaks `npm ci` (the lockfile cannot hold them).
// .github/workflows/release.yml builds, tests and publishes them.

const testingConfig = JSON.parse(readFileSync(path.join(root, 'testing', 'napi.json'), 'utf8'))
const ADDONS = [
  { what: 'backend', npmDir: 'npm', loader: 'binding.cjs', packageName: PKG as string, binaryName: rootPkg.napi.binaryName as string, targets: rootPkg.napi.targets as string[] },
  { what: 'test server', npmDir: 'testing/npm', loader: 'testing/binding.cjs', packageName: testingConfig.packageName as string, binaryName: testingConfig.binaryName as string, targets: testingConfig.targets as string[] },
]

describe('per-platform packages (npm/, testing/npm/)', () => {
  const platformsOf = (targets: string[]) => targets.map((t) => parseTriple(t))

  it('ships the test server for exactly the backend\'s platforms, under its own package names', () => {
    expect([...ADDONS[1].targets].sort()).toEqual([...ADDONS[0].targets].sort())
    expect(ADDONS.map((a) => a.binaryName)).toEqual(['storage-s3-native', 'storage-s3-testing'])
    expect(ADDONS[1].packageName).toBe('@raptscallions/storage-s3-testing')
  })

  for (const addon of ADDONS) {
    it(`${addon.npmDir}/: one package per napi target for the ${addon.what}, matching the root package and its loader`, () => {
      const platforms = platformsOf(addon.targets)
      const binding = readFileSync(path.join(root, addon.loader), 'utf8')
      expect(readdirSync(path.join(root, addon.npmDir)).sort()).toEqual(platforms.map((p) => p.platformArchABI).sort())
      for (const p of platforms) {
        const dir = path.join(root, addon.npmDir, p.platformArchABI)
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'))
        const node = `${addon.binaryName}.${p.platformArchABI}.node`
        expect(pkg).toMatchObject({
          name: `${addon.packageName}-${p.platformArchABI}`,
          version: rootPkg.version,
          main: node,
          files: [node],
          os: [p.platform],
          cpu: [p.arch],
          license: rootPkg.license,
          engines: rootPkg.engines,
        })
        expect(pkg.libc).toEqual(p.platform === 'linux' ? [p.abi === 'musl' ? 'musl' : 'glibc'] : undefined)
        // Only the binary: no dependencies, no install scripts.
        expect(Object.keys(pkg).filter((k) => /dependencies$|^scripts$|^bin$/i.test(k))).toEqual([])
        expect(readFileSync(path.join(dir, 'README.md'), 'utf8')).toContain(p.triple)
        // The generated loader falls back to exactly this package and file name.
        expect(binding).toContain(`require('${pkg.name}')`)
        expect(binding).toContain(`require('./${node}')`)
      }
    })
  }

  it('lists them in optionalDependencies only as napi pre-publish writes them (both sets, all, same version) or not at all', () => {
    const optional = rootPkg.optionalDependencies
    if (optional !== undefined) {
      const all = ADDONS.flatMap((a) => platformsOf(a.targets).map((p) => [`${a.packageName}-${p.platformArchABI}`, rootPkg.version]))
      expect(optional).toEqual(Object.fromEntries(all))
    }
    // The platform packages are separate tarballs, never part of the root's.
    for (const f of rootPkg.files as string[]) expect(f).not.toMatch(/^(testing\/)?npm\b/)
    // `npm publish` runs it: it needs every npm/<platform>/*.node and
    // testing/npm/<platform>/*.node (napi artifacts), publishes those, then adds them.
    const prepublish = (rootPkg.scripts.prepublishOnly as string).split('&&').map((c) => c.trim())
    expect(prepublish).toHaveLength(2)
    expect(prepublish[0]).toMatch(/^napi pre-?publish\b/)
    expect(prepublish[0]).not.toMatch(/(^|\s)(-c|--config-path)\b/)
    expect(prepublish[1]).toMatch(/^napi pre-?publish\b/)
    expect(prepublish[1]).toMatch(/\s-c testing\/napi\.json\b/)
    expect(prepublish[1]).toMatch(/\s--npm-dir testing\/npm\b/)
    // `npm version` keeps npm/*/package.json and testing/npm/*/package.json at the root's version.
    expect(rootPkg.scripts.version).toBe('napi version && napi version -c testing/napi.json --npm-dir testing/npm')
  })

  it('the release workflow builds every napi target and uploads both binaries', () => {
    const workflow = readFileSync(path.join(root, '.github', 'workflows', 'release.yml'), 'utf8')
    const built = [...workflow.matchAll(/^\s+target: (\S+)$/gm)].map((m) => m[1])
    for (const t of ADDONS[0].targets) expect(built).toContain(t)
    expect(workflow).toMatch(/node scripts\/build\.mjs --release --target /)
    expect(workflow).toContain('storage-s3-native.${{ matrix.settings.abi }}.node')
    expect(workflow).toContain('testing/storage-s3-testing.${{ matrix.settings.abi }}.node')
    expect(workflow).toContain('napi artifacts -c testing/napi.json --npm-dir testing/npm')
  })
})

// ---- the error when no binary fits ---------------------------------------

/** Requires the package entry in `dir` under a faked platform; returns the error it threw. */
function loadError(dir: string, fake: { platform?: string; arch?: string; musl?: boolean } = {}) {
  const preload = path.join(work, `fake-${fake.platform ?? 'host'}-${fake.arch ?? 'host'}-${fake.musl ? 'musl' : 'any'}.cjs`)
  writeFileSync(
    preload,
    [
      fake.platform && `Object.defineProperty(process, 'platform', { value: ${JSON.stringify(fake.platform)} })`,
      fake.arch && `Object.defineProperty(process, 'arch', { value: ${JSON.stringify(fake.arch)} })`,
      // The loader's libc test reads /usr/bin/ldd first.
      fake.musl !== undefined &&
        `const fs = require('fs'); const read = fs.readFileSync
fs.readFileSync = function (p, ...rest) { return p === '/usr/bin/ldd' ? ${JSON.stringify(fake.musl ? 'musl libc' : 'GNU C Library')} : read.call(this, p, ...rest) }`,
    ]
      .filter(Boolean)
      .join('\n'),
  )
  const script = `try { require('./lib/index.cjs'); console.log('null') } catch (e) { console.log(JSON.stringify({ message: e.message, code: e.code })) }`
  const out = execFileSync(process.execPath, ['-r', preload, '-e', script], { cwd: dir, encoding: 'utf8' })
  return JSON.parse(out.trim().split('\n').at(-1)!) as { message: string; code: string } | null
}

describe('when no native binary fits', () => {
  it('names the platform, arch and libc, the platforms this install has a binary for, and how to build one (linux-arm64-musl)', () => {
    const host = addon.replace(/^storage-s3-native\.|\.node$/g, '')
    const err = loadError(unpacked, { platform: 'linux', arch: 'arm64', musl: true })
    expect(err?.code).toBe('ERR_STORAGE_S3_NATIVE_BINARY')
    expect(err?.message).toContain(`${PKG} has no native binary for linux-arm64-musl: this install has a binary for ${host} only.`)
    expect(err?.message).toContain('build one from a clone of the sources')
    expect(err?.message).toContain('storage-s3-native.linux-arm64-musl.node')
    // No advice to install a platform package: none is published.
    expect(err?.message).not.toContain(`install ${PKG}-`)
  })

  it('says the same for every other platform (linux-arm64-gnu, darwin-arm64, win32-x64-msvc)', () => {
    for (const [opts, target] of [
      [{ platform: 'linux', arch: 'arm64', musl: false }, 'linux-arm64-gnu'],
      [{ platform: 'darwin', arch: 'arm64' }, 'darwin-arm64'],
      [{ platform: 'win32', arch: 'x64' }, 'win32-x64-msvc'],
    ] as const) {
      const message = loadError(unpacked, opts)?.message
      expect(message).toMatch(new RegExp(`^${PKG} has no native binary for ${target}: this install has a binary for `))
      expect(message).toContain(`storage-s3-native.${target}.node`)
    }
  })

  it('says when this install has no binary at all', () => {
    const dir = path.join(work, 'no-addon')
    cpSync(unpacked, dir, { recursive: true, filter: (src) => !src.endsWith('.node') })
    const host = addon.replace(/^storage-s3-native\.|\.node$/g, '')
    expect(loadError(dir)?.message).toContain(`${PKG} has no native binary for ${host}: this install has no binary for any platform.`)
  })

  it('says why when the binary is there but does not load', () => {
    const dir = path.join(work, 'broken-addon')
    cpSync(unpacked, dir, { recursive: true })
    writeFileSync(path.join(dir, addon), 'not a shared object')
    const host = addon.replace(/^storage-s3-native\.|\.node$/g, '')
    expect(loadError(dir)?.message).toMatch(new RegExp(`^${PKG} could not load its native binary for ${host}: .+build one from a clone of the sources`))
  })

  it('loads normally when the binary fits', () => {
    expect(loadError(unpacked)).toBeNull()
  })
})

// ---- glibc baseline -------------------------------------------------------

const linuxGnu = process.platform === 'linux' && Boolean((process.report?.getReport() as any)?.header?.glibcVersionRuntime)

describe.skipIf(!linuxGnu)('glibc baseline of the Linux binary', () => {
  it('needs glibc 2.28 or older (scripts/check-glibc.mjs)', () => {
    const file = path.join(unpacked, addon)
    const run = spawnSync(process.execPath, [path.join(root, 'scripts/check-glibc.mjs'), '--json', file], { encoding: 'utf8' })
    const report = JSON.parse(run.stdout)
    expect(report.glibc, `${addon} needs GLIBC_${report.glibc}; build it with npm run build / build:fast (not build:debug)`).toMatch(/^2\.\d+/)
    expect(report.ok, `${addon} needs GLIBC_${report.glibc} > 2.28; build it with npm run build / build:fast (not build:debug)`).toBe(true)
    expect(run.status).toBe(0)
    const [major, minor] = report.glibc.split('.').map(Number)
    expect(major === 2 && minor <= 28).toBe(true)

    // Cross-check the ELF parser with binutils where it is installed.
    const readelf = spawnSync('readelf', ['-V', '-W', file], { encoding: 'utf8' })
    if (readelf.status === 0) {
      const versions = [...new Set(readelf.stdout.match(/GLIBC_\d+(\.\d+)+/g) ?? [])].map((v) => v.slice(6))
      expect([...versions].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))).toEqual(report.versions)
    }
  })

  it('fails on a binary above the limit', () => {
    const file = path.join(unpacked, addon)
    const run = spawnSync(process.execPath, [path.join(root, 'scripts/check-glibc.mjs'), '--max', '2.2', file], { encoding: 'utf8' })
    expect(run.status).toBe(1)
    expect(run.stdout).toMatch(/TOO NEW/)
  })
})

// ---- types from a consumer's point of view --------------------------------

/** Names index.d.ts exports, read at test time (the export list grows). */
function declaredExports(dts: string) {
  const source = dts.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '')
  const values = new Set<string>()
  const types = new Set<string>()
  for (const m of source.matchAll(/^export\s+(?:declare\s+)?(?:abstract\s+)?(const\s+enum|class|function|const|let|var|enum|interface|type|namespace)\s+([A-Za-z_$][\w$]*)/gm)) {
    ;(['interface', 'type', 'namespace', 'const enum'].includes(m[1].replace(/\s+/g, ' ')) ? types : values).add(m[2])
  }
  for (const m of source.matchAll(/^export\s+(type\s+)?\{([^}]*)\}(?!\s*from)/gm)) {
    for (const part of m[2].split(',').map((s) => s.trim()).filter(Boolean)) {
      const typeOnly = Boolean(m[1]) || part.startsWith('type ')
      const name = part.replace(/^type\s+/, '').split(/\s+as\s+/).at(-1)!
      ;(typeOnly ? types : values).add(name)
    }
  }
  if (/^export\s+\*|^export\s+(type\s+)?\{[^}]*\}\s*from/m.test(source)) throw new Error('index.d.ts re-exports from another file: extend declaredExports()')
  for (const v of values) types.delete(v) // a class merged with an interface is a value
  return { values: [...values].sort(), types: [...types].sort() }
}

describe('types from a consumer project (strict tsc)', () => {
  let dir: string
  let exportsOf: { values: string[]; types: string[] }
  const tsc = path.join(root, 'node_modules/typescript/bin/tsc')

  beforeAll(() => {
    dir = path.join(work, 'types')
    mkdirSync(dir)
    writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'host-types', private: true }))
    npm(['install', '--offline', '--no-package-lock', tarball], dir)
    exportsOf = declaredExports(readFileSync(path.join(dir, 'node_modules', PKG, 'index.d.ts'), 'utf8'))
  }, 120_000)

  it('reads the export list from index.d.ts', () => {
    expect(exportsOf.values).toEqual(
      expect.arrayContaining(['S3StorageBackend', 'createS3Backend', 'generateStorageKey', 'StorageError', 'FileNotFoundError', 'ConfigurationError']),
    )
    expect(exportsOf.types).toEqual(expect.arrayContaining(['IStorageBackend', 'S3BackendOptions', 'UploadParams', 'StorageErrorReason']))
  })

  it('exports every declared value from both entry points at run time', () => {
    const script = `
      const cjs = require('${PKG}')
      import('${PKG}').then((esm) => console.log(JSON.stringify({ cjs: Object.keys(cjs), esm: Object.keys(esm) })))`
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: dir, encoding: 'utf8' }))
    expect(out.cjs).toEqual(expect.arrayContaining(exportsOf.values))
    expect(out.esm).toEqual(expect.arrayContaining(exportsOf.values))
  })

  const body = (imports: string) => `${imports}

export const values = [${exportsOf.values.join(', ')}] as const
export const key: string = generateStorageKey({ groupId: 'g', filename: 'a.pdf' })
export function describeError(e: unknown): string {
  if (e instanceof FileNotFoundError) return e.code
  if (e instanceof StorageError) return e.code
  if (e instanceof ConfigurationError) return e.code
  return 'other'
}
`
  const esmImports = () =>
    `import { ${exportsOf.values.join(', ')} } from '${PKG}'\nimport type { ${exportsOf.types.join(', ')} } from '${PKG}'`

  function typecheck(name: string, compilerOptions: Record<string, unknown>, files: Record<string, string>) {
    const project = path.join(dir, name)
    mkdirSync(project, { recursive: true })
    for (const [file, text] of Object.entries(files)) writeFileSync(path.join(project, file), text)
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          skipLibCheck: false,
          // The host has @types/node; borrow the repo's instead of installing it.
          types: ['node'],
          typeRoots: [path.join(root, 'node_modules/@types')],
          ...compilerOptions,
        },
        files: Object.keys(files),
      }),
    )
    const run = spawnSync(process.execPath, [tsc, '-p', project], { encoding: 'utf8' })
    expect(run.stdout + run.stderr, `tsc -p ${name}`).toBe('')
    expect(run.status).toBe(0)
  }

  it('node16: an ES module (.mts) and a CommonJS module (.cts)', () => {
    typecheck(
      'node16',
      { module: 'node16', moduleResolution: 'node16' },
      {
        'esm.mts': body(esmImports()),
        // ES import syntax in a .cts compiles to require(); `import x = require()` is the other CJS form.
        'cjs.cts': `${body(esmImports())}\nimport pkg = require('${PKG}')\nexport const viaRequire = [${exportsOf.values.map((v) => `pkg.${v}`).join(', ')}] as const\n`,
      },
    )
  }, 120_000)

  it('the /testing entry: typed, and a started server is valid backend options (node16 ESM and CJS, bundler)', () => {
    const use = `
export async function withLocal(): Promise<string> {
  const s3: LocalS3 = await startLocalS3({ bucket: 'files', domain: ['localhost'] })
  const backend: S3StorageBackend = new S3StorageBackend(s3)
  const opts: S3BackendOptions = { ...s3, retry: { maxAttempts: 2 } }
  await backend.exists('k')
  await s3.stop()
  return s3.endpoint + s3.credentials.accessKeyId + s3.dir + String(opts.bucket)
}
`
    const imports = `import { startLocalS3, type LocalS3, type LocalS3Options } from '${PKG}/testing'\nimport { S3StorageBackend, type S3BackendOptions } from '${PKG}'\nexport type O = LocalS3Options\n`
    typecheck('testing-node16', { module: 'node16', moduleResolution: 'node16' }, { 'esm.mts': imports + use, 'cjs.cts': imports + use })
    typecheck('testing-bundler', { module: 'esnext', moduleResolution: 'bundler' }, { 'main.ts': imports + use })
    // An option the server does not have is a type error.
    expect(() => typecheck('testing-negative', { module: 'node16', moduleResolution: 'node16' }, { 'bad.mts': `${imports}startLocalS3({ buckett: 'x' })\n` })).toThrow()
  }, 120_000)

  it('bundler resolution (module esnext)', () => {
    typecheck('bundler', { module: 'esnext', moduleResolution: 'bundler' }, { 'main.ts': body(esmImports()) })
  }, 120_000)

  it('fails for a name the package does not export (the check can fail)', () => {
    expect(() =>
      typecheck('negative', { module: 'node16', moduleResolution: 'node16' }, { 'bad.mts': `import { NoSuchExport } from '${PKG}'\nexport const x = NoSuchExport\n` }),
    ).toThrow()
  }, 120_000)
})
