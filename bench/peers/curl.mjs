// curl with presigned URLs: the wire limit. URLs are signed (AWS presigner)
// before the clock starts; small-object ops run as one `curl --parallel`
// process per phase, large transfers as one curl process each. What curl
// downloads goes to files (on /dev/shm), hashed by the worker after the clock.
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const label = 'curl (presigned)';
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

function run(cmd, args, { measureRss = false } = {}) {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-curl-'));
  const rssFile = path.join(tmp, 'rss');
  let argv = [cmd, ...args];
  if (measureRss && TIME) argv = [TIME, '-f', '%M', '-o', rssFile, ...argv];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (err = (err + d).slice(-4000)));
    child.once('error', reject);
    child.once('close', (code) => {
      let peakRssKiB;
      try {
        peakRssKiB = Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop());
      } catch {}
      rmSync(tmp, { recursive: true, force: true });
      if (code !== 0) reject(new Error(`${path.basename(cmd)} exited ${code}: ${err.trim()}`));
      else resolve({ out, peakRssKiB });
    });
  });
}

const q = (s) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

export function create(s) {
  const client = new S3Client({
    region: s.region,
    endpoint: s.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
  });
  const Bucket = s.bucket;
  const sign = (Cmd, key) => getSignedUrl(client, new Cmd({ Bucket, Key: key }), { expiresIn: 3600 });
  const BASE = ['-sS', '-f', '--http1.1', '-H', 'Expect:'];
  const api = {
    isCurl: true,
    /**
     * Prepared batch: sign every URL now, return a function that runs curl once.
     * bodyFile: what a put sends. outDir: GET bodies go to outDir/<index> (hashed after the clock
     * stops), else to /dev/null. timing: print each transfer's time_total; the function then
     * returns { latenciesMs } in transfer order.
     */
    async prepareBatch(op, keys, concurrency, { bodyFile, outDir, timing = false } = {}) {
      const Cmd = { put: PutObjectCommand, head: HeadObjectCommand, get: GetObjectCommand, del: DeleteObjectCommand }[op];
      const lines = [];
      for (const [i, key] of keys.entries()) {
        lines.push(`url = ${q(await sign(Cmd, key))}`, `output = ${q(outDir && op === 'get' ? path.join(outDir, String(i)) : '/dev/null')}`);
        if (op === 'put') lines.push(`upload-file = ${q(bodyFile)}`);
      }
      const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-curlcfg-'));
      const cfg = path.join(dir, 'urls.cfg');
      writeFileSync(cfg, lines.join('\n') + '\n');
      const args = [...BASE];
      if (concurrency > 1) args.push('--parallel', '--parallel-max', String(concurrency));
      if (op === 'head') args.push('-I');
      if (op === 'del') args.push('-X', 'DELETE');
      if (timing) args.push('-w', '%{time_total}\\n');
      args.push('-K', cfg);
      return async () => {
        try {
          const r = await run('curl', args);
          return timing ? { latenciesMs: r.out.split('\n').filter(Boolean).map((l) => Number(l) * 1000) } : {};
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      };
    },
    async prepareUploadFile(key, file) {
      const url = await sign(PutObjectCommand, key);
      return () => run('curl', [...BASE, '-T', file, '-o', '/dev/null', url], { measureRss: true });
    },
    /** Chunked upload (Transfer-Encoding: chunked) from a pipe: `cat file | curl -T -`. */
    async prepareUploadPipe(key, file) {
      const url = await sign(PutObjectCommand, key);
      const sh = `cat ${JSON.stringify(file)} | ${TIME ? `${TIME} -f %M -o "$RSSF" ` : ''}curl ${BASE.map((a) => `'${a}'`).join(' ')} -T - -o /dev/null '${url}'`;
      return async () => {
        const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-curlpipe-'));
        const rssf = path.join(tmp, 'rss');
        try {
          await new Promise((resolve, reject) => {
            const c = spawn('sh', ['-c', sh], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RSSF: rssf } });
            let err = '';
            c.stderr.setEncoding('utf8').on('data', (d) => (err += d));
            c.once('error', reject);
            c.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`cat | curl exited ${code}: ${err.trim()}`))));
          });
          let peakRssKiB;
          try {
            peakRssKiB = Number(readFileSync(rssf, 'utf8').trim().split('\n').pop());
          } catch {}
          return { peakRssKiB };
        } finally {
          rmSync(tmp, { recursive: true, force: true });
        }
      };
    },
    /** The body goes to outFile (on /dev/shm; hashed after the clock stops). */
    async prepareDownload(key, outFile) {
      const url = await sign(GetObjectCommand, key);
      return async () => {
        const r = await run('curl', [...BASE, '-o', outFile, '-w', '%{size_download}', url], { measureRss: true });
        return { bytes: Number(r.out.trim()), peakRssKiB: r.peakRssKiB };
      };
    },
    async prepareHead(key) {
      const url = await sign(HeadObjectCommand, key);
      return () => run('curl', [...BASE, '-I', '-o', '/dev/null', url]);
    },
  };
  return api;
}
