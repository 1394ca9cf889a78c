// One peer, one workload, one fresh process (started by bench/run.mjs, pinned
// to CPU 0). Prints one line "@@RESULT <json>" on stdout.
//
// Bytes are checked by SHA-256 after the clock stops: what the server stored
// (its data directory) for uploads, what the client returned for downloads and
// GETs. A mismatch fails the sample.
const T0 = performance.now();
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { Readable } from 'node:stream';
import path from 'node:path';
import { MiB } from './lib/workloads.mjs';

const cfg = JSON.parse(process.argv[2]);
const { peer, workload, S, server, files, prefix, settings } = cfg;

function procCpuMs(pid, children = false) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = children ? Number(f[13]) + Number(f[14]) : Number(f[11]) + Number(f[12]);
    return ticks * 10; // USER_HZ = 100
  } catch {
    return NaN;
  }
}

/** CPU time of the calling thread (here: Node's main thread), in ms: the first field of schedstat is ns on CPU. */
function threadCpuMs() {
  try {
    return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
  } catch {
    return NaN;
  }
}

const gc = globalThis.gc ?? (() => {});

/** Time fn(); CPU of this process (+ waited-for children: curl), of the server; RSS and event-loop lag. */
async function measure(fn) {
  gc();
  gc();
  const rss0 = process.memoryUsage.rss();
  const maxRss0 = process.resourceUsage().maxRSS * 1024;
  let peak = rss0;
  const sampler = setInterval(() => {
    const r = process.memoryUsage.rss();
    if (r > peak) peak = r;
  }, 5);
  const h = monitorEventLoopDelay({ resolution: 1 });
  const cpu0 = process.cpuUsage();
  const kids0 = procCpuMs('self', true);
  const srv0 = procCpuMs(server.pid);
  h.enable();
  const main0 = threadCpuMs();
  const t = performance.now();
  const out = await fn();
  const wallMs = performance.now() - t;
  const mainCpuMs = threadCpuMs() - main0;
  h.disable();
  const cpu = process.cpuUsage(cpu0);
  const srv = procCpuMs(server.pid) - srv0;
  const kids = procCpuMs('self', true) - kids0;
  clearInterval(sampler);
  const r = process.memoryUsage.rss();
  if (r > peak) peak = r;
  const maxRss1 = process.resourceUsage().maxRSS * 1024;
  if (maxRss1 > maxRss0 && maxRss1 > peak) peak = maxRss1; // a peak the sampler missed
  return {
    out,
    wallMs,
    clientCpuMs: (cpu.user + cpu.system) / 1000 + kids,
    mainCpuMs,
    serverCpuMs: srv,
    rssBase: rss0,
    rssGrowth: peak - rss0,
    lagP99Ms: h.percentile(99) / 1e6,
    lagMaxMs: h.max / 1e6,
  };
}

async function pool(items, concurrency, fn) {
  let i = 0;
  const run = async () => {
    while (i < items.length) {
      const item = items[i++];
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, run));
}

const template = readFileSync(files.template); // 1 MiB of random bytes

function makeBuffer(size) {
  const b = Buffer.allocUnsafe(size);
  for (let off = 0; off < size; off += template.length) template.copy(b, off, 0, Math.min(template.length, size - off));
  return b;
}

/** A source like fs.createReadStream: fresh 64 KiB chunks, pulled with backpressure; length unknown to the client. */
function sourceStream(total) {
  const CHUNK = 64 * 1024;
  let sent = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(CHUNK, total - sent);
      const off = sent % template.length;
      const b = Buffer.allocUnsafe(n);
      template.copy(b, 0, off, off + n);
      sent += n;
      this.push(b);
    },
  });
}

function objectFile(key) {
  return path.join(server.dataDir, server.bucket, key);
}
function dropObject(key) {
  rmSync(objectFile(key), { force: true });
}

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');
/** SHA-256 of a file, read in 4 MiB pieces (a 1 GiB object never sits in memory). */
function sha256File(file) {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(4 * MiB);
  const fd = openSync(file, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
/** What was checked, per phase: { objects, bytes } (reported with the sample). */
const verified = {};
function passed(phase, objects, bytes) {
  verified[phase] = { objects: (verified[phase]?.objects ?? 0) + objects, bytes: (verified[phase]?.bytes ?? 0) + bytes };
}
/** Every key's object on the server's disk hashes to `want` (the source's SHA-256). */
function checkStored(phase, keys, size, want) {
  for (const key of keys) {
    const file = objectFile(key);
    const got = statSync(file).size;
    if (got !== size) throw new Error(`stored object ${key} has ${got} bytes, expected ${size}`);
    const h = sha256File(file);
    if (h !== want) throw new Error(`sha256 mismatch: stored object ${key} is ${h.slice(0, 16)}…, the source ${want.slice(0, 16)}…`);
  }
  passed(phase, keys.length, keys.length * size);
}
/** Every body the client returned (Buffers, or files curl wrote) hashes to `want`. */
function checkReturned(phase, bodies, size, want) {
  for (const [i, b] of bodies.entries()) {
    const buf = typeof b === 'string' ? readFileSync(b) : b;
    if (!buf || buf.length !== size) throw new Error(`GET #${i}: ${buf?.length} bytes, expected ${size}`);
    const h = sha256(buf);
    if (h !== want) throw new Error(`sha256 mismatch: GET #${i} returned ${h.slice(0, 16)}…, the source is ${want.slice(0, 16)}…`);
  }
  passed(phase, bodies.length, bodies.length * size);
}
/** A directory next to the fixtures (/dev/shm when there is one) for what clients download. */
const scratch = () => mkdtempSync(path.join(path.dirname(files.dir), 'bench-dl-'));
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

const sample = (name, m, count, bytes) => ({
  name,
  value: bytes !== undefined ? bytes / 1e6 / (m.wallMs / 1000) : count / (m.wallMs / 1000),
  count,
  bytes,
  wallMs: m.wallMs,
  clientCpuMs: m.clientCpuMs,
  mainCpuMs: m.mainCpuMs,
  serverCpuMs: m.serverCpuMs,
});

async function main() {
  const mod = await import(`./peers/${peer}.mjs`);
  const c = mod.create(server, settings);

  if (workload === 'describe') return { describe: c.describe?.() };

  if (workload === 'cold-start') {
    if (c.isCurl) {
      const head = await c.prepareHead(files.smallKey);
      const t = performance.now();
      await head();
      const ms = performance.now() - t;
      return { metrics: [{ name: 'cold', value: ms, count: 1 }], note: 'curl: process start + HEAD' };
    }
    const ok = await c.head(files.smallKey);
    if (ok === false) throw new Error('HEAD of an existing object said it is missing');
    const ms = performance.now() - T0;
    return { metrics: [{ name: 'cold', value: ms, count: 1, sinceProcessStartMs: performance.now() }] };
  }

  // Warm-up: one connection, one request (not measured).
  if (c.isCurl) await (await c.prepareHead(files.smallKey))();
  else await c.head(files.smallKey);

  switch (workload) {
    case 'presign': {
      const keys = Array.from({ length: S.presignN }, (_, i) => `${prefix}p/${i}.bin`);
      let bad = 0;
      const m = await measure(() =>
        pool(keys, 32, async (k) => {
          const u = await c.presign(k);
          if (typeof u !== 'string' || !u.startsWith('http')) bad++;
        }),
      );
      if (bad) throw new Error(`${bad} presigned URLs were not URLs`);
      return { metrics: [sample('presign', m, keys.length)] };
    }
    case 'ops-c32':
    case 'ops-c1': {
      const conc = workload === 'ops-c32' ? 32 : 1;
      const n = workload === 'ops-c32' ? S.opsC32 : S.opsC1;
      const keys = Array.from({ length: n }, (_, i) => `${prefix}o/${i}.bin`);
      const body = template.subarray(0, 1024);
      // The source's SHA-256: the Buffer the Node clients send, the file curl sends.
      const want = c.isCurl ? files.sha256.k1 : sha256(body);
      const metrics = [];
      // At concurrency 1 each operation is timed on its own (p50 latency).
      const timing = conc === 1;
      for (const op of ['put', 'head', 'get', ...(c.getStream ? ['get-stream'] : []), 'del']) {
        let m;
        let latencies = [];
        // GET bodies are kept and hashed after the clock stops.
        const bodies = new Array(n);
        let outDir;
        if (c.isCurl) {
          if (op === 'get') outDir = scratch();
          const go = await c.prepareBatch(op, keys, conc, { bodyFile: files.k1, outDir, timing });
          m = await measure(go);
          if (timing) latencies = m.out.latenciesMs;
          if (outDir) keys.forEach((_, i) => (bodies[i] = path.join(outDir, String(i))));
        } else {
          const fn = {
            put: (k) => c.put(k, body),
            head: async (k) => {
              if ((await c.head(k)) === false) throw new Error(`HEAD ${k}: missing`);
            },
            get: async (k, i) => {
              bodies[i] = await c.get(k);
            },
            'get-stream': async (k, i) => {
              bodies[i] = await c.getStream(k);
            },
            del: (k) => c.del(k),
          }[op];
          const items = keys.map((k, i) => [k, i]);
          const timed = timing
            ? async ([k, i]) => {
                const t = performance.now();
                await fn(k, i);
                latencies.push(performance.now() - t);
              }
            : ([k, i]) => fn(k, i);
          m = await measure(() => pool(items, conc, timed));
        }
        if (op === 'put') checkStored('put', keys, 1024, want);
        if (op === 'get' || op === 'get-stream') checkReturned(op, bodies, 1024, want);
        if (outDir) rmSync(outDir, { recursive: true, force: true });
        if (op === 'del') {
          const left = keys.filter((k) => existsSync(objectFile(k)));
          if (left.length) throw new Error(`${left.length} deleted objects are still on the server's disk (${left[0]})`);
        }
        const s = sample(op === 'del' ? 'delete' : op, m, n);
        if (timing) {
          if (latencies.length !== n) throw new Error(`${op}: ${latencies.length} per-operation timings for ${n} operations`);
          s.p50Ms = median(latencies);
          s.p99Ms = quantile(latencies, 0.99);
        }
        metrics.push(s);
      }
      return { metrics, verified };
    }
    case 'obj1m-c8': {
      const n = S.obj1mN;
      const keys = Array.from({ length: n }, (_, i) => `${prefix}m/${i}.bin`);
      const body = makeBuffer(MiB);
      const want = c.isCurl ? files.sha256.m1 : sha256(body);
      const metrics = [];
      let m;
      if (c.isCurl) m = await measure(await c.prepareBatch('put', keys, 8, { bodyFile: files.m1 }));
      else m = await measure(() => pool(keys, 8, (k) => c.put(k, body)));
      checkStored('put', keys, MiB, want);
      metrics.push(sample('put', m, n, n * MiB));
      // GET bodies are kept and hashed after the clock stops.
      const bodies = new Array(n);
      if (c.isCurl) {
        const outDir = scratch();
        m = await measure(await c.prepareBatch('get', keys, 8, { outDir }));
        keys.forEach((_, i) => (bodies[i] = path.join(outDir, String(i))));
        checkReturned('get', bodies, MiB, want);
        rmSync(outDir, { recursive: true, force: true });
      } else {
        m = await measure(() =>
          pool(
            keys.map((k, i) => [k, i]),
            8,
            async ([k, i]) => {
              bodies[i] = await c.get(k);
            },
          ),
        );
        checkReturned('get', bodies, MiB, want);
      }
      bodies.fill(undefined);
      metrics.push(sample('get', m, n, n * MiB));
      keys.forEach(dropObject);
      return { metrics, verified };
    }
    case 'upload-buffer':
    case 'upload-stream':
    case 'stream-up-huge': {
      const size = workload === 'stream-up-huge' ? S.huge : S.big;
      const key = `${prefix}up.bin`;
      // The source's SHA-256, taken after the clock stops: the fixture file curl sends, the Buffer
      // itself, or a second stream from the same generator (its bytes are a pure function of the size).
      let want = size === S.huge ? files.sha256.huge : files.sha256.big;
      if (peer === 'ours' && workload !== 'upload-buffer') {
        // Our multipart settings must be the ones the other clients were given.
        const mp = c.describe().multipart;
        if (mp.partSize !== settings.multipart.partSize || mp.queueSize !== settings.multipart.queueSize)
          throw new Error(`this backend's multipart settings (${mp.partSize} B × ${mp.queueSize}) are not the run's (${settings.multipart.partSize} B × ${settings.multipart.queueSize})`);
      }
      let m;
      if (c.isCurl) {
        const file = size === S.huge ? files.huge : files.big;
        const go = workload === 'upload-buffer' ? await c.prepareUploadFile(key, file) : await c.prepareUploadPipe(key, file);
        m = await measure(go);
      } else if (workload === 'upload-buffer') {
        const buf = makeBuffer(size);
        m = await measure(() => c.uploadBuffer(key, buf));
        want = sha256(buf);
      } else {
        m = await measure(() => c.uploadStream(key, sourceStream(size)));
        const h = createHash('sha256');
        for await (const chunk of sourceStream(size)) h.update(chunk);
        want = h.digest('hex');
      }
      checkStored('upload', [key], size, want);
      dropObject(key);
      return { metrics: [sample('upload', m, 1, size)], run: runInfo(m, c), verified };
    }
    case 'download':
    case 'stream-down-huge': {
      const size = workload === 'download' ? S.big : S.huge;
      const key = workload === 'download' ? files.bigKey : files.hugeKey;
      const want = workload === 'download' ? files.sha256.big : files.sha256.huge;
      // Every client's body goes to a file on /dev/shm inside the clock (curl: -o file; the others:
      // writeSync of each chunk as it arrives); the file is hashed after the clock stops.
      const dir = scratch();
      const out = path.join(dir, 'body.bin');
      let m;
      try {
        if (c.isCurl) {
          const go = await c.prepareDownload(key, out);
          m = await measure(go);
          if (m.out.bytes !== size) throw new Error(`downloaded ${m.out.bytes} bytes, expected ${size}`);
        } else {
          const fd = openSync(out, 'w');
          try {
            m = await measure(async () => {
              let n = 0;
              for await (const chunk of await c.downloadStream(key)) {
                for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off);
                n += chunk.length;
              }
              return n;
            });
          } finally {
            closeSync(fd);
          }
          if (m.out !== size) throw new Error(`downloaded ${m.out} bytes, expected ${size}`);
        }
        const got = statSync(out).size;
        if (got !== size) throw new Error(`the downloaded file has ${got} bytes, expected ${size}`);
        const h = sha256File(out);
        if (h !== want) throw new Error(`sha256 mismatch: the download is ${h.slice(0, 16)}…, the source ${want.slice(0, 16)}…`);
        passed('download', 1, size);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      return { metrics: [sample('download', m, 1, size)], run: runInfo(m, c), verified };
    }
    default:
      throw new Error(`unknown workload ${workload}`);
  }
}

function runInfo(m, c) {
  if (c.isCurl) return { rssGrowth: m.out?.peakRssKiB ? m.out.peakRssKiB * 1024 : null, rssIsCurlPeak: true, lagP99Ms: null };
  return { rssGrowth: m.rssGrowth, rssBase: m.rssBase, lagP99Ms: m.lagP99Ms, lagMaxMs: m.lagMaxMs };
}

main().then(
  (r) => {
    process.stdout.write(`@@RESULT ${JSON.stringify({ ok: true, ...r })}\n`);
    process.exit(0);
  },
  (err) => {
    const msg = `${err?.name ?? 'Error'}: ${err?.message ?? String(err)}${err?.code ? ` (code ${err.code})` : ''}${err?.Code ? ` (${err.Code})` : ''}`;
    process.stdout.write(`@@RESULT ${JSON.stringify({ ok: false, error: msg.slice(0, 500) })}\n`);
    process.exit(1);
  },
);
