#!/usr/bin/env node
// Benchmark harness: @raptscallions/storage-s3-native against the AWS SDK v3,
// OpenDAL, minio-js and curl, all against one local s3s-fs.
//
//   node bench/run.mjs                 full run (5 rounds): bench/results/<date>.json + docs/benchmarks.md
//   node bench/run.mjs --smoke         tiny sizes, one round, < 60 s; exit 1 if any of OUR workloads fails
//                                      (a SHA-256 mismatch of our bytes included)
//   node bench/run.mjs --rounds 5 --only download,upload-buffer [--peers ours,curl]
//   node bench/run.mjs --report bench/results/<date>.json   regenerate docs/benchmarks.md from a saved run
//
// Each peer runs each workload in its own child process (bench/worker.mjs),
// pinned to CPU 0; the server is pinned to CPU 1 (bench/lib/server.mjs).
// Peers alternate within each round, and the order rotates: round k (from 0)
// starts at peer k mod n (A B C D E, B C D E A, C D E A B, ...).
// Our backend's multipart part size and parts in flight are read from its
// describe() before the first round and given to every other client's multipart path.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { gitHead } from './lib/git.mjs';
import { EMPTY_NODE, FULL_ROUNDS, MiB, PEERS, SIZES, workloads } from './lib/workloads.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const started = Date.now();

const { values: args } = parseArgs({
  options: {
    smoke: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    only: { type: 'string' },
    peers: { type: 'string' },
    'no-write': { type: 'boolean', default: false },
    report: { type: 'string' },
    save: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
let S = args.smoke ? SIZES.smoke : SIZES.full;
let ALL = workloads(S);
if (args.help) {
  console.log(`usage: node bench/run.mjs [--smoke] [--rounds N] [--only ${Object.keys(ALL).join(',')}] [--peers ${PEERS.join(',')}] [--no-write] [--save bench/results/<name>]\n       node bench/run.mjs --report bench/results/<date>.json   (regenerate docs/benchmarks.md from a saved run)`);
  process.exit(0);
}
const rounds = Number(args.rounds ?? (args.smoke ? 1 : FULL_ROUNDS));
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
let only = args.only ? args.only.split(',').map((s) => s.trim()) : Object.keys(ALL);
for (const w of only) if (!ALL[w]) throw new Error(`unknown workload "${w}"; one of: ${Object.keys(ALL).join(', ')}`);
let peerFilter = args.peers ? args.peers.split(',').map((s) => s.trim()) : PEERS;
for (const p of peerFilter) if (!PEERS.includes(p)) throw new Error(`unknown peer "${p}"; one of: ${PEERS.join(', ')}`);
/** The clients of a workload in this run (the import workload's empty node always runs: it is the baseline). */
const peersOf = (wl) => (wl.peers ?? PEERS).filter((p) => p === EMPTY_NODE || peerFilter.includes(p));
/** Round k (from 0) starts at peer k mod n. */
const rotate = (peers, k) => peers.map((_, i) => peers[(k + i) % peers.length]);
const isFull = !args.smoke && !args.only && !args.peers && !args['no-write'];
const childTimeoutMs = args.smoke ? 30_000 : 300_000;

const log = (...a) => console.log(...a);
// The SDK's 'node >= 22 after January 2027' notice is not about this benchmark.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// ---- dependencies ---------------------------------------------------------

const DEPS = Object.keys(JSON.parse(readFileSync(path.join(benchDir, 'package.json'), 'utf8')).dependencies);
function ensureDeps() {
  const missing = DEPS.filter((d) => !existsSync(path.join(benchDir, 'node_modules', d, 'package.json')));
  if (!missing.length) return;
  // `npm install` (it follows the lock file): `npm ci` rejects opendal 0.49.2, whose
  // optional platform packages are listed without versions.
  const cmd = 'install';
  log(`bench dependencies missing (${missing.join(', ')}): npm ${cmd} --prefix bench`);
  const r = spawnSync('npm', [cmd, '--prefix', benchDir, '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`npm ${cmd} --prefix bench failed (exit ${r.status})`);
}

function ensureAddon() {
  const addons = (() => {
    try {
      return execFileSync('sh', ['-c', `ls ${JSON.stringify(root)}/storage-s3-native.*.node 2>/dev/null`], { encoding: 'utf8' }).split('\n').filter(Boolean);
    } catch {
      return [];
    }
  })();
  if (addons.length) return addons[0];
  log('native addon not built: npm run build (fully optimised, a few minutes on 2 cores)');
  const r = spawnSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) throw new Error('npm run build failed');
  return ensureAddon();
}

const pkgVersion = (dir) => {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
};

function environment(addon, server) {
  const cmdOut = (cmd, a) => {
    try {
      return execFileSync(cmd, a, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0].trim();
    } catch {
      return undefined;
    }
  };
  const st = statSync(addon);
  return {
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    cpuModel: os.cpus()[0]?.model,
    cpus: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    glibc: cmdOut('ldd', ['--version']),
    curl: cmdOut('curl', ['--version']),
    s3sFs: cmdOut(server.setup.bin, ['--version']),
    packages: {
      '@raptscallions/storage-s3-native': pkgVersion(root),
      ...Object.fromEntries(DEPS.map((d) => [d, pkgVersion(path.join(benchDir, 'node_modules', d))])),
    },
    addon: {
      file: path.basename(addon),
      bytes: st.size,
      mtime: st.mtime.toISOString(),
      sha256: createHash('sha256').update(readFileSync(addon)).digest('hex').slice(0, 16),
    },
    gitHead: gitHead(root),
    ...(process.env.BENCH_BASELINE ? { baselineHead: gitHead(process.env.BENCH_BASELINE) } : {}),
    loadavgAtStart: os.loadavg(),
  };
}

// ---- fixtures --------------------------------------------------------------

/** Writes `template` repeated up to `size` bytes; returns the file's SHA-256 (hex). */
function writeRepeated(file, template, size) {
  const fd = openSync(file, 'w');
  const h = createHash('sha256');
  try {
    for (let off = 0; off < size; off += template.length) {
      const n = Math.min(template.length, size - off);
      writeSync(fd, template, 0, n);
      h.update(template.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

async function makeFixtures(server, need) {
  const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'bench-files-'));
  const template = randomBytes(MiB);
  const files = { dir, template: path.join(dir, 'template.bin'), k1: path.join(dir, '1k.bin'), m1: path.join(dir, '1m.bin') };
  writeFileSync(files.template, template);
  // The SHA-256 of every source, against which the workers check what was stored and what came back.
  files.sha256 = {};
  files.sha256.k1 = writeRepeated(files.k1, template, 1024);
  files.sha256.m1 = writeRepeated(files.m1, template, MiB);
  files.big = path.join(dir, 'big.bin');
  files.sha256.big = writeRepeated(files.big, template, S.big);
  if (need.huge) {
    files.huge = path.join(dir, 'huge.bin');
    files.sha256.huge = writeRepeated(files.huge, template, S.huge);
  }
  // Objects to HEAD and download, stored with curl through presigned PUTs.
  const { S3Client, PutObjectCommand } = await import('@aws-sdk/client-s3');
  const { getSignedUrl } = await import('@aws-sdk/s3-request-presigner');
  const client = new S3Client({
    region: server.region,
    endpoint: server.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  const put = async (key, file) => {
    const url = await getSignedUrl(client, new PutObjectCommand({ Bucket: server.bucket, Key: key }), { expiresIn: 3600 });
    execFileSync('curl', ['-sS', '-f', '-H', 'Expect:', '-T', file, '-o', '/dev/null', url]);
  };
  files.smallKey = 'fixtures/small-1k.bin';
  await put(files.smallKey, files.k1);
  if (need.big) {
    files.bigKey = 'fixtures/download-big.bin';
    await put(files.bigKey, files.big);
  }
  if (need.huge) {
    files.hugeKey = 'fixtures/download-huge.bin';
    await put(files.hugeKey, files.huge);
  }
  client.destroy();
  return files;
}

// ---- children ----------------------------------------------------------------

// BENCH_PERF_DIR=<dir>: every client child runs under `perf record -g` (with V8's
// --perf-basic-prof so JS frames have names); `perf report -i <dir>/<peer>-<workload>-<n>.data`.
// Symbols in our addon need the `profiling` cargo profile (see docs/benchmarks.md).
let perfRuns = 0;
function perfPrefix(cfg) {
  const dir = process.env.BENCH_PERF_DIR;
  if (!dir) return [];
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${cfg.peer}-${cfg.workload}-${++perfRuns}.data`);
  // BENCH_PERF_CALLGRAPH=dwarf unwinds Rust frames too (release builds keep no frame pointers).
  return ['perf', 'record', '-F', '2999', '--call-graph', process.env.BENCH_PERF_CALLGRAPH ?? 'fp', '-q', '-o', file, '--'];
}

function runChild(pin, cfg) {
  const perf = perfPrefix(cfg);
  const node = [process.execPath, ...(perf.length ? ['--perf-basic-prof'] : [])];
  const argv = [...perf, ...(pin ? ['taskset', '-c', '0'] : []), ...node, '--expose-gc', path.join(benchDir, 'worker.mjs'), JSON.stringify(cfg)];
  return new Promise((resolve) => {
    const t = performance.now();
    const child = spawn(argv[0], argv.slice(1), { cwd: benchDir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err = (err + d).slice(-4000)));
    const timer = setTimeout(() => {
      err += `\n(killed after ${childTimeoutMs} ms)`;
      try {
        process.kill(-child.pid, 'SIGKILL'); // its own process group: the worker and any curl it started
      } catch {}
    }, childTimeoutMs);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('@@RESULT '));
      let res;
      try {
        res = line ? JSON.parse(line.slice(9)) : undefined;
      } catch {}
      if (!res) res = { ok: false, error: `worker exited ${code ?? signal} without a result: ${err.trim().split('\n').slice(-3).join(' | ')}` };
      res.processMs = performance.now() - t;
      resolve(res);
    });
  });
}

/**
 * One fresh process that imports a client library and exits (or imports nothing: the empty
 * node), pinned like the workers; its wall time as seen from here, spawn to exit.
 */
function importScript(peer) {
  return peer === EMPTY_NODE ? '' : `import ${JSON.stringify(pathToFileURL(path.join(benchDir, 'peers', `${peer}.mjs`)).href)};`;
}
function runImport(pin, peer) {
  const argv = [...(pin ? ['taskset', '-c', '0'] : []), process.execPath, '--input-type=module', '-e', importScript(peer)];
  const t = performance.now();
  const r = spawnSync(argv[0], argv.slice(1), { cwd: benchDir, encoding: 'utf8', timeout: childTimeoutMs });
  const ms = performance.now() - t;
  if (r.status !== 0) {
    const why = r.error?.message ?? `exit ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`;
    return { ok: false, error: `import failed (${why})`, processMs: ms };
  }
  return { ok: true, metrics: [{ name: 'import', value: ms, count: 1 }], processMs: ms };
}

// ---- statistics and formatting ----------------------------------------------

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (v, digits) => {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (digits !== undefined) return v.toFixed(digits);
  const a = Math.abs(v);
  return a >= 1000 ? Math.round(v).toLocaleString('en-US') : a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : v.toFixed(2);
};
const fmtMiB = (b) => (b === null || b === undefined ? '–' : (b / MiB).toFixed(1));
const ratio = (a, b) => (a && b ? a / b : null);
const fmtRatio = (r) => (r === null || r === undefined ? '–' : `${r.toFixed(2)}×`);

/** The verified phase (worker.mjs `verified`) a metric's bytes belong to. */
const PHASE = { put: 'put', get: 'get', upload: 'upload', download: 'download' };

function summarize(samples, wl, wname) {
  const rows = [];
  for (const metric of wl.metrics) {
    for (const peer of peersOf(wl)) {
      const runs = samples.filter((s) => s.workload === wname && s.peer === peer);
      if (!runs.length) continue;
      const okRuns = runs.filter((s) => s.ok);
      const ms = okRuns.map((s) => s.metrics.find((m) => m.name === metric.name)).filter(Boolean);
      // A phase this client does not have (get-stream: ours only).
      if (okRuns.length && !ms.length) continue;
      const values = ms.map((m) => m.value);
      const row = {
        workload: wname,
        metric: metric.name,
        unit: metric.unit,
        better: metric.better,
        peer,
        n: values.length,
        failed: runs.length - okRuns.length,
        errors: [...new Set(runs.filter((s) => !s.ok).map((s) => s.error))],
      };
      if (values.length) {
        row.median = median(values);
        row.min = Math.min(...values);
        row.max = Math.max(...values);
        const perUnit = (m, ms) => (m.bytes ? ms / 1000 / (m.bytes / 2 ** 30) : (ms * 1000) / m.count);
        const num = (x) => typeof x === 'number' && Number.isFinite(x);
        if (metric.unit !== 'ms') {
          row.cpuUnit = ms[0].bytes ? 's/GiB' : 'µs/op';
          row.clientCpu = median(ms.map((m) => perUnit(m, m.clientCpuMs)));
          row.serverCpu = median(ms.map((m) => perUnit(m, m.serverCpuMs)));
          // curl's work happens in curl's process, not on the worker's main thread.
          if (peer !== 'curl' && ms.every((m) => num(m.mainCpuMs))) row.mainCpu = median(ms.map((m) => perUnit(m, m.mainCpuMs)));
        }
        if (ms.every((m) => num(m.p50Ms))) {
          row.p50Ms = median(ms.map((m) => m.p50Ms));
          row.p99Ms = median(ms.map((m) => m.p99Ms));
        }
        const phase = PHASE[metric.name];
        if (phase) row.verifiedRuns = okRuns.filter((s) => s.verified?.[phase]?.objects > 0).length;
        if (wl.large) {
          const rss = okRuns.map((s) => s.run?.rssGrowth).filter((x) => typeof x === 'number');
          const lag = okRuns.map((s) => s.run?.lagP99Ms).filter((x) => typeof x === 'number');
          row.rssIsCurlPeak = okRuns.some((s) => s.run?.rssIsCurlPeak);
          if (rss.length) (row.rssMedian = median(rss)), (row.rssMax = Math.max(...rss));
          if (lag.length) (row.lagP99Median = median(lag)), (row.lagP99Max = Math.max(...lag));
        }
        const loads = okRuns.map((s) => s.loadavg).filter((x) => typeof x === 'number');
        if (loads.length) row.loadavg = median(loads);
      }
      rows.push(row);
    }
  }
  for (const row of rows) {
    const ref = (p) => rows.find((r) => r.metric === row.metric && r.peer === p)?.median;
    row.vsAws = ratio(row.median, ref('aws'));
    row.vsCurl = ratio(row.median, ref('curl'));
    row.vsOpendal = ratio(row.median, ref('opendal'));
    // Import: the median over the empty node's median (both from this run's interleaved processes).
    if (wl.parent && row.peer !== EMPTY_NODE && row.median !== undefined && ref(EMPTY_NODE) !== undefined) row.overEmptyMs = row.median - ref(EMPTY_NODE);
  }
  return rows;
}

const PEER_LABEL = {
  ours: 'ours (storage-s3-native)',
  baseline: `baseline build (${process.env.BENCH_BASELINE ?? 'BENCH_BASELINE'})`,
  aws: 'AWS SDK v3',
  opendal: 'OpenDAL 0.49.2',
  minio: 'minio-js',
  curl: 'curl (presigned URL)',
  [EMPTY_NODE]: 'empty node (baseline)',
};

const fmtCpu = (v, unit) => (v === undefined ? '–' : `${fmt(v)} ${unit}`);

function tableLines(rows, wl) {
  const timed = wl.metrics[0].unit === 'ms';
  const hasP50 = rows.some((r) => r.p50Ms !== undefined);
  const hasVerify = rows.some((r) => r.verifiedRuns !== undefined) || wl.metrics.some((m) => PHASE[m.name]);
  const head = ['client', 'metric', 'median', 'min–max', '× OpenDAL', '× AWS SDK', '× curl'];
  if (wl.parent) head.push('over empty node (median − median)');
  if (hasP50) head.push('latency p50 / p99 ms (median of rounds)');
  if (wl.large) head.push('RSS growth MiB (median / max)', 'event-loop lag p99 ms (median / max)');
  if (!timed) head.push('client CPU', 'Node main-thread CPU', 'server CPU');
  if (hasVerify) head.push('SHA-256 verified');
  head.push('load avg');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const cells = [PEER_LABEL[r.peer] ?? r.peer, r.metric];
    if (!r.n) {
      cells.push(`**failed** (${r.failed}/${r.failed}): ${r.errors[0]?.replace(/\|/g, '\\|').slice(0, 160) ?? ''}`);
      while (cells.length < head.length) cells.push('');
    } else {
      cells.push(`${fmt(r.median)} ${r.unit}${r.failed ? ` (${r.failed} failed)` : ''}`, `${fmt(r.min)}–${fmt(r.max)}`, fmtRatio(r.vsOpendal), fmtRatio(r.vsAws), fmtRatio(r.vsCurl));
      if (wl.parent) cells.push(r.overEmptyMs === undefined ? '–' : `${fmt(r.overEmptyMs)} ms`);
      if (hasP50) cells.push(r.p50Ms === undefined ? '–' : `${fmt(r.p50Ms, 3)} / ${fmt(r.p99Ms, 3)}`);
      if (wl.large) {
        const rss = r.rssMedian === undefined ? '–' : `${fmtMiB(r.rssMedian)} / ${fmtMiB(r.rssMax)}${r.rssIsCurlPeak ? ' (curl peak RSS)' : ''}`;
        const lag = r.lagP99Median === undefined ? '–' : `${fmt(r.lagP99Median, 1)} / ${fmt(r.lagP99Max, 1)}`;
        cells.push(rss, lag);
      }
      if (!timed) cells.push(fmtCpu(r.clientCpu, r.cpuUnit), fmtCpu(r.mainCpu, r.cpuUnit), fmtCpu(r.serverCpu, r.cpuUnit));
      if (hasVerify) cells.push(r.verifiedRuns === undefined ? '–' : `${r.verifiedRuns}/${r.n} runs`);
      cells.push(fmt(r.loadavg));
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines;
}

// ---- targets -----------------------------------------------------------------

const sizeName = (n) => (n >= 1024 * MiB ? `${n / 1024 / MiB} GiB` : n >= MiB ? `${n / MiB} MiB` : `${n / 1024} KiB`);
const fmtBytes = (n) => (n % MiB === 0 ? `${n / MiB} MiB` : `${n} bytes`);

/**
 * The targets, each met / missed / not measured from this run's summary only.
 * settings: the run's multipart settings (result.settings), or undefined for a run that did not record them.
 */
function evaluateTargets(summary, settings) {
  const get = (w, m, p) => summary.find((r) => r.workload === w && r.metric === m && r.peer === p);
  const out = [];
  const add = (workload, name, status, detail) => out.push({ workload, target: name, status, detail });
  /** Both rows usable? Otherwise add the target as missed (ours failed) or not measured, and return false. */
  const usable = (w, name, a, others, field = 'median') => {
    if (!a) return add(w, name, 'not measured', 'ours was not run'), false;
    if (!a.n) return add(w, name, 'missed', `ours failed: ${a.errors[0] ?? ''}`.trim()), false;
    if (a[field] === undefined) return add(w, name, 'not measured', `not recorded for ours in this run`), false;
    for (const [p, b] of others) {
      if (!b) return add(w, name, 'not measured', `${p} was not run`), false;
      if (!b.n || b[field] === undefined) return add(w, name, 'not measured', `${p} ${!b.n ? 'failed in every round' : 'has no such figure in this run'}`), false;
    }
    return true;
  };
  // ours ≥ factor × other (medians of a higher-is-better metric).
  const atLeast = (w, m, other, factor, name) => {
    const a = get(w, m, 'ours');
    const b = get(w, m, other);
    if (!usable(w, name, a, [[other, b]])) return;
    const r = a.median / b.median;
    add(w, name, r >= factor ? 'met' : 'missed', `ours ${fmt(a.median)} vs ${other} ${fmt(b.median)} ${a.unit}: ${r.toFixed(2)}× (needs ≥ ${factor}×)`);
  };
  // ours ≤ other on a lower-is-better field of the rows (median, p50Ms, clientCpu, mainCpu, overEmptyMs).
  const atMost = (w, m, field, unit, other, name) => {
    const a = get(w, m, 'ours');
    const b = get(w, m, other);
    if (!usable(w, name, a, [[other, b]], field)) return;
    const u = unit ?? a.cpuUnit;
    const r = a[field] / b[field];
    const f = (v) => (field === 'p50Ms' ? fmt(v, 3) : fmt(v));
    add(w, name, a[field] <= b[field] ? 'met' : 'missed', `ours ${f(a[field])} vs ${other} ${f(b[field])} ${u}: ${r.toFixed(2)}× (needs ≤ 1×)`);
  };
  const rssMax = (w, m, limit, name) => {
    const a = get(w, m, 'ours');
    if (!usable(w, name, a, [], 'rssMax')) return;
    add(w, name, a.rssMax <= limit * MiB ? 'met' : 'missed', `worst round ${fmtMiB(a.rssMax)} MiB (median ${fmtMiB(a.rssMedian)}), limit ${limit} MiB: ${(a.rssMax / (limit * MiB)).toFixed(2)}× of the limit`);
  };
  const lagMax = (w, m, limit, name) => {
    const a = get(w, m, 'ours');
    if (!usable(w, name, a, [], 'lagP99Max')) return;
    add(w, name, a.lagP99Max <= limit ? 'met' : 'missed', `worst round ${fmt(a.lagP99Max, 1)} ms (median ${fmt(a.lagP99Median, 1)}), limit ${limit} ms`);
  };
  const big = sizeName(S.big);
  const huge = sizeName(S.huge);

  // Small requests.
  for (const op of ['put', 'head', 'get', 'delete']) atLeast('ops-c32', op, 'opendal', 1, `1 KiB ${op} at concurrency 32: ops/s ≥ 1.0× OpenDAL`);
  for (const op of ['put', 'head', 'get', 'delete']) atMost('ops-c1', op, 'p50Ms', 'ms', 'opendal', `1 KiB ${op} at concurrency 1: p50 latency ≤ OpenDAL`);
  for (const op of ['put', 'head', 'get', 'delete']) {
    atMost('ops-c32', op, 'clientCpu', undefined, 'opendal', `1 KiB ${op} at concurrency 32: client CPU per request ≤ OpenDAL`);
    atMost('ops-c32', op, 'mainCpu', undefined, 'opendal', `1 KiB ${op} at concurrency 32: Node main-thread CPU per request ≤ OpenDAL`);
  }
  atLeast('presign', 'presign', 'opendal', 1.5, 'Presigning: URLs/s ≥ 1.5× OpenDAL');
  // Start-up.
  atMost('cold-start', 'cold', 'median', 'ms', 'opendal', 'Cold start (import + construct + first HEAD) ≤ OpenDAL');
  atMost('import', 'import', 'overEmptyMs', 'ms', 'opendal', 'Import overhead over an empty node ≤ OpenDAL');
  // Large transfers.
  {
    const w = 'download';
    const name = `${big} GET ≥ max(OpenDAL, 0.95× curl)`;
    const a = get(w, 'download', 'ours');
    const o = get(w, 'download', 'opendal');
    const c = get(w, 'download', 'curl');
    if (usable(w, name, a, [['opendal', o], ['curl', c]])) {
      const need = Math.max(o.median, 0.95 * c.median);
      add(w, name, a.median >= need ? 'met' : 'missed', `ours ${fmt(a.median)} MB/s vs OpenDAL ${fmt(o.median)} and 0.95 × curl ${fmt(c.median)} = ${fmt(0.95 * c.median)}: ${(a.median / need).toFixed(2)}× the larger (needs ≥ 1×)`);
    }
  }
  rssMax('download', 'download', 64, `${big} GET RSS growth ≤ 64 MiB`);
  atLeast('upload-buffer', 'upload', 'curl', 0.95, `${big} Buffer PUT ≥ 0.95× curl`);
  rssMax('upload-buffer', 'upload', 16, `${big} Buffer PUT RSS growth ≤ 16 MiB`);
  {
    const w = 'upload-stream';
    const mp = settings?.multipart;
    const name = `${big} unknown-length stream upload ≥ 1.1× the best peer's multipart (lib-storage Upload, OpenDAL writer)${mp ? `, all at ${fmtBytes(mp.partSize)} parts, ${mp.queueSize} in flight` : ''}`;
    const a = get(w, 'upload', 'ours');
    const peers = [['aws', get(w, 'upload', 'aws')], ['opendal', get(w, 'upload', 'opendal')]];
    if (!mp) add(w, name, 'not measured', 'this run did not record the multipart settings, so the peers may not have used ours');
    else if (usable(w, name, a, peers.filter(([, r]) => r?.n))) {
      const ran = peers.filter(([, r]) => r?.n);
      if (!ran.length) add(w, name, 'not measured', 'neither lib-storage Upload nor the OpenDAL writer completed a run');
      else {
        const [best, row] = ran.reduce((x, y) => (y[1].median > x[1].median ? y : x));
        const r = a.median / row.median;
        add(w, name, r >= 1.1 ? 'met' : 'missed', `ours ${fmt(a.median)} MB/s vs the best peer (${PEER_LABEL[best]}) ${fmt(row.median)}: ${r.toFixed(2)}× (needs ≥ 1.1×)`);
      }
    }
  }
  rssMax('upload-stream', 'upload', 64, `${big} unknown-length stream upload RSS growth ≤ 64 MiB`);
  rssMax('stream-up-huge', 'upload', 64, `${huge} stream up RSS growth ≤ 64 MiB`);
  lagMax('stream-up-huge', 'upload', 10, `${huge} stream up event-loop lag p99 ≤ 10 ms`);
  rssMax('stream-down-huge', 'download', 64, `${huge} stream down RSS growth ≤ 64 MiB`);
  lagMax('stream-down-huge', 'download', 10, `${huge} stream down event-loop lag p99 ≤ 10 ms`);
  // A partial run (--only) lists its own workloads' targets; a report lists every target, unmeasured ones included.
  if (args.report) for (const t of out) if (!only.includes(t.workload)) Object.assign(t, { status: 'not measured', detail: `\`${t.workload}\` was not run` });
  return args.report ? out : out.filter((t) => only.includes(t.workload));
}

/** Data-driven remarks for the docs and the console. */
function observations(summary) {
  const notes = [];
  const get = (w, m, p) => summary.find((r) => r.workload === w && r.metric === m && r.peer === p);
  for (const [w, name] of [
    ['upload-stream', 'unknown-length upload'],
    ['stream-up-huge', 'huge unknown-length upload'],
  ]) {
    const a = get(w, 'upload', 'ours');
    const c = get(w, 'upload', 'curl');
    if (a?.serverCpu && c?.serverCpu && a.median && c.median) {
      const others = ['aws', 'opendal', 'minio']
        .map((p) => [p, get(w, 'upload', p)])
        .filter(([, r]) => r?.serverCpu)
        .map(([p, r]) => `${PEER_LABEL[p]} ${fmt(r.serverCpu)} s/GiB`);
      notes.push(
        `${name} (\`${w}\`): s3s-fs used ${fmt(a.serverCpu)} s of CPU per GiB for our multipart upload and ${fmt(c.serverCpu)} s/GiB for curl's single chunked PUT` +
          `${others.length ? ` (the other clients' multipart uploads: ${others.join(', ')})` : ''}. ` +
          `One core of s3s-fs CPU therefore takes our multipart upload at no more than about ${fmt(2 ** 30 / 1e6 / a.serverCpu)} MB/s (1 GiB ÷ its CPU per GiB). ` +
          `S3 itself does not accept a PUT without a length, so a client cannot use curl's chunked single PUT there.`,
      );
    }
  }
  for (const w of ['upload-buffer', 'download', 'obj1m-c8']) {
    for (const m of ['upload', 'download', 'put', 'get']) {
      const a = get(w, m, 'ours');
      const c = get(w, m, 'curl');
      if (a?.serverCpu && c?.serverCpu && a.serverCpu > 1.5 * c.serverCpu) {
        notes.push(`\`${w}\` ${m}: s3s-fs spent ${fmt(a.serverCpu)} s of CPU per GiB serving ours against ${fmt(c.serverCpu)} s/GiB for curl (${(a.serverCpu / c.serverCpu).toFixed(2)}×) for the same bytes.`);
      }
    }
  }
  for (const r of summary) {
    if (r.peer !== 'ours' && r.lagP99Max > 10) notes.push(`${PEER_LABEL[r.peer]} \`${r.workload}\`: event-loop lag p99 up to ${fmt(r.lagP99Max, 1)} ms.`);
    if (r.peer !== 'ours' && r.peer !== 'curl' && r.rssMax > 64 * MiB) notes.push(`${PEER_LABEL[r.peer]} \`${r.workload}\`: RSS grew by up to ${fmtMiB(r.rssMax)} MiB.`);
  }
  return notes;
}

// ---- docs ----------------------------------------------------------------------

function serverSetupText(setup) {
  return [
    `- ${setup.version || 's3s-fs'} on 127.0.0.1, started by \`bench/lib/server.mjs\` through \`scripts/s3-server.mjs\` \`startS3Server()\` with a wrapper script as \`S3S_FS_BIN\`:`,
    '',
    '  ```sh',
    `  RUST_LOG=warn LD_PRELOAD=<tmp>/tcp-nodelay-shim.so exec ${setup.taskset ? 'taskset -c 1 ' : ''}~/.cargo/bin/s3s-fs "$@"`,
    '  ```',
    '',
    `- ${setup.taskset ? 'Pinned to CPU 1 with `taskset -c 1`; every client process is pinned to CPU 0 (`taskset -c 0`), so client and server never compete for a core. A client\'s own threads (Node, libuv pool, a native runtime\'s workers, curl) all share CPU 0.' : '`taskset` was not available (or fewer than 2 CPUs): nothing was pinned.'}`,
    `- Data directory on ${setup.dataOnTmpfs ? '`/dev/shm` (tmpfs)' : 'the temp dir (no /dev/shm)'}, so the disk is not what is measured.`,
    `- TCP_NODELAY: s3s-fs (hyper) never sets it on accepted sockets, so with Nagle's algorithm a response written in two pieces waits for the client's delayed-ACK timer on every small GET. \`bench/tcp-nodelay-shim.c\` wraps \`accept\`/\`accept4\` (via \`dlsym(RTLD_NEXT, …)\`) and sets \`TCP_NODELAY\` on each accepted socket; \`bench/run.mjs\` compiles it at run time with \`gcc -O2 -shared -fPIC … -ldl\` into a temp dir and preloads it into s3s-fs only. ${setup.nodelayShim ? 'It was active in this run.' : '**It could not be built in this run.**'}`,
    '- `RUST_LOG=warn` keeps s3s-fs from logging every request.',
  ].join('\n');
}

const STATUS = { met: '✅ met', missed: '❌ missed', 'not measured': '– not measured' };
const code = (x) => `\`${x}\``;

/** What a result file lacks that this generator reports (older runs): one phrase each. */
function missingFromResult(result) {
  const gaps = [];
  const samples = result.samples ?? [];
  const has = (f) => samples.some(f);
  if (!result.settings) gaps.push('the multipart settings (part size, parts in flight) the clients used: they were not read from our backend and given to the other clients');
  if (!result.peerOrder) gaps.push('the order of the clients in each round (not rotated)');
  if (!has((s) => s.verified)) gaps.push('SHA-256 checks of the bytes (sizes only were checked)');
  if (!has((s) => s.metrics?.some((m) => m.mainCpuMs !== undefined))) gaps.push('Node main-thread CPU');
  if (!has((s) => s.metrics?.some((m) => m.p50Ms !== undefined))) gaps.push('per-operation latency at concurrency 1');
  if (!has((s) => s.workload === 'import')) gaps.push('import overhead over an empty node');
  return gaps;
}

function multipartText(st) {
  if (!st?.multipart) return undefined;
  const mp = st.multipart;
  return `${fmtBytes(mp.partSize)} parts, ${mp.queueSize} in flight`;
}

function methodLines(result) {
  const st = result.settings;
  const sizes = result.sizes;
  const samples = result.samples ?? [];
  const verifiedRun = samples.some((s) => s.verified);
  const hasP50 = samples.some((s) => s.metrics?.some((m) => m.p50Ms !== undefined));
  const hasMain = samples.some((s) => s.metrics?.some((m) => m.mainCpuMs !== undefined));
  const hasImport = samples.some((s) => s.workload === 'import');
  const mp = st?.multipart;
  const readChunk = st?.readChunk;
  const L = [];
  L.push('- Every (workload, client, round) runs in a fresh `node --expose-gc bench/worker.mjs` child process, so RSS growth, CPU time and cold start belong to one client. Before a measured section the worker does one unmeasured HEAD (connection set up) and two `gc()` calls.');
  L.push(
    result.peerOrder
      ? '- Order: in each round the clients run one after another, and the order rotates: round k (counting from 0) starts at client k mod n of the workload\'s list, so no client always runs first or last. The order of every round is recorded in the result file (`peerOrder`) and listed under Setup.'
      : '- Order: this result file does not record the order of the clients in each round.',
  );
  L.push(`- Figures are medians over the ${result.rounds} round(s) (min–max across rounds alongside). Throughput = bytes / wall time of the measured section (MB = 10⁶ bytes). Ops/s = operations / wall time, all operations of a phase through a pool of N concurrent async loops (curl: one \`curl --parallel --parallel-max N -K urls.cfg\` per phase, sequential transfers for N = 1). Throughput and latency targets compare medians; memory and event-loop targets use the worst round.`);
  if (hasP50) L.push('- Latency p50 / p99 (concurrency 1 only): each operation of the phase timed on its own with `performance.now()` around the awaited call, inside the measured section; p50 and p99 of that round, then the median over rounds. curl: the `time_total` of each transfer (`-w`) in its one sequential process, which leaves out curl\'s process start.');
  L.push(`- RSS growth = peak RSS during the section (\`process.memoryUsage.rss()\` every 5 ms, and \`process.resourceUsage().maxRSS\` when it rose) minus RSS just before it; the ${sizeName(sizes.big)} Buffer of a Buffer upload exists before the baseline. For curl the column shows the whole curl process's peak RSS (\`/usr/bin/time -f %M\`).`);
  L.push('- Event-loop lag = p99 of `perf_hooks.monitorEventLoopDelay({ resolution: 1 })` over the section.');
  L.push(`- CPU, per GiB moved or per operation: client = \`process.cpuUsage()\` delta (all threads of the worker: Node, libuv, a native runtime's workers) plus reaped children (curl) from \`/proc/self/stat\` cutime+cstime; ${hasMain ? 'Node main-thread = the first field of `/proc/thread-self/schedstat` (ns on CPU) read on the main thread just before and just after the section (curl: –, its work is in its own process); ' : ''}server = s3s-fs utime+stime delta from \`/proc/<pid>/stat\`.`);
  L.push('- Cold start: from the first line of the worker to the end of the first HEAD (dynamic import of the client library, construction, HEAD of an existing object). Page cache is warm (the same files were loaded by earlier rounds). curl: process spawn + HEAD.');
  if (hasImport) L.push(`- Import overhead: \`taskset -c 0 node --input-type=module -e "import '<bench/peers/<client>.mjs>'"\` (the peer file imports the client library and defines functions) against \`taskset -c 0 node --input-type=module -e ""\`, wall time from spawn to exit as seen by \`bench/run.mjs\`; ${sizes.importReps ?? '?'} processes per client per round, the empty node interleaved with the clients in the same rotating order. Overhead = median of the client's processes − median of the empty node's.`);
  L.push(`- Sources: Buffers are filled from 1 MiB of random bytes; streams of unknown length are \`Readable\`s yielding fresh 64 KiB chunks (like \`fs.createReadStream\`) with backpressure; curl reads files on /dev/shm holding the same bytes (\`-T file\`, or \`cat file | curl -T -\` for chunked).`);
  L.push(
    verifiedRun
      ? '- Bytes are verified by SHA-256 for every client, after the clock stops: uploads and PUTs — every stored object, read from s3s-fs\'s data directory, against the SHA-256 of the source (the Buffer sent; for a stream, a second stream from the same generator; for curl, the file it sent); small and 1 MiB GETs — every body the client returned (kept in memory; curl: written to one file per GET on /dev/shm) against the source\'s; large downloads — every client writes each chunk to a file on /dev/shm inside the clock (`fs.writeSync` in the `for await` loop; curl `-o file`), hashed after it. Deleted objects are checked to be gone from the data directory. A mismatch fails that sample (the "SHA-256 verified" column counts the passing rounds).'
      : '- Bytes: this run checked sizes only (uploaded sizes on the server\'s disk, download byte counts); it predates the SHA-256 checks.',
  );
  const down = readChunk ? fmtBytes(readChunk) : '?';
  L.push(
    `- Multipart: ${mp ? `${fmtBytes(mp.partSize)} parts, ${mp.queueSize} in flight, read at the start of the run from our backend's \`describe()\` (\`multipart.partSize\`, \`multipart.queueSize\`; ${st.from ?? ''}) and given to every client's multipart path` : 'not recorded in this result file, so the clients\' part sizes and parts in flight in this run are not known here'}.`,
  );
  L.push(
    `- How each client is used: ours: \`upload\` / \`download\` / \`exists\` / \`delete\` / \`getSignedUrl\` with its defaults${mp ? ` (one PutObject for Buffers up to ${fmtBytes(mp.threshold)}, multipart above it and for streams)` : ''}; a 1 KiB \`get\` is \`downloadBuffer\` (the whole object in one Buffer, as OpenDAL's \`read\` and the AWS SDK's \`transformToByteArray\`), and \`get-stream\` the host's path, \`download()\`'s Readable read to its end. ` +
      `AWS SDK v3: \`S3Client({ forcePathStyle: true })\` with SDK defaults (including its default CRC32 request checksums), \`PutObject\`/\`GetObject\` (+ \`transformToByteArray\` for small GETs, \`for await\` over \`Body\` for large)/\`HeadObject\`/\`DeleteObject\`, \`@aws-sdk/lib-storage\` \`Upload\`${mp ? ` with \`{ partSize: ${mp.partSize}, queueSize: ${mp.queueSize} }\`` : ''} for unknown-length streams, \`@aws-sdk/s3-request-presigner\`. ` +
      `OpenDAL: \`Operator("s3")\`, \`write\`/\`read\`/\`stat\`/\`delete\`/\`presignRead\`; unknown-length upload via \`writer(key, ${mp ? `{ chunk: ${mp.partSize}n, concurrent: ${mp.queueSize} }` : '{ chunk, concurrent }'})\`.\`createWriteStream()\`; download via \`reader(key)\`.\`createReadStream({ highWaterMark: ${down} })\`. ` +
      `minio-js: \`putObject\`/\`getObject\`/\`statObject\`/\`removeObject\`/\`presignedGetObject\`, path-style${mp ? `, \`Client({ partSize: ${mp.partSize} })\` (it sends one part at a time: minio-js has no setting for parts in flight; a Buffer larger than one part also takes its multipart path)` : ''}. ` +
      `curl: URLs presigned with the AWS presigner before the clock starts, \`-H "Expect:"\`, HTTP/1.1.`,
  );
  L.push('- Load average: the 1-minute load average when each child started (median).');
  return L;
}

function docsMarkdown(result, summary, targets) {
  const e = result.environment;
  const L = [];
  const source = result.file ?? `bench/results/${result.date}.json`;
  L.push('# Benchmarks', '');
  L.push(
    `Generated by \`bench/run.mjs\` from \`${source}\` (\`${result.command}\`, ${result.date}, ${result.durationS.toFixed(0)} s). Every figure and sentence about results on this page is computed from that file's samples; nothing is written by hand. ` +
      `Run the benchmark with \`npm run bench\` (\`node bench/run.mjs\`, ${FULL_ROUNDS} rounds); regenerate this page from a saved run with \`node bench/run.mjs --report <file>\`. \`node bench/run.mjs --smoke\` is the < 60 s CI check (exit 1 if any of our workloads fails, a SHA-256 mismatch of our bytes included).`,
    '',
  );

  L.push('## Summary', '');
  const count = (st) => targets.filter((t) => t.status === st);
  L.push(`${targets.length} targets: ${count('met').length} met, ${count('missed').length} missed, ${count('not measured').length} not measured (median of ${result.rounds} round(s)).`, '');
  if (result.rounds < FULL_ROUNDS) L.push(`This run has ${result.rounds} round(s); the targets are defined on medians of at least ${FULL_ROUNDS} rounds (the default of a full run), so read its statuses as indicative.`, '');
  if (count('missed').length) {
    L.push('Missed:', '');
    for (const t of count('missed')) L.push(`- ${t.target}: ${t.detail}`);
    L.push('');
  }
  if (count('not measured').length) {
    L.push('Not measured:', '');
    for (const t of count('not measured')) L.push(`- ${t.target}: ${t.detail}`);
    L.push('');
  }
  const oursFailures = summary.filter((r) => r.peer === 'ours' && r.failed);
  if (oursFailures.length) L.push(`Failed runs of ours: ${oursFailures.map((r) => `${code(r.workload)} ${r.metric} ${r.failed}×`).join(', ')}.`, '');
  const gaps = missingFromResult(result);
  if (gaps.length) {
    L.push('This result file was written by an earlier version of the harness and does not record:', '');
    for (const g of gaps) L.push(`- ${g};`);
    L.push('', 'targets that need them are marked "not measured".', '');
  }

  L.push('## Targets', '');
  L.push('Throughput and latency targets compare medians over rounds; memory and event-loop targets use the worst round. Each row is computed from this run only.', '');
  L.push('| target | status | measured |', '|---|---|---|');
  for (const t of targets) L.push(`| ${t.target} | ${STATUS[t.status]} | ${t.detail.replace(/\|/g, '\\|')} |`);
  L.push('');

  L.push('## Setup', '');
  L.push('| | |', '|---|---|');
  L.push(`| machine | ${e.cpus} × ${e.cpuModel}, ${e.memoryGiB} GiB, ${e.platform} |`);
  L.push(`| Node | ${e.node} |`);
  L.push(`| glibc | ${e.glibc ?? '?'} |`);
  L.push(`| curl | ${e.curl ?? '?'} |`);
  L.push(`| server | ${e.s3sFs ?? 's3s-fs'} |`);
  for (const [p, v] of Object.entries(e.packages)) L.push(`| ${p} | ${v ?? '?'} |`);
  L.push(`| our addon | \`${e.addon.file}\` as found (${(e.addon.bytes / MiB).toFixed(1)} MiB, built ${e.addon.mtime}, sha256 ${e.addon.sha256}…), commit ${e.gitHead} |`);
  const mpText = multipartText(result.settings);
  L.push(`| multipart (every client) | ${mpText ? `${mpText}: from our backend's \`describe()\`; ours by default, lib-storage \`Upload\` \`partSize\`/\`queueSize\`, OpenDAL \`writer\` \`chunk\`/\`concurrent\`, minio-js \`partSize\` (one part at a time)` : 'not recorded in this result file'} |`);
  if (result.settings?.baselineMultipart) L.push(`| multipart (baseline build) | ${multipartText({ multipart: result.settings.baselineMultipart })} (its own defaults) |`);
  L.push(`| load average | ${e.loadavgAtStart.map((x) => x.toFixed(2)).join(' / ')} at start, ${result.loadavgAtEnd.map((x) => x.toFixed(2)).join(' / ')} at end (1/5/15 min; other work was running on this machine) |`);
  if (result.peerOrder) {
    // One line per distinct list of clients (workloads with the same clients share their orders).
    const seen = new Map();
    for (const [w, orders] of Object.entries(result.peerOrder)) {
      const k = JSON.stringify(orders);
      if (!seen.has(k)) seen.set(k, { ws: [], orders });
      seen.get(k).ws.push(w);
    }
    const parts = [...seen.values()].map(({ ws, orders }) => `${ws.map(code).join(', ')}: ${orders.map((o, i) => `round ${i + 1}: ${o.join(' → ')}`).join('; ')}`);
    L.push(`| rounds | ${result.rounds}; the order rotates each round (round k from 0 starts at client k mod n). ${parts.join('. ')} |`);
  } else {
    L.push(`| rounds | ${result.rounds} (clients interleaved within each round: ${result.peers.join(' → ')}; order per round not recorded) |`);
  }
  L.push('');
  L.push('### Server', '', serverSetupText(result.serverSetup), '');
  L.push('### Method', '', ...methodLines(result), '');
  if (result.reduced) L.push(`**Reduced run:** ${result.reduced}`, '');
  L.push('## Results', '');
  for (const [wname, wl] of Object.entries(result.workloads)) {
    const rows = summary.filter((r) => r.workload === wname);
    if (!rows.length) continue;
    L.push(`### ${wl.title}`, '', `\`${wname}\` — ${wl.metrics[0].better === 'lower' ? 'lower is better' : 'higher is better'}.`, '');
    L.push(...tableLines(rows, wl), '');
    const fails = rows.filter((r) => r.failed);
    for (const r of fails) L.push(`- ${PEER_LABEL[r.peer] ?? r.peer} ${r.metric}: ${r.failed} failed run(s): \`${(r.errors[0] ?? '').replace(/`/g, "'")}\``);
    if (fails.length) L.push('');
  }
  L.push('## Notes', '');
  for (const n of result.notes) L.push(`- ${n}`);
  L.push('');
  L.push('## Profiling', '');
  L.push(
    'Every client child can run under `perf record` (`BENCH_PERF_DIR`; symbols in our addon need the `profiling` cargo profile):',
    '',
    '```sh',
    'cargo build --profile profiling -p storage-s3-native && cp target/profiling/libstorage_s3_native.so storage-s3-native.linux-x64-gnu.node',
    'BENCH_PERF_DIR=/tmp/prof node bench/run.mjs --rounds 1 --only ops-c32 --peers ours,opendal --no-write',
    'perf report -i /tmp/prof/ours-ops-c32-1.data --no-children --sort comm,dso -g none',
    'BENCH_PERF_DIR=/tmp/prof2 BENCH_PERF_CALLGRAPH=dwarf node bench/run.mjs --rounds 1 --only ops-c32 --peers ours --no-write',
    'perf report -i /tmp/prof2/ours-ops-c32-1.data --children --sort sym -g none',
    'npm run build   # put the release addon back',
    '```',
    '',
  );
  return L.join('\n');
}

/** Notes every report carries, from the run's data and setup. */
function standardNotes(summary, result) {
  const notes = [];
  if (summary.some((r) => r.peer === 'minio' && r.failed)) {
    const ps = result.settings?.multipart?.partSize;
    notes.push(
      `minio-js fails every upload that takes its multipart path (Buffers larger than its part size${ps ? `, ${fmtBytes(ps)} in this run,` : ''} and streams of unknown length): it first calls ListMultipartUploads to resume an earlier upload, which s3s-fs does not implement. Users of minio-js against s3s-fs would see the same error; the failures are reported, not hidden.`,
    );
  }
  notes.push(...observations(summary));
  const pinned = result.serverSetup?.taskset;
  notes.push(`CPU times are per unit of work on a ${result.environment.cpus}-core machine${pinned ? ' where client and server each have one core' : ''}: a client that needs more CPU per GiB or per request will hit its core's limit first.`);
  return notes;
}

// ---- main ----------------------------------------------------------------------

async function main() {
  log(`storage-s3-native benchmarks: ${args.smoke ? 'SMOKE (tiny sizes)' : 'full'}, ${rounds} round(s), workloads: ${only.join(', ')}`);
  ensureDeps();
  const addon = ensureAddon();
  const { startBenchServer, hasTaskset } = await import('./lib/server.mjs');
  const pin = hasTaskset();
  const server = await startBenchServer({ log });
  server.setup.version = (() => {
    try {
      return execFileSync(server.setup.bin, ['--version'], { encoding: 'utf8' }).trim();
    } catch {
      return '';
    }
  })();
  log(
    `server: ${server.setup.version || 's3s-fs'} pid ${server.pid} at ${server.endpoint}; ${server.setup.taskset ? 'taskset -c 1' : 'not pinned'}; data on ${server.setup.dataDir}; ` +
      `TCP_NODELAY ${server.setup.nodelayShim ? 'forced by LD_PRELOAD shim (bench/tcp-nodelay-shim.c wraps accept/accept4)' : 'NOT forced (shim build failed)'}; clients ${pin ? 'pinned to CPU 0 (taskset -c 0)' : 'not pinned'}`,
  );
  const env = environment(addon, server);
  const need = { big: only.some((w) => w === 'download'), huge: only.some((w) => w.endsWith('-huge')) };
  let files;
  const samples = [];
  const peerOrder = {};
  let settings;
  let oursFailed = 0;
  try {
    files = await makeFixtures(server, need);
    const serverInfo = {
      endpoint: server.endpoint,
      region: server.region,
      bucket: server.bucket,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
      pid: server.pid,
      dataDir: server.dataDir,
    };
    // Our backend's multipart settings, from describe() in a child like the workers; every other
    // client's multipart path gets the same part size and parts in flight.
    const base = { S, server: serverInfo, files };
    const described = await runChild(pin, { ...base, peer: 'ours', workload: 'describe', prefix: 'describe/' });
    const mp = described.describe?.multipart;
    if (!described.ok || !Number.isInteger(mp?.partSize) || !Number.isInteger(mp?.queueSize)) {
      throw new Error(`could not read our backend's multipart settings from describe(): ${described.error ?? JSON.stringify(described.describe)}`);
    }
    settings = {
      multipart: { partSize: mp.partSize, queueSize: mp.queueSize, threshold: mp.threshold },
      from: 'new S3StorageBackend(<the benchmark server>).describe() in a child process',
      // Bytes per read of OpenDAL's download stream (its default is 16 KiB), as ours delivers.
      readChunk: MiB,
    };
    if (peerFilter.includes('baseline')) {
      const b = await runChild(pin, { ...base, peer: 'baseline', workload: 'describe', prefix: 'describe/' });
      if (b.describe?.multipart) settings.baselineMultipart = { partSize: b.describe.multipart.partSize, queueSize: b.describe.multipart.queueSize, threshold: b.describe.multipart.threshold };
    }
    log(`multipart settings (our describe()): ${fmtBytes(mp.partSize)} parts, ${mp.queueSize} in flight, single PUT up to ${fmtBytes(mp.threshold)}; given to lib-storage Upload, OpenDAL writer, minio-js`);
    for (const wname of only) {
      const wl = ALL[wname];
      const peers = peersOf(wl);
      peerOrder[wname] = [];
      log(`\n== ${wname}: ${wl.title}`);
      for (let round = 1; round <= rounds; round++) {
        const order = rotate(peers, round - 1);
        peerOrder[wname].push(order);
        const reps = wname === 'cold-start' ? S.coldReps : wl.reps ?? 1;
        for (let rep = 0; rep < reps; rep++) {
          for (const [position, peer] of order.entries()) {
            const loadavg = os.loadavg()[0];
            const cfg = { ...base, peer, workload: wname, settings, prefix: `r${round}/${wname}/${peer}/${rep}/` };
            const res = wl.parent ? runImport(pin, peer) : await runChild(pin, cfg);
            const sample = { workload: wname, peer, round, rep, position, loadavg, ...res };
            samples.push(sample);
            if (!res.ok && peer === 'ours') oursFailed++;
            const what = res.ok
              ? res.metrics.map((m) => `${m.name} ${fmt(m.value)}${m.p50Ms !== undefined ? ` (p50 ${fmt(m.p50Ms, 3)} ms)` : ''}`).join(', ') +
                (res.run ? ` | RSS +${fmtMiB(res.run.rssGrowth)} MiB${res.run.lagP99Ms != null ? `, lag p99 ${fmt(res.run.lagP99Ms, 1)} ms` : ''}` : '') +
                (res.verified ? ` | sha256 ok: ${Object.entries(res.verified).map(([k, v]) => `${k} ${v.objects}`).join(', ')}` : '')
              : `FAILED: ${res.error}`;
            log(`  r${round}${reps > 1 ? `.${rep + 1}` : ''} ${peer.padEnd(8)} ${what}`);
          }
        }
      }
    }
  } finally {
    await server.stop();
    if (files?.dir) rmSync(files.dir, { recursive: true, force: true });
  }

  const workloadsRun = Object.fromEntries(only.map((w) => [w, ALL[w]]));
  const summary = only.flatMap((w) => summarize(samples, ALL[w], w));
  const targets = evaluateTargets(summary, settings);

  log('\n================ summary (medians; ratios are median ÷ median) ================');
  for (const [wname, wl] of Object.entries(workloadsRun)) {
    log(`\n### ${wname}: ${wl.title}`);
    for (const line of tableLines(summary.filter((r) => r.workload === wname), wl)) log(line);
  }
  log('\n### targets');
  for (const t of targets) log(`${t.status === 'met' ? 'MET   ' : t.status === 'missed' ? 'MISSED' : 'n/a   '} ${t.target}: ${t.detail}`);

  const durationS = (Date.now() - started) / 1000;
  log(`\nfinished in ${durationS.toFixed(1)} s; load average now ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);

  const date = new Date().toISOString().slice(0, 10);
  const command = `node bench/run.mjs${process.argv.slice(2).length ? ' ' + process.argv.slice(2).join(' ') : ''}`;
  const result = {
    date,
    command,
    durationS,
    mode: args.smoke ? 'smoke' : 'full',
    rounds,
    peers: peerFilter,
    sizes: S,
    reduced: process.env.BENCH_REDUCED_NOTE || undefined,
    environment: env,
    loadavgAtEnd: os.loadavg(),
    serverSetup: { ...server.setup, dataDir: undefined, wrapper: undefined },
    // Part size and parts in flight every client's multipart path used (from our describe()).
    settings,
    // The order of the clients in each round, per workload (round k from 0 starts at client k mod n).
    peerOrder,
    workloads: workloadsRun,
    samples,
    summary,
    targets,
    notes: [],
  };
  result.notes = standardNotes(summary, result);
  if (isFull) {
    const dir = path.join(benchDir, 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${date}.json`);
    result.file = path.relative(root, file);
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    mkdirSync(path.join(root, 'docs'), { recursive: true });
    writeFileSync(path.join(root, 'docs', 'benchmarks.md'), docsMarkdown(result, summary, targets));
    log(`wrote ${path.relative(root, file)} and docs/benchmarks.md`);
  } else if (args.save) {
    // A partial run kept as a result file (e.g. a before/after comparison): <save>.json and <save>.md.
    const base = args.save.replace(/\.json$/, '');
    mkdirSync(path.dirname(path.resolve(base)), { recursive: true });
    result.file = path.relative(root, path.resolve(`${base}.json`));
    writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
    writeFileSync(`${base}.md`, docsMarkdown(result, summary, targets));
    log(`wrote ${base}.json and ${base}.md (partial run; docs/benchmarks.md not written)`);
  } else {
    // Still render the report, so --smoke exercises that code too.
    const preview = path.join(os.tmpdir(), `storage-s3-native-bench-${result.mode}.md`);
    result.file = `(not saved: ${result.mode === 'smoke' ? 'smoke' : 'partial'} run)`;
    writeFileSync(preview, docsMarkdown(result, summary, targets));
    log(`(smoke / partial run: bench/results and docs/benchmarks.md not written; report preview in ${preview})`);
  }
  if (oursFailed) {
    log(`\n${oursFailed} run(s) of OUR package failed`);
    process.exitCode = 1;
  }
}

/** Regenerates docs/benchmarks.md from a saved run, with this generator; the result file itself is not changed. */
function reportOnly(file) {
  const result = JSON.parse(readFileSync(file, 'utf8'));
  S = result.sizes;
  ALL = workloads(S);
  only = Object.keys(result.workloads);
  peerFilter = result.peers;
  // Titles as the run wrote them (they say what that run did).
  const wls = Object.fromEntries(only.map((w) => [w, { ...ALL[w], title: result.workloads[w]?.title ?? ALL[w].title }]));
  const summary = only.flatMap((w) => summarize(result.samples, wls[w], w));
  const targets = evaluateTargets(summary, result.settings);
  const report = { ...result, file: path.relative(root, file), workloads: wls, summary, targets };
  report.notes = standardNotes(summary, report);
  writeFileSync(path.join(root, 'docs', 'benchmarks.md'), docsMarkdown(report, summary, targets));
  log(`regenerated docs/benchmarks.md from ${path.relative(root, file)} (not modified)`);
  for (const t of targets) log(`${t.status === 'met' ? 'MET   ' : t.status === 'missed' ? 'MISSED' : 'n/a   '} ${t.target}: ${t.detail}`);
}

if (args.report) {
  reportOnly(path.resolve(args.report));
} else main().catch((err) => {
  console.error(err?.stack ?? err);
  process.exit(1);
});
