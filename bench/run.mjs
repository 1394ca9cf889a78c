#!/usr/bin/env node
// Benchmark harness: @raptscallions/storage-s3-native against the AWS SDK v3,
// OpenDAL, minio-js and curl, all against one local s3s-fs.
//
//   node bench/run.mjs                 full run (3 rounds): bench/results/<date>.json + docs/benchmarks.md
//   node bench/run.mjs --smoke         tiny sizes, one round, < 60 s; exit 1 if any of OUR workloads fails
//   node bench/run.mjs --rounds 5 --only download,upload-buffer [--peers ours,curl]
//
// Each peer runs each workload in its own child process (bench/worker.mjs),
// pinned to CPU 0; the server is pinned to CPU 1 (bench/lib/server.mjs).
// Peers alternate within each round: A B C D E, A B C D E, ...
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { MiB, PEERS, SIZES, workloads } from './lib/workloads.mjs';

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
const rounds = Number(args.rounds ?? (args.smoke ? 1 : 3));
if (!Number.isInteger(rounds) || rounds < 1) throw new Error('--rounds must be a positive integer');
let only = args.only ? args.only.split(',').map((s) => s.trim()) : Object.keys(ALL);
for (const w of only) if (!ALL[w]) throw new Error(`unknown workload "${w}"; one of: ${Object.keys(ALL).join(', ')}`);
let peerFilter = args.peers ? args.peers.split(',').map((s) => s.trim()) : PEERS;
for (const p of peerFilter) if (!PEERS.includes(p)) throw new Error(`unknown peer "${p}"; one of: ${PEERS.join(', ')}`);
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
    gitHead: cmdOut('git', ['-C', root, 'rev-parse', '--short', 'HEAD']),
    ...(process.env.BENCH_BASELINE ? { baselineHead: cmdOut('git', ['-C', process.env.BENCH_BASELINE, 'rev-parse', '--short', 'HEAD']) } : {}),
    loadavgAtStart: os.loadavg(),
  };
}

// ---- fixtures --------------------------------------------------------------

function writeRepeated(file, template, size) {
  const fd = openSync(file, 'w');
  try {
    for (let off = 0; off < size; off += template.length) writeSync(fd, template, 0, Math.min(template.length, size - off));
  } finally {
    closeSync(fd);
  }
}

async function makeFixtures(server, need) {
  const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'bench-files-'));
  const template = randomBytes(MiB);
  const files = { dir, template: path.join(dir, 'template.bin'), k1: path.join(dir, '1k.bin'), m1: path.join(dir, '1m.bin') };
  writeFileSync(files.template, template);
  writeFileSync(files.k1, template.subarray(0, 1024));
  writeFileSync(files.m1, template);
  files.big = path.join(dir, 'big.bin');
  writeRepeated(files.big, template, S.big);
  if (need.huge) {
    files.huge = path.join(dir, 'huge.bin');
    writeRepeated(files.huge, template, S.huge);
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

function summarize(samples, wl, wname) {
  const rows = [];
  for (const metric of wl.metrics) {
    for (const peer of wl.peers ?? PEERS) {
      if (!peerFilter.includes(peer)) continue;
      const runs = samples.filter((s) => s.workload === wname && s.peer === peer);
      if (!runs.length) continue;
      const okRuns = runs.filter((s) => s.ok);
      const ms = okRuns.map((s) => s.metrics.find((m) => m.name === metric.name)).filter(Boolean);
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
        const perUnit = (m) => (m.bytes ? m.clientCpuMs / 1000 / (m.bytes / 2 ** 30) : (m.clientCpuMs * 1000) / m.count);
        const perUnitSrv = (m) => (m.bytes ? m.serverCpuMs / 1000 / (m.bytes / 2 ** 30) : (m.serverCpuMs * 1000) / m.count);
        if (metric.unit !== 'ms') {
          row.cpuUnit = ms[0].bytes ? 's/GiB' : 'µs/op';
          row.clientCpu = median(ms.map(perUnit));
          row.serverCpu = median(ms.map(perUnitSrv));
        }
        if (wl.large) {
          const rss = okRuns.map((s) => s.run?.rssGrowth).filter((x) => typeof x === 'number');
          const lag = okRuns.map((s) => s.run?.lagP99Ms).filter((x) => typeof x === 'number');
          row.rssIsCurlPeak = okRuns.some((s) => s.run?.rssIsCurlPeak);
          if (rss.length) (row.rssMedian = median(rss)), (row.rssMax = Math.max(...rss));
          if (lag.length) (row.lagP99Median = median(lag)), (row.lagP99Max = Math.max(...lag));
        }
        row.loadavg = median(okRuns.map((s) => s.loadavg));
      }
      rows.push(row);
    }
  }
  for (const row of rows) {
    const ref = (p) => rows.find((r) => r.metric === row.metric && r.peer === p)?.median;
    row.vsAws = ratio(row.median, ref('aws'));
    row.vsCurl = ratio(row.median, ref('curl'));
    row.vsOpendal = ratio(row.median, ref('opendal'));
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
};

function tableLines(rows, wl) {
  const head = ['client', 'metric', 'median', 'min–max', '× AWS SDK', '× curl'];
  if (wl.large) head.push('RSS growth MiB (median / max)', 'event-loop lag p99 ms (median / max)');
  head.push('client CPU', 'server CPU', 'load avg');
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const cells = [PEER_LABEL[r.peer] ?? r.peer, r.metric];
    if (!r.n) {
      cells.push(`**failed** (${r.failed}/${r.failed}): ${r.errors[0]?.replace(/\|/g, '\\|').slice(0, 160) ?? ''}`, '', '', '');
      if (wl.large) cells.push('', '');
      cells.push('', '', '');
    } else {
      cells.push(`${fmt(r.median)} ${r.unit}${r.failed ? ` (${r.failed} failed)` : ''}`, `${fmt(r.min)}–${fmt(r.max)}`, fmtRatio(r.vsAws), fmtRatio(r.vsCurl));
      if (wl.large) {
        const rss = r.rssMedian === undefined ? '–' : `${fmtMiB(r.rssMedian)} / ${fmtMiB(r.rssMax)}${r.rssIsCurlPeak ? ' (curl peak RSS)' : ''}`;
        const lag = r.lagP99Median === undefined ? '–' : `${fmt(r.lagP99Median, 1)} / ${fmt(r.lagP99Max, 1)}`;
        cells.push(rss, lag);
      }
      cells.push(r.clientCpu === undefined ? '–' : `${fmt(r.clientCpu)} ${r.cpuUnit}`, r.serverCpu === undefined ? '–' : `${fmt(r.serverCpu)} ${r.cpuUnit}`, fmt(r.loadavg));
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines;
}

// ---- targets -----------------------------------------------------------------

function evaluateTargets(summary) {
  const get = (w, m, p) => summary.find((r) => r.workload === w && r.metric === m && r.peer === p);
  const out = [];
  const add = (workload, name, pass, detail, missing) =>
    out.push({ workload, target: name, status: missing ? 'not measured' : pass ? 'met' : 'missed', detail });
  const throughputVs = (w, m, other, factor, label) => {
    const a = get(w, m, 'ours');
    const b = get(w, m, other);
    if (!a?.median || !b?.median) {
      const detail = `ours ${a?.median ? fmt(a.median) : 'failed/absent'}, ${other} ${b?.median ? fmt(b.median) : 'failed/absent'}`;
      return add(w, label, false, detail, !a || !b?.median);
    }
    const r = a.median / b.median;
    add(w, label, r >= factor, `ours ${fmt(a.median)} vs ${other} ${fmt(b.median)} ${a.unit}: ${r.toFixed(2)}× (needs ≥ ${factor}×)`);
  };
  const lowerVs = (w, m, other, label) => {
    const a = get(w, m, 'ours');
    const b = get(w, m, other);
    if (!a?.median || !b?.median) return add(w, label, false, `ours ${a?.median ? fmt(a.median) : 'failed/absent'}`, !a || !b?.median);
    const r = a.median / b.median;
    add(w, label, r <= 1, `ours ${fmt(a.median)} ms vs ${other} ${fmt(b.median)} ms: ${r.toFixed(2)}× (needs ≤ 1×)`);
  };
  const rssMax = (w, m, limit, label) => {
    const a = get(w, m, 'ours');
    if (!a || a.rssMax === undefined) return add(w, label, false, 'ours failed or absent', !a);
    add(w, label, a.rssMax <= limit * MiB, `worst round ${fmtMiB(a.rssMax)} MiB (median ${fmtMiB(a.rssMedian)}), limit ${limit} MiB: ${(a.rssMax / (limit * MiB)).toFixed(2)}× of the limit`);
  };
  const lagMax = (w, m, limit, label) => {
    const a = get(w, m, 'ours');
    if (!a || a.lagP99Max === undefined) return add(w, label, false, 'ours failed or absent', !a);
    add(w, label, a.lagP99Max <= limit, `worst round ${fmt(a.lagP99Max, 1)} ms (median ${fmt(a.lagP99Median, 1)}), limit ${limit} ms`);
  };
  const big = S.big / MiB;
  const hugeName = S.huge >= 1024 * MiB ? `${S.huge / 1024 / MiB} GiB` : `${S.huge / MiB} MiB`;
  throughputVs('upload-buffer', 'upload', 'curl', 0.95, `${big} MiB Buffer upload ≥ 0.95× curl`);
  rssMax('upload-buffer', 'upload', 16, `${big} MiB Buffer upload RSS growth ≤ 16 MiB`);
  throughputVs('download', 'download', 'curl', 0.95, `${big} MiB download ≥ 0.95× curl`);
  rssMax('download', 'download', 64, `${big} MiB download RSS growth ≤ 64 MiB`);
  throughputVs('upload-stream', 'upload', 'curl', 0.9, `${big} MiB unknown-length stream upload ≥ 0.9× curl (chunked)`);
  rssMax('upload-stream', 'upload', 64, `${big} MiB unknown-length stream upload RSS growth ≤ 64 MiB`);
  rssMax('stream-up-huge', 'upload', 64, `${hugeName} stream up RSS growth ≤ 64 MiB`);
  lagMax('stream-up-huge', 'upload', 10, `${hugeName} stream up event-loop lag p99 ≤ 10 ms`);
  rssMax('stream-down-huge', 'download', 64, `${hugeName} stream down RSS growth ≤ 64 MiB`);
  lagMax('stream-down-huge', 'download', 10, `${hugeName} stream down event-loop lag p99 ≤ 10 ms`);
  for (const op of ['put', 'head', 'get', 'delete']) throughputVs('ops-c32', op, 'opendal', 1, `1 KiB ${op} at concurrency 32 ≥ OpenDAL`);
  throughputVs('presign', 'presign', 'opendal', 1.5, 'Presigning ≥ 1.5× OpenDAL');
  lowerVs('cold-start', 'cold', 'opendal', 'Cold start ≤ OpenDAL');
  return out.filter((t) => only.includes(t.workload));
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
      notes.push(
        `${name} (\`${w}\`): s3s-fs used ${fmt(a.serverCpu)} s of CPU per GiB for our multipart upload and ${fmt(c.serverCpu)} s/GiB for curl's single chunked PUT. ` +
          `Pinned to one core, s3s-fs can therefore take a multipart upload at no more than about ${fmt(1073.7 / a.serverCpu)} MB/s (1 GiB ÷ its CPU per GiB), whatever the client does; ` +
          `the AWS SDK's \`Upload\` and OpenDAL's writer pay the same (see their server CPU column). S3 itself does not accept a PUT without a length, so a client cannot use curl's chunked single PUT there.`,
      );
    }
  }
  for (const w of ['upload-buffer', 'download', 'obj1m-c8']) {
    for (const m of ['upload', 'download', 'put', 'get']) {
      const a = get(w, m, 'ours');
      const c = get(w, m, 'curl');
      if (a?.serverCpu && c?.serverCpu && a.serverCpu > 1.5 * c.serverCpu) {
        notes.push(`\`${w}\` ${m}: s3s-fs spent ${fmt(a.serverCpu)} s of CPU per GiB serving ours against ${fmt(c.serverCpu)} s/GiB for curl (${(a.serverCpu / c.serverCpu).toFixed(2)}×) for the same bytes, so the server's single core, not the client, caps our throughput here; how ours writes the body (frame sizes, pacing) costs the server extra work.`);
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
    `- s3s-fs ${setup.version ?? ''} on 127.0.0.1, started by \`bench/lib/server.mjs\` through \`scripts/s3-server.mjs\` \`startS3Server()\` with a wrapper script as \`S3S_FS_BIN\`:`,
    '',
    '  ```sh',
    `  RUST_LOG=warn LD_PRELOAD=<tmp>/tcp-nodelay-shim.so exec ${setup.taskset ? 'taskset -c 1 ' : ''}~/.cargo/bin/s3s-fs "$@"`,
    '  ```',
    '',
    `- ${setup.taskset ? 'Pinned to CPU 1 with `taskset -c 1`; every client process is pinned to CPU 0 (`taskset -c 0`), so client and server never compete for a core. A client\'s own threads (Node, libuv pool, a native runtime\'s workers, curl) all share CPU 0.' : '`taskset` was not available (or fewer than 2 CPUs): nothing was pinned.'}`,
    `- Data directory on ${setup.dataOnTmpfs ? '`/dev/shm` (tmpfs)' : 'the temp dir (no /dev/shm)'}, so the disk is not what is measured.`,
    `- TCP_NODELAY: s3s-fs (hyper) never sets it on accepted sockets, so with Nagle's algorithm a response written in two pieces waits for the client's delayed ACK and every client's small GET takes ~40 ms. \`bench/tcp-nodelay-shim.c\` wraps \`accept\`/\`accept4\` (via \`dlsym(RTLD_NEXT, …)\`) and sets \`TCP_NODELAY\` on each accepted socket; \`bench/run.mjs\` compiles it at run time with \`gcc -O2 -shared -fPIC … -ldl\` into a temp dir and preloads it into s3s-fs only. ${setup.nodelayShim ? 'It was active in this run.' : '**It could not be built in this run.**'}`,
    '- `RUST_LOG=warn` keeps s3s-fs from logging every request.',
  ].join('\n');
}

function docsMarkdown(result, summary, targets) {
  const e = result.environment;
  const L = [];
  L.push('# Benchmarks', '');
  L.push(`Generated by \`${result.command}\` on ${result.date} (${result.durationS.toFixed(0)} s); raw samples in \`bench/results/${result.date}.json\`. Regenerate with \`npm run bench\` (\`node bench/run.mjs\`); \`node bench/run.mjs --smoke\` is the < 60 s CI check (exit 1 if any of our workloads fails).`, '');
  L.push('## Targets', '');
  L.push('Throughput targets compare medians over rounds; memory and event-loop targets use the worst round.', '');
  L.push('| target | status | measured |', '|---|---|---|');
  for (const t of targets) L.push(`| ${t.target} | ${t.status === 'met' ? '✅ met' : t.status === 'missed' ? '❌ missed' : '– not measured'} | ${t.detail} |`);
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
  L.push(`| load average | ${e.loadavgAtStart.map((x) => x.toFixed(2)).join(' / ')} at start, ${result.loadavgAtEnd.map((x) => x.toFixed(2)).join(' / ')} at end (1/5/15 min; other work was running on this machine) |`);
  L.push(`| rounds | ${result.rounds} (peers interleaved within each round: ${result.peers.join(' → ')}) |`);
  L.push('');
  L.push('### Server', '', serverSetupText(result.serverSetup), '');
  L.push('### Method', '');
  L.push(
    [
      '- Every (workload, client, round) runs in a fresh `node --expose-gc bench/worker.mjs` child process, so RSS growth, CPU time and cold start belong to one client. Before a measured section the worker does one unmeasured HEAD (connection set up) and two `gc()` calls.',
      '- Throughput = bytes / wall time of the measured section (MB = 10⁶ bytes). Ops/s = operations / wall time, all operations of a phase through a pool of N concurrent async loops (curl: one `curl --parallel --parallel-max N -K urls.cfg` per phase, sequential transfers for N = 1).',
      '- RSS growth = peak RSS during the section (`process.memoryUsage.rss()` every 5 ms, and `process.resourceUsage().maxRSS` when it rose) minus RSS just before it; the 256 MiB Buffer itself exists before the baseline. For curl the column shows the whole curl process\'s peak RSS (`/usr/bin/time -f %M`).',
      '- Event-loop lag = p99 of `perf_hooks.monitorEventLoopDelay({ resolution: 1 })` over the section.',
      '- CPU: client = `process.cpuUsage()` delta plus reaped children (curl) from `/proc/self/stat` cutime+cstime; server = s3s-fs utime+stime delta from `/proc/<pid>/stat`; shown per GiB moved or per operation.',
      '- Load average: the 1-minute load average when each child started (median).',
      '- Sources: Buffers are filled from 1 MiB of random bytes; streams of unknown length are `Readable`s yielding fresh 64 KiB chunks (like `fs.createReadStream`) with backpressure; curl reads files on /dev/shm (`-T file`, or `cat file | curl -T -` for chunked). Uploaded sizes are checked on the server\'s disk; download byte counts are checked.',
      '- How each peer is used: ours: `upload` / `download` / `exists` / `delete` / `getSignedUrl` with defaults (multipart 8 MiB parts, 4 in flight). AWS SDK v3: `S3Client({ forcePathStyle: true })` with SDK defaults (including its default CRC32 request checksums), `PutObject`/`GetObject` (+ `transformToByteArray` for small GETs, `for await` over `Body` for large)/`HeadObject`/`DeleteObject`, `@aws-sdk/lib-storage` `Upload` (defaults: 5 MiB parts, 4 in flight) for unknown-length streams, `@aws-sdk/s3-request-presigner`. OpenDAL: `Operator("s3")`, `write`/`read`/`stat`/`delete`/`presignRead`; unknown-length upload via `writer(key, { chunk: 8 MiB, concurrent: 4 })`.`createWriteStream()`; download via `reader(key)`.`createReadStream({ highWaterMark: 1 MiB })`. minio-js: `putObject`/`getObject`/`statObject`/`removeObject`/`presignedGetObject`, path-style. curl: URLs presigned with the AWS presigner before the clock starts, `-H "Expect:"`, HTTP/1.1.',
      '- Cold start: from the first line of the worker to the end of the first HEAD (dynamic import of the client library, construction, HEAD of an existing object). Page cache is warm (the same files were loaded by earlier rounds). curl: process spawn + HEAD.',
    ].join('\n'),
    '',
  );
  if (result.reduced) L.push(`**Reduced run:** ${result.reduced}`, '');
  L.push('## Results', '');
  for (const [wname, wl] of Object.entries(result.workloads)) {
    const rows = summary.filter((r) => r.workload === wname);
    if (!rows.length) continue;
    L.push(`### ${wl.title}`, '', `\`${wname}\` — higher is better${wl.metrics[0].better === 'lower' ? ' except here: lower is better' : ''}.`, '');
    L.push(...tableLines(rows, wl), '');
    const fails = rows.filter((r) => r.failed);
    for (const r of fails) L.push(`- ${PEER_LABEL[r.peer]} ${r.metric}: ${r.failed} failed run(s): \`${(r.errors[0] ?? '').replace(/`/g, "'")}\``);
    if (fails.length) L.push('');
  }
  L.push('## Notes', '');
  for (const n of result.notes) L.push(`- ${n}`);
  L.push('');
  return L.join('\n');
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
  const notes = [];
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
    for (const wname of only) {
      const wl = ALL[wname];
      const peers = (wl.peers ?? PEERS).filter((p) => peerFilter.includes(p));
      log(`\n== ${wname}: ${wl.title}`);
      for (let round = 1; round <= rounds; round++) {
        const reps = wname === 'cold-start' ? S.coldReps : 1;
        for (let rep = 0; rep < reps; rep++) {
          for (const peer of peers) {
            const loadavg = os.loadavg()[0];
            const cfg = { peer, workload: wname, S, server: serverInfo, files, prefix: `r${round}/${wname}/${peer}/${rep}/` };
            const res = await runChild(pin, cfg);
            const sample = { workload: wname, peer, round, rep, loadavg, ...res };
            samples.push(sample);
            if (!res.ok && peer === 'ours') oursFailed++;
            const what = res.ok
              ? res.metrics.map((m) => `${m.name} ${fmt(m.value)}`).join(', ') +
                (res.run ? ` | RSS +${fmtMiB(res.run.rssGrowth)} MiB${res.run.lagP99Ms != null ? `, lag p99 ${fmt(res.run.lagP99Ms, 1)} ms` : ''}` : '')
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
  const targets = evaluateTargets(summary);

  log('\n================ summary (medians; ratios are median ÷ median) ================');
  for (const [wname, wl] of Object.entries(workloadsRun)) {
    log(`\n### ${wname}: ${wl.title}`);
    for (const line of tableLines(summary.filter((r) => r.workload === wname), wl)) log(line);
  }
  log('\n### targets');
  for (const t of targets) log(`${t.status === 'met' ? 'MET   ' : t.status === 'missed' ? 'MISSED' : 'n/a   '} ${t.target}: ${t.detail}`);

  if (summary.some((r) => r.peer === 'minio' && r.failed)) {
    notes.push('minio-js fails every upload that takes its multipart path (Buffers over its 64 MiB part size and streams of unknown length): it first calls ListMultipartUploads to resume an earlier upload, which s3s-fs does not implement. Users of minio-js against s3s-fs would see the same error; the failures are reported, not hidden.');
  }
  notes.push(...observations(summary));
  notes.push('CPU times are per unit of work on a 2-core machine where client and server each have one core: a client that needs more CPU per GiB will hit its core\'s limit first.');
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
    workloads: workloadsRun,
    samples,
    summary,
    targets,
    notes,
  };
  if (isFull) {
    const dir = path.join(benchDir, 'results');
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, `${date}.json`);
    writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
    mkdirSync(path.join(root, 'docs'), { recursive: true });
    writeFileSync(path.join(root, 'docs', 'benchmarks.md'), docsMarkdown(result, summary, targets));
    log(`wrote ${path.relative(root, file)} and docs/benchmarks.md`);
  } else if (args.save) {
    // A partial run kept as a result file (e.g. a before/after comparison): <save>.json and <save>.md.
    const base = args.save.replace(/\.json$/, '');
    mkdirSync(path.dirname(path.resolve(base)), { recursive: true });
    writeFileSync(`${base}.json`, JSON.stringify(result, null, 2) + '\n');
    writeFileSync(`${base}.md`, docsMarkdown(result, summary, targets));
    log(`wrote ${base}.json and ${base}.md (partial run; docs/benchmarks.md not written)`);
  } else {
    // Still render the report, so --smoke exercises that code too.
    const preview = path.join(os.tmpdir(), `storage-s3-native-bench-${result.mode}.md`);
    writeFileSync(preview, docsMarkdown(result, summary, targets));
    log(`(smoke / partial run: bench/results and docs/benchmarks.md not written; report preview in ${preview})`);
  }
  if (oursFailed) {
    log(`\n${oursFailed} run(s) of OUR package failed`);
    process.exitCode = 1;
  }
}

function reportOnly(file) {
  const result = JSON.parse(readFileSync(file, 'utf8'));
  S = result.sizes;
  ALL = workloads(S);
  only = Object.keys(result.workloads);
  peerFilter = result.peers;
  const summary = only.flatMap((w) => summarize(result.samples, ALL[w], w));
  const targets = evaluateTargets(summary);
  result.workloads = Object.fromEntries(only.map((w) => [w, ALL[w]]));
  result.summary = summary;
  result.targets = targets;
  const keep = result.notes.filter((n) => n.startsWith('minio-js') || n.startsWith('CPU times'));
  result.notes = [keep.find((n) => n.startsWith('minio-js')), ...observations(summary), keep.find((n) => n.startsWith('CPU times'))].filter(Boolean);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(path.join(root, 'docs', 'benchmarks.md'), docsMarkdown(result, summary, targets));
  log(`re-summarised ${path.relative(root, file)} and regenerated docs/benchmarks.md`);
  for (const t of targets) log(`${t.status === 'met' ? 'MET   ' : t.status === 'missed' ? 'MISSED' : 'n/a   '} ${t.target}: ${t.detail}`);
}

if (args.report) {
  reportOnly(path.resolve(args.report));
} else main().catch((err) => {
  console.error(err?.stack ?? err);
  process.exit(1);
});
