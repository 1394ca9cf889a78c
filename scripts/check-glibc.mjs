#!/usr/bin/env node
// Which glibc a Linux build of the addon needs: reads the ELF file's symbol
// version requirements (.gnu.version_r, "verneed"), prints the highest
// GLIBC_x.y and exits 1 if it is above the limit. Pure Node, no binutils.
//
//   node scripts/check-glibc.mjs [--max 2.28] [--json] [file.node ...]
//
// Without files it checks ./storage-s3-native.linux-*-gnu.node. The default
// limit, 2.28, is Debian 10 / RHEL 8; `npm run build` links against glibc
// 2.17 (napi-rs's cross toolchain), so its output needs 2.17 or less.
import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const SHT_DYNSYM = 11
const SHT_GNU_VERNEED = 0x6ffffffe
const SHT_GNU_VERSYM = 0x6fffffff

/** Parses an ELF shared object's version needs. Returns { needs: [{ file, version, index }], symbolsByIndex }. */
export function readVersionNeeds(buf) {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error('not an ELF file')
  const is64 = buf[4] === 2
  const le = buf[5] === 1
  const u16 = (o) => (le ? buf.readUInt16LE(o) : buf.readUInt16BE(o))
  const u32 = (o) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o))
  const word = (o) => (is64 ? Number(le ? buf.readBigUInt64LE(o) : buf.readBigUInt64BE(o)) : u32(o))
  const cstr = (o) => buf.toString('latin1', o, buf.indexOf(0, o))

  const shoff = word(is64 ? 0x28 : 0x20)
  const shentsize = u16(is64 ? 0x3a : 0x2e)
  const shnum = u16(is64 ? 0x3c : 0x30)
  if (!shoff || !shnum) throw new Error('ELF file has no section headers')
  const sections = []
  for (let i = 0; i < shnum; i++) {
    const h = shoff + i * shentsize
    sections.push(
      is64
        ? { type: u32(h + 4), offset: word(h + 0x18), size: word(h + 0x20), link: u32(h + 0x28), info: u32(h + 0x2c), entsize: word(h + 0x38) }
        : { type: u32(h + 4), offset: u32(h + 0x10), size: u32(h + 0x14), link: u32(h + 0x18), info: u32(h + 0x1c), entsize: u32(h + 0x24) },
    )
  }

  const needs = []
  const verneed = sections.find((s) => s.type === SHT_GNU_VERNEED)
  if (verneed) {
    const strtab = sections[verneed.link].offset
    // Elf_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32
    // Elf_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32
    let vn = verneed.offset
    for (let i = 0; i < verneed.info; i++) {
      const file = cstr(strtab + u32(vn + 4))
      let aux = vn + u32(vn + 8)
      for (let j = 0; j < u16(vn + 2); j++) {
        needs.push({ file, version: cstr(strtab + u32(aux + 8)), index: u16(aux + 6) })
        const next = u32(aux + 12)
        if (!next) break
        aux += next
      }
      const next = u32(vn + 12)
      if (!next) break
      vn += next
    }
  }

  // Which imported symbols use which version index (for the report).
  const symbolsByIndex = new Map()
  const versym = sections.find((s) => s.type === SHT_GNU_VERSYM)
  const dynsym = sections.find((s) => s.type === SHT_DYNSYM)
  if (versym && dynsym) {
    const strtab = sections[dynsym.link].offset
    const count = dynsym.size / dynsym.entsize
    for (let i = 1; i < count; i++) {
      const index = u16(versym.offset + i * 2) & 0x7fff
      const sym = dynsym.offset + i * dynsym.entsize
      const shndx = u16(sym + (is64 ? 6 : 14))
      if (index < 2 || shndx !== 0) continue // local/global base version, or defined here
      const name = cstr(strtab + u32(sym))
      if (!symbolsByIndex.has(index)) symbolsByIndex.set(index, [])
      symbolsByIndex.get(index).push(name)
    }
  }
  return { needs, symbolsByIndex }
}

const parseVersion = (v) => v.split('.').map(Number)
export function compareVersions(a, b) {
  const x = parseVersion(a)
  const y = parseVersion(b)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d) return d
  }
  return 0
}

/** The glibc needs of one file: { versions (sorted), max, symbols: { 'GLIBC_x.y': [names] } }. */
export function glibcNeeds(file) {
  const { needs, symbolsByIndex } = readVersionNeeds(readFileSync(file))
  const glibc = needs.filter((n) => /^GLIBC_\d+(\.\d+)*$/.test(n.version))
  const versions = [...new Set(glibc.map((n) => n.version.slice(6)))].sort(compareVersions)
  const symbols = {}
  for (const n of glibc) symbols[n.version] = [...(symbols[n.version] ?? []), ...(symbolsByIndex.get(n.index) ?? [])].sort()
  return { versions, max: versions.at(-1) ?? null, symbols }
}

function main(argv) {
  let max = '2.28'
  let json = false
  const files = []
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--max') max = argv[++i]
    else if (argv[i] === '--json') json = true
    else if (argv[i] === '-h' || argv[i] === '--help') {
      console.log('usage: node scripts/check-glibc.mjs [--max 2.28] [--json] [file.node ...]')
      return 0
    } else files.push(argv[i])
  }
  if (!/^\d+\.\d+$/.test(max ?? '')) throw new Error(`--max wants a version such as 2.28, got ${max}`)
  if (!files.length) {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
    files.push(...readdirSync(root).filter((f) => /^storage-s3-native\.linux-.+-gnu\.node$/.test(f)).map((f) => path.join(root, f)))
    if (!files.length) throw new Error('no storage-s3-native.linux-*-gnu.node here: build first (npm run build)')
  }
  let failed = false
  const report = []
  for (const file of files) {
    const { versions, max: needed, symbols } = glibcNeeds(file)
    const ok = needed === null || compareVersions(needed, max) <= 0
    failed ||= !ok
    report.push({ file, glibc: needed, limit: max, ok, versions })
    if (json) continue
    console.log(`${path.basename(file)}: highest glibc version needed: ${needed ? `GLIBC_${needed}` : 'none'} (limit ${max}): ${ok ? 'OK' : 'TOO NEW'}`)
    if (!ok) {
      for (const v of versions.filter((x) => compareVersions(x, max) > 0)) {
        console.log(`  GLIBC_${v}: ${(symbols[`GLIBC_${v}`] ?? []).join(', ') || '(no symbol listed)'}`)
      }
      console.log('  build with `npm run build` or `npm run build:fast` (glibc 2.17 toolchain) on a Linux x64 host')
    }
  }
  if (json) console.log(JSON.stringify(report.length === 1 ? report[0] : report))
  return failed ? 1 : 0
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = main(process.argv.slice(2))
  } catch (err) {
    console.error(`check-glibc: ${err.message}`)
    process.exitCode = 2
  }
}
