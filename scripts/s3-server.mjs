#!/usr/bin/env node
// Throwaway S3 server (s3s-fs) on 127.0.0.1 for tests, `storage-s3-check` and benchmarks.
// Node built-ins only, because this file ships in the npm package.
//
//   import { startS3Server } from './s3-server.mjs';
//   const s3 = await startS3Server({ domain: 'localhost' }); ... await s3.stop();
//
// CLI: `node scripts/s3-server.mjs [--bucket B] [--domain D] [--data-dir DIR]`
// prints STORAGE_S3_* lines and runs until SIGINT/SIGTERM.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, constants, realpathSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

export const S3S_FS_VERSION = '0.14.1';
const INSTALL_ARGS = ['install', `s3s-fs@${S3S_FS_VERSION}`, '--features', 'binary', '--locked'];
const EXE = process.platform === 'win32' ? '.exe' : '';
const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 15_000;
const LOG_LIMIT = 64 * 1024;

export function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function cargoBinDir() {
  return path.join(process.env.CARGO_HOME ?? path.join(os.homedir(), '.cargo'), 'bin');
}

export function findOnPath(name) {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && isExecutable(path.join(dir, name + EXE))) return path.join(dir, name + EXE);
  }
  return undefined;
}

function findS3sFs() {
  const fromEnv = process.env.S3S_FS_BIN;
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`S3S_FS_BIN=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  // `cargo install` puts binaries in $CARGO_INSTALL_ROOT/bin when set, else $CARGO_HOME/bin.
  const installRoot = process.env.CARGO_INSTALL_ROOT;
  const dirs = [...(installRoot ? [path.join(installRoot, 'bin')] : []), cargoBinDir()];
  return findOnPath('s3s-fs') ?? dirs.map((d) => path.join(d, 's3s-fs' + EXE)).find(isExecutable);
}

/** Path of the s3s-fs binary; runs `cargo install` (output to stderr) when it is missing. */
export async function findOrInstallS3sFs({ install = true } = {}) {
  const found = findS3sFs();
  if (found) return found;
  const hint = `install it with: cargo ${INSTALL_ARGS.join(' ')} (or set S3S_FS_BIN)`;
  if (!install) throw new Error(`s3s-fs not found; ${hint}`);

  // cargo is often not on PATH in non-login shells, so also try ~/.cargo/bin.
  const inCargoHome = path.join(cargoBinDir(), 'cargo' + EXE);
  const cargo = findOnPath('cargo') ?? (isExecutable(inCargoHome) ? inCargoHome : undefined);
  if (!cargo) throw new Error(`s3s-fs not found and cargo is missing (install Rust from https://rustup.rs); ${hint}`);

  process.stderr.write(`s3s-fs not found, running: cargo ${INSTALL_ARGS.join(' ')}\n`);
  // stdout goes to fd 2 too: callers such as the CLI keep stdout for machine-readable lines.
  const child = spawn(cargo, INSTALL_ARGS, { stdio: ['ignore', 2, 2] });
  const code = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`cargo install s3s-fs failed with exit code ${code}`);
  const installed = findS3sFs();
  if (!installed) throw new Error(`cargo install succeeded but s3s-fs is in neither PATH nor ${cargoBinDir()}`);
  return installed;
}

/** A 127.0.0.1 port nobody listens on (right now). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// Any HTTP answer (403 without a signature is fine) means s3s-fs is serving.
function probe(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: HOST, port, path: '/', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

// Children and temp dirs to clean up if the parent exits without calling stop().
const live = new Map(); // child -> temp dir to remove (or undefined)
let exitHookInstalled = false;
function track(child, tempDir) {
  live.set(child, tempDir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [c, dir] of live) {
      c.kill('SIGKILL');
      if (dir) {
        try {
          rmSync(dir, { recursive: true, force: true });
        } catch {
          // best effort only, the process is exiting
        }
      }
    }
  });
}

function checkBucketName(name) {
  // A bucket is a directory under the data dir, so refuse anything path-like.
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) throw new Error(`invalid bucket name: ${JSON.stringify(name)}`);
}

/** Spawn s3s-fs once on `port`; resolves when it answers HTTP, rejects with its output otherwise. */
async function spawnServer(bin, args, port, tempDir) {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  track(child, tempDir);
  let log = '';
  const append = (chunk) => {
    log = (log + chunk).slice(-LOG_LIMIT);
  };
  // s3s-fs logs to stdout (tracing) and fatal errors to stderr: keep both for error messages.
  child.stdout.setEncoding('utf8').on('data', append);
  child.stderr.setEncoding('utf8').on('data', append);
  const exited = new Promise((resolve) => {
    child.once('error', (err) => {
      append(`\nspawn error: ${err.message}`);
      resolve();
    });
    child.once('exit', () => resolve());
  });

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let dead = false;
  exited.then(() => (dead = true));
  while (!dead && Date.now() < deadline) {
    if (await probe(port)) {
      // Don't let a forgotten server keep the parent alive; the exit hook kills it.
      child.unref();
      child.stdout.unref?.();
      child.stderr.unref?.();
      return { child, exited };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const why = dead ? `exited (code ${child.exitCode}, signal ${child.signalCode})` : `did not answer within ${READY_TIMEOUT_MS} ms`;
  if (!dead) {
    child.kill('SIGKILL');
    await exited;
  }
  live.delete(child);
  const err = new Error(`s3s-fs on ${HOST}:${port} ${why}; output:\n${log.trim() || '(none)'}`);
  err.addrInUse = /in use|AddrInUse/i.test(log);
  throw err;
}

/**
 * Start s3s-fs on a free 127.0.0.1 port with a bucket ready to use.
 * `domain` may be a list, e.g. ['localhost', `localhost:${proxyPort}`] so that requests relayed
 * by a proxy (whose port is in the signed Host header) are understood too.
 * @param {{ bucket?: string, accessKeyId?: string, secretAccessKey?: string, domain?: string | string[], dataDir?: string }} [opts]
 */
export async function startS3Server(opts = {}) {
  const {
    bucket = 'test-bucket',
    // Random credentials, so nothing secret is hard-coded and SigV4 is really exercised.
    accessKeyId = randomBytes(10).toString('hex'),
    secretAccessKey = randomBytes(20).toString('hex'),
    domain,
    dataDir,
  } = opts;
  checkBucketName(bucket);
  const domains = [domain ?? []].flat();
  const bin = await findOrInstallS3sFs();
  const ownDir = dataDir === undefined;
  const root = ownDir ? await mkdtemp(path.join(os.tmpdir(), 's3s-fs-')) : path.resolve(dataDir);

  const argsFor = (port) => {
    const args = ['--host', HOST, '--port', String(port), '--access-key', accessKeyId, '--secret-key', secretAccessKey];
    // s3s matches the Host header *with* its port against --domain, so `localhost` alone
    // would read `test-bucket.localhost:PORT` as a bucket named after the whole host.
    for (const d of domains) args.push('--domain', d.includes(':') ? d : `${d}:${port}`);
    return [...args, root];
  };

  let started;
  try {
    await mkdir(path.join(root, bucket), { recursive: true });
    // The port can be taken between freePort() and s3s-fs binding it: retry a few times.
    for (let attempt = 1; !started; attempt++) {
      const port = await freePort();
      try {
        started = { port, ...(await spawnServer(bin, argsFor(port), port, ownDir ? root : undefined)) };
      } catch (err) {
        if (!err.addrInUse || attempt >= 3) throw err;
      }
    }
  } catch (err) {
    if (ownDir) await rm(root, { recursive: true, force: true });
    throw err;
  }

  const { child, exited, port } = started;

  let stopping;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      live.delete(child);
      if (ownDir) await rm(root, { recursive: true, force: true });
    })());

  return {
    endpoint: `http://${HOST}:${port}`,
    host: HOST,
    port,
    region: 'us-east-1',
    bucket,
    accessKeyId,
    secretAccessKey,
    dataDir: root,
    domain: domains[0],
    pid: child.pid,
    async createBucket(name) {
      checkBucketName(name);
      await mkdir(path.join(root, name), { recursive: true });
    },
    stop,
  };
}

async function main() {
  const { values } = parseArgs({
    options: { bucket: { type: 'string' }, domain: { type: 'string', multiple: true }, 'data-dir': { type: 'string' } },
  });
  const server = await startS3Server({ bucket: values.bucket, domain: values.domain, dataDir: values['data-dir'] });
  const keepAlive = setInterval(() => {}, 1 << 30); // the child is unref'd, so hold the loop open
  process.stdout.write(
    [
      `STORAGE_S3_ENDPOINT=${server.endpoint}`,
      `STORAGE_S3_REGION=${server.region}`,
      `STORAGE_S3_BUCKET=${server.bucket}`,
      `STORAGE_S3_ACCESS_KEY_ID=${server.accessKeyId}`,
      `STORAGE_S3_SECRET_ACCESS_KEY=${server.secretAccessKey}`,
      '',
    ].join('\n'),
  );
  process.stderr.write(`s3s-fs pid ${server.pid}, data in ${server.dataDir}; Ctrl-C to stop\n`);
  if (server.domain) process.stderr.write(`virtual-hosted style: http://${server.bucket}.${server.domain}:${server.port}/\n`);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, async () => {
      await server.stop();
      clearInterval(keepAlive);
    });
  }
}

function invokedDirectly() {
  try {
    return realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false; // no script path, e.g. `node -e`
  }
}

if (invokedDirectly()) {
  main().catch((err) => {
    process.stderr.write(`${err.stack ?? err}\n`);
    process.exit(1);
  });
}
