'use strict'
// Loads the native addon through napi-rs's generated loader (../binding.cjs,
// rewritten by every build, so it is not edited by hand). That loader tries
// ./storage-s3-native.<platform>.node, then the package
// @raptscallions/storage-s3-native-<platform>; when neither loads it throws a
// generic "Cannot find native binding" pointing at an npm bug. Replace that
// with an error naming this machine's platform, arch and libc, the package
// that would fit, and how to build from source. The loader's own error chain
// stays as `cause`.

const { readFileSync } = require('node:fs')

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

/** The same names for the Rust targets in package.json's napi.targets (those have packages). */
function publishedPlatforms() {
  const cpus = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm', riscv64gc: 'riscv64', powerpc64le: 'ppc64', loongarch64: 'loong64' }
  try {
    const { napi } = require('../package.json')
    return (napi?.targets ?? []).map((triple) => {
      const parts = triple.split('-')
      const cpu = cpus[parts[0]] ?? parts[0]
      const abi = parts[parts.length - 1]
      if (triple.includes('-apple-darwin')) return `darwin-${cpu}`
      if (triple.includes('-windows-')) return `win32-${cpu}-${abi}`
      if (triple.includes('-android')) return cpu === 'arm' ? 'android-arm-eabi' : `android-${cpu}`
      if (triple.includes('-linux-')) return `linux-${cpu}-${abi}`
      return `${parts[2]}-${cpu}`
    })
  } catch {
    return []
  }
}

function causeMessages(err) {
  const out = []
  for (let e = err?.cause; e && out.length < 50; e = e.cause) out.push(String(e.message ?? e))
  return out
}

function loadBinding() {
  try {
    return require('../binding.cjs')
  } catch (err) {
    if (!/^(Cannot find native binding|Failed to load native binding)/.test(String(err?.message))) throw err
    const target = platformArchAbi()
    const wanted = `${PACKAGE}-${target}`
    const published = publishedPlatforms()
    const build = 'build from source with `npm run build`'
    // A binary that is there but does not load (e.g. it needs a newer glibc
    // than this system's) is a different problem from a missing one: say why.
    const failures = causeMessages(err).filter((m) => !/^(Cannot find module|Unsupported (architecture|OS))/.test(m))
    let message
    if (failures.length) {
      message = `${PACKAGE} could not load its native binary for ${target}: ${failures.join('; ')}. Reinstall ${wanted} or ${build}`
    } else if (published.includes(target)) {
      message = `${PACKAGE} has no native binary for ${target}; install ${wanted} (an optional dependency: npm leaves it out with --omit=optional, or when the lockfile was made on another platform) or ${build}`
    } else {
      message = `${PACKAGE} has no native binary for ${target}; install ${wanted} (not published: prebuilt binaries exist for ${published.join(', ')}) or ${build}`
    }
    const error = new Error(message)
    error.code = 'ERR_STORAGE_S3_NATIVE_BINARY'
    error.cause = err
    throw error
  }
}

module.exports = loadBinding()
