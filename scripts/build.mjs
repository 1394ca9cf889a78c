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
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const require = createRequire(import.meta.url)

const isGlibc = () => Boolean(process.report?.getReport?.()?.header?.glibcVersionRuntime)
const baseline =
  process.platform === 'linux' && process.arch === 'x64' && process.env.STORAGE_S3_NATIVE_HOST_TOOLCHAIN !== '1' && isGlibc()

const cli = path.join(path.dirname(require.resolve('@napi-rs/cli/package.json')), 'dist', 'cli.js')

// The backend addon, then the test server's addon (testing/, loaded only by
// `@raptscallions/storage-s3-native/testing`).
const addons = [
  ['build', '--platform', '--js', 'binding.cjs', '--dts', 'binding.d.ts'],
  ['build', '--manifest-path', 'testing/Cargo.toml', '-c', 'testing/napi.json', '-o', 'testing', '-p', 'storage-s3-testing', '--platform', '--js', 'binding.cjs', '--dts', 'binding.d.ts'],
]
for (const base of addons) {
  const args = [...base, ...process.argv.slice(2)]
  if (baseline) args.push('--use-napi-cross', '--target', 'x86_64-unknown-linux-gnu')
  console.error(`napi ${args.join(' ')}${baseline ? '  (glibc 2.17 baseline toolchain)' : ''}`)
  const result = spawnSync(process.execPath, [cli, ...args], { cwd: root, stdio: 'inherit' })
  if (result.error) throw result.error
  if (result.status !== 0) process.exit(result.status ?? 1)
}
