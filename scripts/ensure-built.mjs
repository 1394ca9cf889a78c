#!/usr/bin/env node
// Builds the native addon when it is missing or older than its sources, so
// `npm run check` and `npm test` work straight from a fresh clone. Uses the
// quick optimised profile (`npm run build:fast`); `npm run build` makes the
// fully optimised one for packing and benchmarks.
import { execSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

function newestMtime(entry) {
  const full = path.join(root, entry)
  const st = statSync(full, { throwIfNoEntry: false })
  if (!st) return 0
  if (!st.isDirectory()) return st.mtimeMs
  return Math.max(0, ...readdirSync(full).map((name) => newestMtime(path.join(entry, name))))
}

/** Modification time of the oldest of `dir`'s addons (0 when it has none). */
function builtMtime(dir, name) {
  const addons = readdirSync(path.join(root, dir)).filter((f) => f.startsWith(`${name}.`) && f.endsWith('.node'))
  return addons.length ? Math.min(...addons.map((f) => statSync(path.join(root, dir, f)).mtimeMs)) : 0
}

// The backend's addon and the test server's (testing/), each against its own sources.
const backend = builtMtime('.', 'storage-s3-native')
const testing = builtMtime('testing', 'storage-s3-testing')
const shared = ['Cargo.toml', 'Cargo.lock']
const stale =
  backend < Math.max(...[...shared, 'src', 'core/src', 'core/Cargo.toml', 'build.rs'].map(newestMtime)) ||
  testing < Math.max(...[...shared, 'testing/src', 'testing/Cargo.toml', 'testing/build.rs'].map(newestMtime))

if (!stale) process.exit(0)
console.error(backend && testing ? 'native addons are older than their sources: rebuilding' : 'native addons not built yet: building (a few minutes on 2 cores)')
execSync('npm run build:fast', { cwd: root, stdio: 'inherit' })
