#!/usr/bin/env node
// Throwaway S3 servers on 127.0.0.1 for tests, `storage-s3-check` and benchmarks: s3s-fs
// (the default), Garage or moto, each with one bucket ready, random credentials and a
// temporary data directory removed by stop(). Node built-ins only, because this file ships
// in the npm package.
//
//   import { startS3Server, startServer } from './s3-server.mjs';
//   const s3 = await startS3Server({ domain: 'localhost' }); ... await s3.stop();
//   const garage = await startServer({ kind: 'garage' });
//
// CLI: `node scripts/s3-server.mjs [--server builtin|s3s-fs|garage|moto] [--bucket B] [--domain D]
// [--data-dir DIR]` prints STORAGE_S3_* lines and runs until SIGINT/SIGTERM.
//
//   builtin The package's own server (testing/serve.mjs, the startLocalS3 addon: the s3s-fs
//           0.14.1 library), run as a child process; needs the built addon, not cargo.
//   s3s-fs  s3s-fs 0.14.1: strict SigV4, a directory per bucket. Installed with `cargo install`
//           when missing (S3S_FS_BIN, PATH, $CARGO_INSTALL_ROOT/bin or ~/.cargo/bin).
//   garage  Garage 2.5.0, one node (--single-node), region "garage", sqlite metadata.
//           GARAGE_BIN, PATH or ~/.cargo/bin (`cargo install garage@2.5.0 --locked`).
//   moto    moto_server 5.x: broad S3 semantics, does NOT check signatures; keeps everything
//           in memory. MOTO_SERVER_BIN or PATH (`pip install "moto[server]"`).
//
// With a fixed `port` and `dataDir` a server can be killed and started again where it was,
// with the same objects (except on moto, whose bucket is created again, empty).
//
// startGarageCluster({ nodes: 3 }) runs Garage as a cluster: one process per node, replication
// factor 3, and kill(i) / start(i) for one node (not in the CLI).

import { spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { accessSync, constants, existsSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const S3S_FS_VERSION = '0.14.1';
export const GARAGE_VERSION = '2.5.0';
export const GARAGE_REGION = 'garage';
export const SERVER_KINDS = Object.freeze(['builtin', 's3s-fs', 'garage', 'moto']);
/** Kinds that are s3s-fs 0.14.1 (the built-in server is its library): same behaviour, same state files. */
export const isS3sFs = (kind) => kind === 's3s-fs' || kind === 'builtin';
const INSTALL_ARGS = ['install', `s3s-fs@${S3S_FS_VERSION}`, '--features', 'binary', '--locked'];
const EXE = process.platform === 'win32' ? '.exe' : '';
const HOST = '127.0.0.1';
const LOG_LIMIT = 64 * 1024;

/** The region a server of this kind signs with (Garage's comes from its config). */
export function regionOf(kind) {
  return kind === 'garage' ? GARAGE_REGION : 'us-east-1';
}

// ---- binaries ----------------------------------------------------------------------

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

/** `envVar`'s file (which must be executable), else `name` on PATH or in `dirs`. */
function findBinary(name, envVar, dirs = []) {
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`${envVar}=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  return findOnPath(name) ?? dirs.map((d) => path.join(d, name + EXE)).find(isExecutable);
}

function findS3sFs() {
  // `cargo install` puts binaries in $CARGO_INSTALL_ROOT/bin when set, else $CARGO_HOME/bin.
  const installRoot = process.env.CARGO_INSTALL_ROOT;
  return findBinary('s3s-fs', 'S3S_FS_BIN', [...(installRoot ? [path.join(installRoot, 'bin')] : []), cargoBinDir()]);
}

/** Path of the garage binary (GARAGE_BIN, PATH, ~/.cargo/bin), or undefined. */
export function findGarage() {
  return findBinary('garage', 'GARAGE_BIN', [cargoBinDir()]);
}

/** Path of moto_server (MOTO_SERVER_BIN, PATH), or undefined. */
export function findMoto() {
  return findBinary('moto_server', 'MOTO_SERVER_BIN');
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

// ---- signed requests (SigV4, for readiness checks and buckets) ---------------------

const sha256Hex = (data) => createHash('sha256').update(data).digest('hex');
const hmac = (key, data) => createHmac('sha256', key).update(data).digest();
// RFC 3986 encoding, as SigV4 wants for query strings.
const encode = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const cmp = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** Hex SHA-256 of a request body, for `payloadHash`. */
export function hashPayload(body) {
  return sha256Hex(body);
}

/**
 * SigV4 headers for a raw request (lowercase names): the given ones plus host, x-amz-date,
 * x-amz-content-sha256 and authorization. The URL's path must already be URI-encoded.
 */
export function signHeaders({ method, url, headers: given = {}, accessKeyId, secretAccessKey, region = 'us-east-1', payloadHash = 'UNSIGNED-PAYLOAD' }) {
  const u = new URL(url);
  const amzDate = new Date().toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  const headers = {};
  for (const [k, v] of Object.entries(given)) headers[k.toLowerCase()] = String(v);
  Object.assign(headers, { host: u.host, 'x-amz-date': amzDate, 'x-amz-content-sha256': payloadHash });

  const names = Object.keys(headers).sort();
  const query = [...u.searchParams]
    .map(([k, v]) => [encode(k), encode(v)])
    .sort(([k1, v1], [k2, v2]) => (k1 === k2 ? cmp(v1, v2) : cmp(k1, k2))) // by key, then value
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalRequest = [method, u.pathname, query, names.map((n) => `${n}:${headers[n].trim()}\n`).join(''), names.join(';'), payloadHash].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, day), region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  headers.authorization = `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return headers;
}

/** One signed request to `coords.endpoint` + `pathAndQuery` (already URI-encoded); the answer buffered. */
export function s3Request(coords, method, pathAndQuery, body) {
  const url = `${coords.endpoint}${pathAndQuery}`;
  const headers = signHeaders({
    method,
    url,
    headers: body === undefined ? {} : { 'content-length': Buffer.byteLength(body) },
    payloadHash: body === undefined ? 'UNSIGNED-PAYLOAD' : hashPayload(body),
    accessKeyId: coords.accessKeyId,
    secretAccessKey: coords.secretAccessKey,
    region: coords.region,
  });
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, timeout: 10_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 10 s`)));
    req.once('error', reject);
    req.end(body);
  });
}

// ---- processes -----------------------------------------------------------------------

// Any HTTP answer (403 without a signature is fine) means the server is serving.
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

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
  // s3s-fs keeps a bucket as a directory under the data dir, so refuse anything path-like.
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) throw new Error(`invalid bucket name: ${JSON.stringify(name)}`);
}

/**
 * Spawns `bin` until it answers HTTP on its port and `ready()` holds. A fixed port that is
 * still taken (right after a kill) is tried again; without one, another free port is.
 * Rejects with the process output otherwise.
 */
async function launch({ name, bin, args, env, port: fixedPort, ready, timeoutMs, tempDir }) {
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await freePort());
    const child = spawn(bin, args(port), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    track(child, tempDir);
    let log = '';
    const append = (chunk) => {
      log = (log + chunk).slice(-LOG_LIMIT);
    };
    // Servers log to stdout and fatal errors to stderr: keep both for error messages.
    child.stdout.setEncoding('utf8').on('data', append);
    child.stderr.setEncoding('utf8').on('data', append);
    let dead = false;
    const exited = new Promise((resolve) => {
      child.once('error', (err) => {
        append(`\nspawn error: ${err.message}`);
        resolve();
      });
      child.once('exit', () => resolve());
    }).then(() => {
      dead = true;
      live.delete(child);
    });

    const deadline = Date.now() + timeoutMs;
    while (!dead && Date.now() < deadline) {
      if ((await probe(port)) && !dead && (await ready(port).catch(() => false))) {
        // A forgotten server must not keep the parent alive; the exit hook kills it.
        child.unref();
        child.stdout.unref?.();
        child.stderr.unref?.();
        return { child, exited, port };
      }
      await sleep(50);
    }
    const why = dead ? `exited (code ${child.exitCode}, signal ${child.signalCode})` : `was not ready within ${timeoutMs} ms`;
    if (!dead) child.kill('SIGKILL');
    await exited;
    if (attempt < (fixedPort ? 5 : 3) && /in use|AddrInUse/i.test(log)) {
      if (fixedPort) await sleep(300);
      continue;
    }
    throw new Error(`${name} on ${HOST}:${port} ${why} (attempt ${attempt}); output:\n${log.trim() || '(none)'}`);
  }
}

/**
 * Garage's config, kept with the data so that a restart uses the same ports, secret and paths.
 * A single node (the defaults) gets replication factor 1, an RPC port of its own and a fresh
 * secret; the nodes of a cluster (startGarageCluster) share `rpcSecret` and the factor.
 */
async function writeGarageConfig(dataDir, port, { replicationFactor = 1, rpcPort, rpcSecret } = {}) {
  const config = path.join(dataDir, 'garage.toml');
  if (existsSync(config)) return config;
  rpcPort ??= await freePort();
  rpcSecret ??= randomBytes(32).toString('hex');
  const lines = [
    `metadata_dir = ${JSON.stringify(path.join(dataDir, 'meta'))}`,
    `data_dir = ${JSON.stringify(path.join(dataDir, 'data'))}`,
    'db_engine = "sqlite"',
    `replication_factor = ${replicationFactor}`,
    // Test data is random: compressing it only costs CPU on a 2-core machine.
    'compression_level = "none"',
    `rpc_bind_addr = "${HOST}:${rpcPort}"`,
    `rpc_public_addr = "${HOST}:${rpcPort}"`,
    `rpc_secret = "${rpcSecret}"`,
    '',
    '[s3_api]',
    `s3_region = "${GARAGE_REGION}"`,
    `api_bind_addr = "${HOST}:${port}"`,
    // Virtual-hosted style: <bucket>.localhost:<any port>.
    'root_domain = ".localhost"',
    '',
  ];
  writeFileSync(config, lines.join('\n'), { mode: 0o600 });
  return config;
}

function requireGarage() {
  const bin = findGarage();
  if (!bin) throw new Error(`garage not found (set GARAGE_BIN or install it: cargo install garage@${GARAGE_VERSION} --locked)`);
  return bin;
}

/** How to run each kind: binary, arguments, environment, readiness. */
const KINDS = {
  's3s-fs': async ({ dataDir, bucket, accessKeyId, secretAccessKey, domains }) => {
    await mkdir(path.join(dataDir, bucket), { recursive: true });
    return {
      bin: await findOrInstallS3sFs(),
      args: (port) => {
        const args = ['--host', HOST, '--port', String(port), '--access-key', accessKeyId, '--secret-key', secretAccessKey];
        // s3s matches the Host header *with* its port against --domain, so `localhost` alone
        // would read `test-bucket.localhost:PORT` as a bucket named after the whole host.
        for (const d of domains) args.push('--domain', d.includes(':') ? d : `${d}:${port}`);
        return [...args, dataDir];
      },
      ready: async () => true,
      timeoutMs: 15_000,
    };
  },
  // The package's own server (testing/, startLocalS3) in a process of its own, so that a test
  // can kill it and start it again on the same port and directory; no cargo needed.
  builtin: async ({ dataDir, bucket, accessKeyId, secretAccessKey, domains }) => ({
    bin: process.execPath,
    args: (port) => [
      path.join(ROOT, 'testing', 'serve.mjs'),
      ...['--port', String(port), '--dir', dataDir, '--bucket', bucket, '--access-key', accessKeyId, '--secret-key', secretAccessKey],
      ...domains.flatMap((d) => ['--domain', d]),
    ],
    ready: async () => true,
    timeoutMs: 15_000,
  }),
  garage: async ({ dataDir, port, bucket, accessKeyId, secretAccessKey, coords }) => {
    const bin = requireGarage();
    const config = await writeGarageConfig(dataDir, port);
    return {
      bin,
      // --single-node lays out this one node; --default-bucket creates the key (imported with
      // our id and secret) and the bucket with read/write/owner rights. Both are idempotent,
      // so a restart on the same directory is fine.
      args: () => ['-c', config, 'server', '--single-node', '--default-bucket'],
      env: {
        GARAGE_DEFAULT_ACCESS_KEY: accessKeyId,
        GARAGE_DEFAULT_SECRET_KEY: secretAccessKey,
        GARAGE_DEFAULT_BUCKET: bucket,
        RUST_LOG: process.env.RUST_LOG ?? 'garage=warn',
      },
      // Ready when the bucket answers a signed HEAD.
      ready: async () => (await s3Request(coords, 'HEAD', `/${bucket}`)).status === 200,
      timeoutMs: 30_000,
    };
  },
  moto: async ({ dataDir, bucket, coords }) => {
    const bin = findMoto();
    if (!bin) throw new Error('moto_server not found (set MOTO_SERVER_BIN or install it: pip install "moto[server]")');
    return {
      bin,
      args: (port) => ['-H', HOST, '-p', String(port)],
      // Large bodies spool to TMPDIR: keep them in the server's directory.
      env: { TMPDIR: dataDir },
      // moto keeps state in memory: (re)create the bucket, then it is ready.
      ready: async () => {
        const res = await s3Request(coords, 'PUT', `/${bucket}`);
        return res.status === 200 || /BucketAlreadyOwnedByYou/.test(res.body);
      },
      timeoutMs: 30_000,
    };
  },
};

/**
 * Starts a server of `opts.kind` (default s3s-fs) on 127.0.0.1 with a bucket ready to use.
 * @param {import('./s3-server.d.mts').S3ServerOptions} [opts]
 * @returns {Promise<import('./s3-server.d.mts').S3Server>}
 */
export async function startServer(opts = {}) {
  const {
    kind = 's3s-fs',
    bucket = 'test-bucket',
    // Random credentials, so nothing secret is hard-coded and SigV4 is really exercised.
    accessKeyId = randomBytes(10).toString('hex'),
    secretAccessKey = randomBytes(20).toString('hex'),
    domain,
  } = opts;
  if (!KINDS[kind]) throw new Error(`unknown server kind ${JSON.stringify(kind)}: expected one of ${SERVER_KINDS.join(', ')}`);
  checkBucketName(bucket);
  const domains = [domain ?? []].flat();
  const region = regionOf(kind);
  const ownDir = opts.dataDir === undefined;
  const dataDir = ownDir ? await mkdtemp(path.join(os.tmpdir(), `s3-${kind}-`)) : path.resolve(opts.dataDir);

  let started;
  try {
    await mkdir(dataDir, { recursive: true });
    // Garage keeps its port in its config and moto's readiness check needs it: pick it first.
    const port = opts.port ?? (isS3sFs(kind) ? undefined : await freePort());
    const coords = { endpoint: `http://${HOST}:${port}`, region, accessKeyId, secretAccessKey };
    const how = await KINDS[kind]({ dataDir, port, bucket, accessKeyId, secretAccessKey, domains, coords });
    started = await launch({ name: kind, port, tempDir: ownDir ? dataDir : undefined, ...how });
  } catch (err) {
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }

  const { child, exited, port } = started;
  const endpoint = `http://${HOST}:${port}`;
  const running = () => child.exitCode === null && child.signalCode === null;
  let stopping;
  return {
    kind,
    endpoint,
    host: HOST,
    port,
    region,
    bucket,
    accessKeyId,
    secretAccessKey,
    dataDir,
    domain: domains[0],
    pid: child.pid,
    exited,
    async kill(signal = 'SIGKILL') {
      if (running()) child.kill(signal);
      await exited;
    },
    stop: () =>
      (stopping ??= (async () => {
        if (running()) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
        live.delete(child);
        if (ownDir) await rm(dataDir, { recursive: true, force: true });
      })()),
    async createBucket(name) {
      checkBucketName(name);
      if (isS3sFs(kind)) {
        await mkdir(path.join(dataDir, name), { recursive: true });
        return;
      }
      const res = await s3Request({ endpoint, region, accessKeyId, secretAccessKey }, 'PUT', `/${name}`);
      if (res.status !== 200) throw new Error(`CreateBucket ${name} answered ${res.status}: ${res.body}`);
    },
  };
}

/**
 * Starts s3s-fs. `domain` may be a list, e.g. ['localhost', `localhost:${proxyPort}`] so that
 * requests relayed by a proxy (whose port is in the signed Host header) are understood too.
 */
export function startS3Server(opts = {}) {
  return startServer({ ...opts, kind: 's3s-fs' });
}

/** Starts Garage (one node). */
export function startGarage(opts = {}) {
  return startServer({ ...opts, kind: 'garage' });
}

/** Starts moto_server. */
export function startMoto(opts = {}) {
  return startServer({ ...opts, kind: 'moto' });
}

// ---- a Garage cluster ------------------------------------------------------------------

/** `count` distinct 127.0.0.1 ports nobody listens on (right now): all held open at once. */
async function freePorts(count) {
  const servers = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, HOST, resolve);
      });
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => (s.listening ? s.close(resolve) : resolve()))));
  }
}

/** `garage -c <config> ...args` (an admin command, sent over RPC to that node); its stdout. */
function garageCli(bin, config, args, timeoutMs = 20_000) {
  // Names the command without its arguments: `key import` carries the secret key.
  const what = `garage ${args.filter((a) => /^[a-z]+$/.test(a)).slice(0, 2).join(' ')}`;
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['-c', config, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'garage=warn' },
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c) => (err += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${what}: ${e.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${what} failed (${signal ? `killed by ${signal}` : `exit code ${code}`}): ${(err || out).trim().slice(-2000)}`));
    });
  });
}

/** `fn()` until it resolves, every 200 ms for at most `timeoutMs`; then its last error. */
async function retrying(fn, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
      await sleep(200);
    }
  }
}

/**
 * Starts `nodes` Garage processes on 127.0.0.1 as one cluster: each with its own directory
 * (config, metadata, blocks) and free S3 and RPC ports, one shared RPC secret, replication
 * factor `replicationFactor` (default min(nodes, 3)). The nodes are connected, each gets a
 * role (zone dc1, 1 GB) in layout version 1, then the key is imported and the bucket created
 * with read/write/owner rights; ready once a signed HEAD of the bucket answers 200 on every
 * node. `kill(i)` and `start(i)` stop and restart one node on the same ports and directory;
 * `stop()` stops them all and removes the directory.
 * @param {import('./s3-server.d.mts').GarageClusterOptions} [opts]
 * @returns {Promise<import('./s3-server.d.mts').GarageCluster>}
 */
export async function startGarageCluster(opts = {}) {
  const {
    nodes: count = 3,
    bucket = 'test-bucket',
    accessKeyId = randomBytes(10).toString('hex'),
    secretAccessKey = randomBytes(20).toString('hex'),
  } = opts;
  const replicationFactor = opts.replicationFactor ?? Math.min(count, 3);
  if (!Number.isInteger(count) || count < 1) throw new Error(`nodes must be a positive integer, got ${count}`);
  if (!Number.isInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > count) {
    throw new Error(`replicationFactor must be an integer from 1 to nodes (${count}), got ${replicationFactor}`);
  }
  checkBucketName(bucket);
  const bin = requireGarage();
  const root = await mkdtemp(path.join(os.tmpdir(), 's3-garage-cluster-'));
  const ports = await freePorts(2 * count);
  const rpcSecret = randomBytes(32).toString('hex');
  /** @type {{ dir: string, config: string, port: number, endpoint: string, id?: string, addr?: string, proc?: { child: import('node:child_process').ChildProcess, exited: Promise<void> } }[]} */
  const node = [];
  const running = (i) => {
    const child = node[i]?.proc?.child;
    return !!child && child.exitCode === null && child.signalCode === null;
  };
  const coordsOf = (i) => ({ endpoint: node[i].endpoint, region: GARAGE_REGION, accessKeyId, secretAccessKey });
  const bucketAnswers = async (i) => (await s3Request(coordsOf(i), 'HEAD', `/${bucket}`)).status === 200;
  const cli = (i, args) => garageCli(bin, node[i].config, args);
  const spawnNode = async (i, ready) => {
    node[i].proc = await launch({
      name: `garage node ${i}`,
      bin,
      args: () => ['-c', node[i].config, 'server'],
      env: { RUST_LOG: process.env.RUST_LOG ?? 'garage=warn' },
      port: node[i].port,
      ready,
      timeoutMs: 30_000,
      tempDir: root,
    });
  };
  // Node j answers for every running node in `garage stats -a` (an RPC from j to each).
  // A node keeps its outgoing connection to a peer that died until a write on it fails (the
  // next ping, up to 15 s later), and `node connect` does nothing while that connection is
  // listed; requests sent on it meanwhile wait. A restart is only over once every node has
  // answered through a live connection.
  const meshReady = async () => {
    const up = node.map((_, j) => j).filter(running);
    for (const j of up) {
      // Short: an answer stuck on a dead connection is given up, which also makes the node
      // write on that connection again and so find it dead (about 2 s instead of 5-15).
      const out = await garageCli(bin, node[j].config, ['stats', '-a'], 1500);
      const sections = new Map([...out.matchAll(/==== NODE \[([0-9a-f]+)\] ====\n([\s\S]*?)(?=\n====)/g)].map((m) => [m[1], m[2]]));
      for (const k of up) {
        const section = [...sections].find(([id]) => node[k].id.startsWith(id))?.[1];
        if (!section?.includes('Node ID:')) throw new Error(`garage cluster: node ${j} gets no statistics from node ${k} yet: ${section?.trim() ?? '(not listed)'}`);
      }
    }
  };
  const killNode = async (i, signal) => {
    if (running(i)) node[i].proc.child.kill(signal);
    await node[i].proc?.exited;
  };

  try {
    for (let i = 0; i < count; i++) {
      const dir = path.join(root, `node-${i}`);
      await mkdir(dir, { recursive: true });
      const port = ports[i];
      const config = await writeGarageConfig(dir, port, { replicationFactor, rpcPort: ports[count + i], rpcSecret });
      node.push({ dir, config, port, endpoint: `http://${HOST}:${port}` });
    }
    // Without a layout a node answers S3 requests with errors: serving HTTP is enough here.
    await Promise.all(node.map((_, i) => spawnNode(i, async () => true)));
    for (let i = 0; i < count; i++) {
      // "<hex id>@127.0.0.1:<rpc port>" (rpc_public_addr)
      node[i].addr = (await cli(i, ['node', 'id', '--quiet'])).trim().split(/\s+/)[0];
      node[i].id = node[i].addr.split('@')[0];
    }
    // Every pair, both ways: a node that was connected to does not open its own connection
    // back at once, and until it does its requests to that peer fail ("Not connected").
    for (let i = 0; i < count; i++) {
      for (let j = 0; j < count; j++) if (i !== j) await retrying(() => cli(i, ['node', 'connect', node[j].addr]));
    }
    await retrying(() => cli(0, ['layout', 'assign', '-z', 'dc1', '-c', '1G', ...node.map((n) => n.id)]));
    await cli(0, ['layout', 'apply', '--version', '1']);
    await cli(0, ['key', 'import', '--yes', accessKeyId, secretAccessKey]);
    await cli(0, ['bucket', 'create', bucket]);
    await cli(0, ['bucket', 'allow', '--read', '--write', '--owner', bucket, '--key', accessKeyId]);
    // The layout, key and bucket reach the other nodes asynchronously.
    await retrying(async () => {
      for (let i = 0; i < count; i++) if (!(await bucketAnswers(i))) throw new Error(`garage cluster: node ${i} does not answer HEAD /${bucket} with 200 yet`);
    }, 30_000);
    await retrying(meshReady, 30_000);
  } catch (err) {
    await Promise.all(node.map((_, i) => killNode(i, 'SIGKILL')));
    await rm(root, { recursive: true, force: true });
    throw err;
  }

  let stopping;
  return {
    kind: 'garage',
    nodes: count,
    replicationFactor,
    endpoint: node[0].endpoint,
    endpoints: node.map((n) => n.endpoint),
    ports: node.map((n) => n.port),
    nodeIds: node.map((n) => n.id),
    host: HOST,
    region: GARAGE_REGION,
    bucket,
    accessKeyId,
    secretAccessKey,
    dataDir: root,
    running,
    pid: (i) => node[i].proc.child.pid,
    async kill(i, signal = 'SIGKILL') {
      if (!node[i]) throw new Error(`no node ${i} (0..${count - 1})`);
      await killNode(i, signal);
    },
    async start(i) {
      if (!node[i]) throw new Error(`no node ${i} (0..${count - 1})`);
      if (stopping) throw new Error('the cluster was stopped');
      if (running(i)) throw new Error(`garage node ${i} is running`);
      // The node knows its peers from its metadata; connecting both ways at once saves
      // waiting for the peers' reconnection timers (a peer whose old connection is not yet
      // found dead ignores the connect: meshReady waits for that).
      await spawnNode(i, () => bucketAnswers(i));
      for (let j = 0; j < count; j++) {
        if (j === i || !running(j)) continue;
        await retrying(() => cli(i, ['node', 'connect', node[j].addr]));
        await retrying(() => cli(j, ['node', 'connect', node[i].addr]));
      }
      await retrying(meshReady, 60_000);
    },
    async status(i = node.findIndex((_, j) => running(j))) {
      if (i < 0) throw new Error('no garage node is running');
      return cli(i, ['status']);
    },
    stop: () =>
      (stopping ??= (async () => {
        await Promise.all(
          node.map(async (_, i) => {
            if (!running(i)) return;
            node[i].proc.child.kill('SIGTERM');
            const timer = setTimeout(() => node[i].proc.child.kill('SIGKILL'), 5000);
            await node[i].proc.exited;
            clearTimeout(timer);
          }),
        );
        await rm(root, { recursive: true, force: true });
      })()),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      server: { type: 'string', default: 's3s-fs' },
      bucket: { type: 'string' },
      domain: { type: 'string', multiple: true },
      'data-dir': { type: 'string' },
    },
  });
  const server = await startServer({ kind: values.server, bucket: values.bucket, domain: values.domain, dataDir: values['data-dir'] });
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
  process.stderr.write(`${server.kind} pid ${server.pid}, data in ${server.dataDir}; Ctrl-C to stop\n`);
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
