'use strict'
// Loads a native addon through napi-rs's generated loader: the backend's
// (../binding.cjs) or the test server's (../testing/binding.cjs), both
// rewritten by every build, so they are not edited by hand. A loader tries
// ./<name>.<platform>.node, then the package
// @raptscallions/<name>-<platform>; when neither loads it throws a
// generic "Cannot find native binding" pointing at an npm bug. Replace that
// with an error that tells the truth: this machine's platform, arch and libc,
// which platforms this install has a binary for, and how to build one from a
// clone of the sources (the npm tarball has none). The loader's own error
// chain stays as `cause`.

const { readdirSync, readFileSync } = require('node:fs')
const path = require('node:path')

const PACKAGE = '@raptscallions/storage-s3-native'

/** The same glibc/musl test as the generated loader, so both name the same binary. */
function isMusl() {
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
    if (!report || report.header?.glibcVersionRuntime) return false
    return Array.isArray(report.sharedObjects) && report.sharedObjects.some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'))
  }
}

/** napi-rs's name for this machine's binary: linux-x64-gnu, darwin-arm64, win32-x64-msvc, … */
function platformArchAbi() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const libc = isMusl() ? 'musl' : 'gnu'
    return arch === 'arm' ? `linux-arm-${libc}eabihf` : `linux-${arch}-${libc}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  if (platform === 'android' && arch === 'arm') return 'android-arm-eabi'
  return `${platform}-${arch}`
}

/**
 * Platforms this install has a `name` binary for: the `.node` files next to
 * its loader in `dir` and installed platform packages.
 */
function installedPlatforms(name, dir) {
  const found = new Set()
  const list = (dir) => {
    try {
      return readdirSync(dir)
    } catch {
      return []
    }
  }
  for (const f of list(dir)) {
    if (f.startsWith(`${name}.`) && f.endsWith('.node')) found.add(f.slice(name.length + 1, -'.node'.length))
  }
  const scope = path.join(__dirname, '..', '..')
  for (const f of list(scope)) {
    if (f.startsWith(`${name}-`) && list(path.join(scope, f)).some((n) => n.endsWith('.node'))) found.add(f.slice(name.length + 1))
  }
  return [...found].sort()
}

function causeMessages(err) {
  const out = []
  for (let e = err?.cause; e && out.length < 50; e = e.cause) out.push(String(e.message ?? e))
  return out
}

/** Loads `<dir>/binding.cjs`, the loader of the `name` binary. */
function loadBinding(name, dir) {
  try {
    return require(path.join(dir, 'binding.cjs'))
  } catch (err) {
    if (!/^(Cannot find native binding|Failed to load native binding)/.test(String(err?.message))) throw err
    const target = platformArchAbi()
    const installed = installedPlatforms(name, dir)
    const have = installed.length ? `this install has a binary for ${installed.join(', ')} only` : 'this install has no binary for any platform'
    const build = `build one from a clone of the sources (Node and Rust: \`npm install && npm run build\` makes ${path.relative(path.join(__dirname, '..'), path.join(dir, `${name}.${target}.node`))}) and put it next to ${path.relative(path.join(__dirname, '..'), path.join(dir, 'binding.cjs'))} in this package`
    // A binary that is there but does not load (e.g. it needs a newer glibc
    // than this system's) is a different problem from a missing one: say why.
    const failures = causeMessages(err).filter((m) => !/^(Cannot find module|Unsupported (architecture|OS))/.test(m))
    const message = failures.length
      ? `${PACKAGE} could not load its native binary for ${target}: ${failures.join('; ')}. Reinstall the package, or ${build}`
      : `${PACKAGE} has no native binary for ${target}: ${have}. To run on ${target}, ${build}`
    const error = new Error(message)
    error.code = 'ERR_STORAGE_S3_NATIVE_BINARY'
    error.cause = err
    throw error
  }
}

module.exports = {
  /** The storage backend's addon (../binding.cjs). */
  backend: () => loadBinding('storage-s3-native', path.join(__dirname, '..')),
  /** The test server's addon (../testing/binding.cjs): only `/testing` loads it. */
  testing: () => loadBinding('storage-s3-testing', path.join(__dirname, '..', 'testing')),
}
