// One peer, one workload, one fresh process (started by bench/run.mjs, pinned
// to CPU 0). Prints one line "@@RESULT <json>" on stdout.
const T0 = performance.now();
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { readFileSync, rmSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import path from 'node:path';
import { MiB } from './lib/workloads.mjs';

const cfg = JSON.parse(process.argv[2]);
const { peer, workload, S, server, files, prefix } = cfg;

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
  const t = performance.now();
  const out = await fn();
  const wallMs = performance.now() - t;
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
function checkStored(key, size) {
  const got = statSync(objectFile(key)).size;
  if (got !== size) throw new Error(`stored object ${key} has ${got} bytes, expected ${size}`);
}
function dropObject(key) {
  rmSync(objectFile(key), { force: true });
}

const sample = (name, m, count, bytes) => ({
  name,
  value: bytes !== undefined ? bytes / 1e6 / (m.wallMs / 1000) : count / (m.wallMs / 1000),
  count,
  bytes,
  wallMs: m.wallMs,
  clientCpuMs: m.clientCpuMs,
  serverCpuMs: m.serverCpuMs,
});

async function main() {
  const mod = await import(`./peers/${peer}.mjs`);
  const c = mod.create(server);

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
      const metrics = [];
      for (const op of ['put', 'head', 'get', 'del']) {
        let m;
        if (c.isCurl) {
          const go = await c.prepareBatch(op, keys, conc, files.k1);
          m = await measure(go);
        } else {
          const fn = {
            put: (k) => c.put(k, body),
            head: async (k) => {
              if ((await c.head(k)) === false) throw new Error(`HEAD ${k}: missing`);
            },
            get: async (k) => {
              const b = await c.get(k);
              if (b.length !== 1024) throw new Error(`GET ${k}: ${b.length} bytes`);
            },
            del: (k) => c.del(k),
          }[op];
          m = await measure(() => pool(keys, conc, fn));
        }
        if (op === 'put') checkStored(keys[0], 1024);
        metrics.push(sample(op === 'del' ? 'delete' : op, m, n));
      }
      return { metrics };
    }
    case 'obj1m-c8': {
      const n = S.obj1mN;
      const keys = Array.from({ length: n }, (_, i) => `${prefix}m/${i}.bin`);
      const body = makeBuffer(MiB);
      const metrics = [];
      let m;
      if (c.isCurl) m = await measure(await c.prepareBatch('put', keys, 8, files.m1));
      else m = await measure(() => pool(keys, 8, (k) => c.put(k, body)));
      checkStored(keys[n - 1], MiB);
      metrics.push(sample('put', m, n, n * MiB));
      if (c.isCurl) m = await measure(await c.prepareBatch('get', keys, 8));
      else
        m = await measure(() =>
          pool(keys, 8, async (k) => {
            const b = await c.get(k);
            if (b.length !== MiB) throw new Error(`GET ${k}: ${b.length} bytes`);
          }),
        );
      metrics.push(sample('get', m, n, n * MiB));
      keys.forEach(dropObject);
      return { metrics };
    }
    case 'upload-buffer':
    case 'upload-stream':
    case 'stream-up-huge': {
      const size = workload === 'stream-up-huge' ? S.huge : S.big;
      const key = `${prefix}up.bin`;
      let m;
      if (c.isCurl) {
        const file = size === S.huge ? files.huge : files.big;
        const go = workload === 'upload-buffer' ? await c.prepareUploadFile(key, file) : await c.prepareUploadPipe(key, file);
        m = await measure(go);
      } else if (workload === 'upload-buffer') {
        const buf = makeBuffer(size);
        m = await measure(() => c.uploadBuffer(key, buf));
      } else {
        m = await measure(() => c.uploadStream(key, sourceStream(size)));
      }
      checkStored(key, size);
      dropObject(key);
      return { metrics: [sample('upload', m, 1, size)], run: runInfo(m, c) };
    }
    case 'download':
    case 'stream-down-huge': {
      const size = workload === 'download' ? S.big : S.huge;
      const key = workload === 'download' ? files.bigKey : files.hugeKey;
      let m;
      if (c.isCurl) {
        const go = await c.prepareDownload(key);
        m = await measure(go);
        if (m.out.bytes !== size) throw new Error(`downloaded ${m.out.bytes} bytes, expected ${size}`);
      } else {
        m = await measure(() => c.download(key));
        if (m.out !== size) throw new Error(`downloaded ${m.out} bytes, expected ${size}`);
      }
      return { metrics: [sample('download', m, 1, size)], run: runInfo(m, c) };
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
