#!/usr/bin/env node
// Smoke test of one platform's release binaries, run by release.yml's test
// jobs from the repository root after the build job's artifact has been
// downloaded into it (storage-s3-native.<abi>.node and
// testing/storage-s3-testing.<abi>.node). Needs Node and npm only: no cargo,
// no `npm ci`, no S3 server (the check starts the built-in one).
//
// 1. `node bin/check.mjs` in the checkout: both addons next to their loaders.
// 2. The layout users get from the registry: the root package packed without
//    binaries, plus the two platform packages (npm/<abi>/ and
//    testing/npm/<abi>/ with their binary, as `napi artifacts` fills them),
//    installed into a fresh project by npm (which enforces their os, cpu and
//    libc fields), then the installed `storage-s3-check`.
import { spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..')
const win = process.platform === 'win32'
// The check uses the built-in server only when no STORAGE_S3_* is set.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STORAGE_S3_')))

function run(cmd, args, cwd) {
  console.error(`\n$ ${[cmd, ...args].join(' ')}   (in ${cwd})`)
  // npm is npm.cmd on Windows, which only runs through a shell: pass one
  // command line, quoting the arguments that need it.
  const viaShell = win && cmd === 'npm'
  const result = viaShell
    ? spawnSync([cmd, ...args.map((a) => (/[\s"&|<>^]/.test(a) ? `"${a}"` : a))].join(' '), { cwd, env, stdio: 'inherit', shell: true })
    : spawnSync(cmd, args, { cwd, env, stdio: 'inherit' })
  if (result.error) throw result.error
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${result.status ?? result.signal}`)
}

const backend = readdirSync(root).filter((f) => /^storage-s3-native\.[\w-]+\.node$/.test(f))
if (backend.length !== 1) throw new Error(`expected one storage-s3-native.<platform>.node in ${root}, found: ${backend.join(', ') || 'none'}`)
const abi = backend[0].slice('storage-s3-native.'.length, -'.node'.length)
const binaries = [
  { file: path.join(root, backend[0]), pkgDir: path.join(root, 'npm', abi) },
  { file: path.join(root, 'testing', `storage-s3-testing.${abi}.node`), pkgDir: path.join(root, 'testing', 'npm', abi) },
]
for (const b of binaries) {
  if (!existsSync(b.file)) throw new Error(`missing ${path.relative(root, b.file)}`)
  if (!existsSync(path.join(b.pkgDir, 'package.json'))) throw new Error(`no platform package ${path.relative(root, b.pkgDir)} for ${abi}`)
}
console.error(`platform ${abi} (node ${process.version}, ${process.platform}-${process.arch})`)

// 1. The checkout.
run(process.execPath, ['bin/check.mjs'], root)

// 2. The published layout.
const work = mkdtempSync(path.join(tmpdir(), 'release-smoke-'))
try {
  const tarballs = path.join(work, 'tarballs')
  mkdirSync(tarballs)
  for (const [i, b] of binaries.entries()) {
    const dir = path.join(work, `platform-${i}`)
    cpSync(b.pkgDir, dir, { recursive: true })
    copyFileSync(b.file, path.join(dir, path.basename(b.file)))
    run('npm', ['pack', '--pack-destination', tarballs], dir)
  }
  // The root package's files list takes *.node and testing/*.node; the
  // published one has none (the publish job removes them), so rename them
  // out of the way (in place: the checkout and tmpdir may be different file
  // systems).
  for (const b of binaries) renameSync(b.file, `${b.file}.aside`)
  try {
    run('npm', ['pack', '--pack-destination', tarballs], root)
  } finally {
    for (const b of binaries) renameSync(`${b.file}.aside`, b.file)
  }

  const host = path.join(work, 'host')
  mkdirSync(host)
  writeFileSync(path.join(host, 'package.json'), JSON.stringify({ name: 'release-smoke-host', private: true }))
  const files = readdirSync(tarballs).map((f) => path.join(tarballs, f))
  if (files.length !== 3) throw new Error(`expected 3 tarballs, got ${files.join(', ')}`)
  run('npm', ['install', '--offline', '--no-package-lock', '--no-audit', '--no-fund', ...files], host)

  const scope = path.join(host, 'node_modules', '@raptscallions')
  const installed = readdirSync(scope).sort()
  const expected = ['storage-s3-native', `storage-s3-native-${abi}`, `storage-s3-testing-${abi}`]
  if (installed.join() !== expected.join()) throw new Error(`installed ${installed.join(', ')}; expected ${expected.join(', ')}`)
  const pkg = path.join(scope, 'storage-s3-native')
  const stray = [...readdirSync(pkg), ...readdirSync(path.join(pkg, 'testing'))].filter((f) => f.endsWith('.node'))
  if (stray.length) throw new Error(`the packed root package holds binaries: ${stray.join(', ')}`)
  run(process.execPath, [path.join(pkg, 'bin', 'check.mjs')], host)
} finally {
  rmSync(work, { recursive: true, force: true })
}
console.error(`\nrelease smoke test passed on ${abi}`)
