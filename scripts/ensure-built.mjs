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

const addons = readdirSync(root).filter((f) => /^storage-s3-native\..+\.node$/.test(f))
const built = Math.max(0, ...addons.map((f) => statSync(path.join(root, f)).mtimeMs))
const sources = Math.max(...['src', 'core/src', 'core/Cargo.toml', 'Cargo.toml', 'Cargo.lock', 'build.rs'].map(newestMtime))

if (addons.length && built >= sources) process.exit(0)
console.error(addons.length ? 'native addon is older than its sources: rebuilding' : 'native addon not built yet: building (a few minutes on 2 cores)')
execSync('npm run build:fast', { cwd: root, stdio: 'inherit' })
