#!/usr/bin/env node
// `npm run build` (--release) and `npm run build:fast` (--profile fastrelease):
// `napi build --platform --js binding.cjs --dts binding.d.ts` plus the given
// arguments, for the backend addon and then for the test server's addon in
// testing/.
//
// On a Linux x64 glibc host the addon is built with napi-rs's cross toolchain
// (`--use-napi-cross`: gcc with a glibc 2.17 sysroot, from the npm package
// @napi-rs/cross-toolchain-x64-target-x86_64, fetched once into
// ~/.napi-rs/cross-toolchain/), so the linux-x64-gnu binary loads on old
// distributions; `node scripts/check-glibc.mjs` checks that (limit 2.28).
// Elsewhere (macOS, Windows, musl, arm64), and with
// STORAGE_S3_NATIVE_HOST_TOOLCHAIN=1, it is a plain `napi build` with the
// host's toolchain.
//
// `--target <triple>` builds for another target (the release workflow,
// .github/workflows/release.yml): on a Linux x64 glibc host the Linux glibc
// targets (x86_64-, aarch64-unknown-linux-gnu) get the same cross toolchain,
// unless the arguments already pick a cross mechanism (-x, --use-cross,
// --use-napi-cross); any other target is passed to napi as given (e.g.
// `--target x86_64-unknown-linux-musl -x` for cargo-zigbuild).
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)

const isGlibc = () => Boolean(process.report?.getReport?.()?.header?.glibcVersionRuntime)
const argv = process.argv.slice(2)
const targetIndex = argv.findIndex((a) => a === '--target' || a === '-t')
const target = targetIndex >= 0 ? argv[targetIndex + 1] : argv.find((a) => a.startsWith('--target='))?.slice('--target='.length)
const crossChosen = argv.some((a) => ['-x', '--cross-compile', '--use-cross', '--use-napi-cross'].includes(a))
const baseline =
  process.platform === 'linux' &&
  process.arch === 'x64' &&
  process.env.STORAGE_S3_NATIVE_HOST_TOOLCHAIN !== '1' &&
  !crossChosen &&
  ['x86_64-unknown-linux-gnu', 'aarch64-unknown-linux-gnu'].includes(target ?? 'x86_64-unknown-linux-gnu') &&
  isGlibc()

const cli = path.join(path.dirname(require.resolve('@napi-rs/cli/package.json')), 'dist', 'cli.js')

// The backend addon, then the test server's addon (testing/, loaded only by
// `@raptscallions/storage-s3-native/testing`).
const addons = [
  ['build', '--platform', '--js', 'binding.cjs', '--dts', 'binding.d.ts'],
  ['build', '--manifest-path', 'testing/Cargo.toml', '-c', 'testing/napi.json', '-o', 'testing', '-p', 'storage-s3-testing', '--platform', '--js', 'binding.cjs', '--dts', 'binding.d.ts'],
]
for (const base of addons) {
  const args = [...base, ...argv]
  if (baseline) args.push('--use-napi-cross', ...(target ? [] : ['--target', 'x86_64-unknown-linux-gnu']))
  console.error(`napi ${args.join(' ')}${baseline ? '  (glibc 2.17 baseline toolchain)' : ''}`)
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: root, stdio: 'inherit' })
  if (result.error) throw result.error
  if (result.status !== 0) process.exit(result.status ?? 1)
}
