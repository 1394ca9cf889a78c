#!/usr/bin/env node
// Parallel ranged downloads against the bench server (s3s-fs pinned to one core, TCP_NODELAY):
// a 256 MiB object read with download(key, { concurrency }) for 1, 2, 4 and 8, interleaved
// rounds, medians of MB/s and the peak RSS growth of each read.
//   node bench/parallel-download.mjs [--rounds 3] [--mib 256]
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { startBenchServer } from './lib/server.mjs';
import { S3StorageBackend } from '../lib/index.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '3' }, mib: { type: 'string', default: '256' } } });
const rounds = Number(values.rounds);
const size = Number(values.mib) * 1024 * 1024;
const server = await startBenchServer();
try {
  const b = new S3StorageBackend({
    bucket: server.bucket,
    endpoint: server.endpoint,
    region: server.region,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
  });
  await b.upload({ key: 'parallel/object', body: randomBytes(size), contentType: 'application/octet-stream' });
  const results = new Map();
  for (let round = 0; round < rounds; round++) {
    for (const concurrency of [1, 2, 4, 8]) {
      globalThis.gc?.();
      const rss0 = process.memoryUsage.rss();
      let peak = rss0;
      const t = performance.now();
      let n = 0;
      for await (const chunk of await b.download('parallel/object', { concurrency })) {
        n += chunk.length;
        peak = Math.max(peak, process.memoryUsage.rss());
      }
      const s = (performance.now() - t) / 1000;
      if (n !== size) throw new Error(`read ${n} bytes, expected ${size}`);
      const r = results.get(concurrency) ?? [];
      r.push({ mbs: size / 1e6 / s, rss: (peak - rss0) / 1048576 });
      results.set(concurrency, r);
    }
  }
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`| concurrency | MB/s (median of ${rounds}) | min–max | peak RSS growth MiB (max) |`);
  console.log('|---|---|---|---|');
  for (const [c, r] of results) {
    const mbs = r.map((x) => x.mbs);
    console.log(`| ${c} | ${median([...mbs]).toFixed(0)} | ${Math.min(...mbs).toFixed(0)}–${Math.max(...mbs).toFixed(0)} | ${Math.max(...r.map((x) => x.rss)).toFixed(1)} |`);
  }
} finally {
  await server.stop();
}
