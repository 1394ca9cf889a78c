// s3s-fs as a process the test controls: a fixed port and data dir, so it can be killed
// (SIGKILL) and started again where it was, with the same credentials and objects.
// (scripts/s3-server.mjs picks a fresh port each time and owns its process.)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { findOrInstallS3sFs } from '../../scripts/s3-server.mjs';

export interface S3Process {
  endpoint: string;
  port: number;
  pid: number;
  dataDir: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: 'us-east-1';
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** SIGKILL (default) or another signal; resolves once it exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface S3ProcessOptions {
  port: number;
  dataDir: string;
  bucket?: string;
  accessKeyId: string;
  secretAccessKey: string;
}

const HOST = '127.0.0.1';
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

function probe(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: HOST, port, path: '/', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

/** A 127.0.0.1 port nobody listens on (right now). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, HOST, resolve);
  });
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/** Starts s3s-fs on `port` with `dataDir`; resolves when it answers HTTP (within 15 s). */
export async function spawnS3sFs(opts: S3ProcessOptions): Promise<S3Process> {
  const bucket = opts.bucket ?? 'test-bucket';
  mkdirSync(path.join(opts.dataDir, bucket), { recursive: true });
  const bin = await findOrInstallS3sFs();
  const args = ['--host', HOST, '--port', String(opts.port), '--access-key', opts.accessKeyId, '--secret-key', opts.secretAccessKey, opts.dataDir];
  // The port may still be held for a moment after a kill: try a few times.
  for (let attempt = 1; ; attempt++) {
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    live.add(child);
    let log = '';
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (log = (log + c).slice(-8192)));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    exited.then(() => live.delete(child));
    let dead = false;
    exited.then(() => (dead = true));
    const deadline = Date.now() + 15_000;
    while (!dead && Date.now() < deadline) {
      if (await probe(opts.port)) {
        child.unref();
        (child.stderr as unknown as { unref?: () => void }).unref?.();
        return {
          endpoint: `http://${HOST}:${opts.port}`,
          port: opts.port,
          pid: child.pid!,
          dataDir: opts.dataDir,
          bucket,
          accessKeyId: opts.accessKeyId,
          secretAccessKey: opts.secretAccessKey,
          region: 'us-east-1',
          exited,
          kill: async (signal = 'SIGKILL') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            await exited;
          },
        };
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!dead) child.kill('SIGKILL');
    await exited;
    if (attempt >= 5 || !/in use|AddrInUse/i.test(log)) {
      throw new Error(`s3s-fs on ${HOST}:${opts.port} did not start (attempt ${attempt}): ${log.trim() || '(no output)'}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
