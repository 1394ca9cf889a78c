// The S3 servers the integration suite runs against, picked with S3_TEST_SERVER:
//
//   s3s-fs (default)  s3s-fs 0.14.1, strict SigV4, a directory per bucket
//   garage            Garage 2.5.0, one node (--single-node), region "garage", sqlite metadata
//   moto              moto_server 5.x: broad S3 semantics, does NOT check signatures
//
// Every server listens on a free 127.0.0.1 port, keeps its data in a temporary directory,
// has one bucket ready and random credentials, and is stopped (directory removed) by stop().
// With a fixed `port` and `dataDir` a server can be killed and started again where it was
// (faults.test.ts); moto keeps everything in memory, so a restarted moto is empty (its bucket
// is created again).
//
// Binaries: s3s-fs via scripts/s3-server.mjs (cargo install when missing); garage from
// GARAGE_BIN, PATH or ~/.cargo/bin (`cargo install garage@2.5.0 --locked`); moto_server from
// MOTO_SERVER_BIN or PATH (`pip install "moto[server]"`). .ci/run installs both.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { findOrInstallS3sFs, freePort, isExecutable, startS3Server } from '../../scripts/s3-server.mjs';
import { hashPayload, signHeaders } from './sigv4';

export const SERVER_KINDS = ['s3s-fs', 'garage', 'moto'] as const;
export type ServerKind = (typeof SERVER_KINDS)[number];

export const GARAGE_VERSION = '2.5.0';
export const GARAGE_REGION = 'garage';
const HOST = '127.0.0.1';
const LOG_LIMIT = 16 * 1024;

/** The region a server of this kind signs with (Garage's comes from its config). */
export function regionOf(kind: ServerKind): string {
  return kind === 'garage' ? GARAGE_REGION : 'us-east-1';
}

/** The kind S3_TEST_SERVER names (default s3s-fs). */
export function selectedServerKind(): ServerKind {
  const value = process.env.S3_TEST_SERVER || 's3s-fs';
  if (!(SERVER_KINDS as readonly string[]).includes(value)) {
    throw new Error(`S3_TEST_SERVER=${value}: expected one of ${SERVER_KINDS.join(', ')}`);
  }
  return value as ServerKind;
}

export interface TestServer {
  kind: ServerKind;
  /** http://127.0.0.1:PORT */
  endpoint: string;
  host: string;
  port: number;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /**
   * The server's directory: s3s-fs keeps the buckets (and multipart state) in it, Garage its
   * config, metadata and blocks, moto only its spooled large bodies.
   */
  dataDir: string;
  /** Base domain for virtual-hosted style (`http://<bucket>.<domain>:<port>`), as given. */
  domain?: string;
  pid: number;
  /** Resolves once the process exited. */
  exited: Promise<void>;
  /** Sends `signal` (default SIGKILL) and waits for the exit; keeps the directory. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Stops the server and removes a temporary directory; safe to call more than once. */
  stop(): Promise<void>;
  /** Creates another bucket the server's key can use. */
  createBucket(name: string): Promise<void>;
}

export interface StartOptions {
  kind?: ServerKind;
  /** Default "test-bucket". */
  bucket?: string;
  /** Default: random hex. */
  accessKeyId?: string;
  secretAccessKey?: string;
  /**
   * Base domain(s) for virtual-hosted style. s3s-fs matches the Host header with its port, so
   * entries without a port get the server's own (add `localhost:<proxyPort>` for a proxy in
   * front); Garage (root_domain ".localhost") and moto ignore the port.
   */
  domain?: string | string[];
  /** A fixed port (to start a killed server again where it was). Default: a free one. */
  port?: number;
  /** Keep the data here, not removed by stop() (restarts see the same objects). */
  dataDir?: string;
}

export { freePort };

// ---- binaries ----------------------------------------------------------------------


function findBinary(name: string, envVar: string, extraDirs: string[], hint: string): string {
  const fromEnv = process.env[envVar];
  if (fromEnv) {
    if (!isExecutable(fromEnv)) throw new Error(`${envVar}=${fromEnv} is not an executable file`);
    return fromEnv;
  }
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean), ...extraDirs];
  const found = dirs.map((d) => path.join(d, name)).find(isExecutable);
  if (!found) throw new Error(`${name} not found (set ${envVar} or install it: ${hint})`);
  return found;
}

const cargoBin = () => path.join(process.env.CARGO_HOME ?? path.join(os.homedir(), '.cargo'), 'bin');
export const garageBinary = () => findBinary('garage', 'GARAGE_BIN', [cargoBin()], `cargo install garage@${GARAGE_VERSION} --locked`);
export const motoBinary = () => findBinary('moto_server', 'MOTO_SERVER_BIN', [], 'pip install "moto[server]"');

// ---- signed requests (no dependency on the library under test) ----------------------

export interface Coords {
  endpoint: string;
  region: string;
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
}

/** One SigV4-signed request to `coords.endpoint` + `pathAndQuery` (already URI-encoded). */
export function s3Request(
  coords: Omit<Coords, 'bucket'>,
  method: string,
  pathAndQuery: string,
  body?: string | Buffer,
): Promise<{ status: number; body: string }> {
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
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within 10 s`)));
    req.once('error', reject);
    req.end(body);
  });
}

const xmlValues = (xml: string, tag: string) => [...xml.matchAll(new RegExp(`<${tag}>([^<]*)</${tag}>`, 'g'))].map((m) => m[1]);

/** ListMultipartUploads on the bucket: `<key> <uploadId>` per unfinished upload. */
export async function listMultipartUploads(coords: Coords): Promise<string[]> {
  const res = await s3Request(coords, 'GET', `/${coords.bucket}?uploads=`);
  if (res.status !== 200) throw new Error(`ListMultipartUploads answered ${res.status}: ${res.body}`);
  return [...res.body.matchAll(/<Upload>([\s\S]*?)<\/Upload>/g)]
    .map((m) => `${xmlValues(m[1], 'Key')[0]} ${xmlValues(m[1], 'UploadId')[0]}`)
    .sort();
}

/** ListObjectsV2 on the bucket (first 1,000 keys). */
export async function listObjectKeys(coords: Coords, prefix = ''): Promise<string[]> {
  const res = await s3Request(coords, 'GET', `/${coords.bucket}?list-type=2&prefix=${encodeURIComponent(prefix)}`);
  if (res.status !== 200) throw new Error(`ListObjectsV2 answered ${res.status}: ${res.body}`);
  return xmlValues(res.body, 'Key').sort();
}

// State files s3s-fs 0.14.1 keeps for an unfinished multipart upload (all in the data dir root):
//   .upload-<uuid>.json                                    upload id -> access key
//   .upload_id-<uuid>.part-<n>                             uploaded parts
//   .bucket-<b64>.object-<b64>.upload-<uuid>.metadata.json metadata given at create
const UPLOAD_STATE = /^\.upload[-_]|\.upload-[0-9a-f-]{36}\.metadata\.json$/;

/** Paths (relative to dataDir) of s3s-fs multipart upload state files. */
export function listS3sFsLeftovers(dataDir: string): string[] {
  return readdirSync(dataDir, { recursive: true, encoding: 'utf8' })
    .filter((rel) => UPLOAD_STATE.test(path.basename(rel)))
    .sort();
}

/**
 * Unfinished uploads the server holds: on s3s-fs (no ListMultipartUploads) its multipart state
 * files, plus with `tempFiles` the `.tmp.*` files of PutObjects still being received; on
 * Garage, moto and external servers ListMultipartUploads on the bucket.
 */
export async function unfinishedUploads(
  server: Coords & { kind?: ServerKind | 'external'; server?: ServerKind | 'external'; dataDir?: string },
  { tempFiles = false } = {},
): Promise<string[]> {
  const kind = server.kind ?? server.server;
  if (kind === 's3s-fs') {
    if (!server.dataDir) throw new Error('an s3s-fs server without a data dir');
    const temp = tempFiles ? readdirSync(server.dataDir).filter((f) => f.startsWith('.tmp.')) : [];
    return [...listS3sFsLeftovers(server.dataDir), ...temp];
  }
  return listMultipartUploads(server);
}

// ---- processes -----------------------------------------------------------------------

// Children and directories to clean up if the test process exits without stop().
const live = new Map<ChildProcess, string | undefined>();
let exitHookInstalled = false;
function track(child: ChildProcess, tempDir: string | undefined) {
  live.set(child, tempDir);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const [c, dir] of live) {
      c.kill('SIGKILL');
      if (dir) rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** Any HTTP answer on the port. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: HOST, port, path: '/', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
  });
}

interface Spawned {
  child: ChildProcess;
  exited: Promise<void>;
}

/**
 * Spawns `bin` until `ready()` holds (retrying a port that is still taken, as right after a
 * kill); rejects with the process output otherwise.
 */
async function spawnReady(
  name: string,
  bin: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; port: number; ready: () => Promise<boolean>; timeoutMs: number; tempDir?: string },
): Promise<Spawned> {
  for (let attempt = 1; ; attempt++) {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    track(child, opts.tempDir);
    let log = '';
    const append = (chunk: string) => (log = (log + chunk).slice(-LOG_LIMIT));
    child.stdout!.setEncoding('utf8').on('data', append);
    child.stderr!.setEncoding('utf8').on('data', append);
    let dead = false;
    const exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        append(`\nspawn error: ${err.message}`);
        dead = true;
        resolve();
      });
      child.once('exit', () => {
        dead = true;
        resolve();
      });
    });
    exited.then(() => live.delete(child));
    const deadline = Date.now() + opts.timeoutMs;
    while (!dead && Date.now() < deadline) {
      if ((await answers(opts.port)) && !dead && (await opts.ready().catch(() => false))) {
        // A forgotten server must not keep the test process alive; the exit hook kills it.
        child.unref();
        (child.stdout as unknown as { unref?: () => void }).unref?.();
        (child.stderr as unknown as { unref?: () => void }).unref?.();
        return { child, exited };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!dead) child.kill('SIGKILL');
    await exited;
    live.delete(child);
    const why = dead ? `exited (code ${child.exitCode}, signal ${child.signalCode})` : `was not ready within ${opts.timeoutMs} ms`;
    if (attempt < 5 && /in use|AddrInUse/i.test(log)) {
      await new Promise((r) => setTimeout(r, 300));
      continue;
    }
    throw new Error(`${name} on ${HOST}:${opts.port} ${why} (attempt ${attempt}); output:\n${log.trim() || '(none)'}`);
  }
}

function checkBucketName(name: string) {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) throw new Error(`invalid bucket name: ${JSON.stringify(name)}`);
}

/** Starts a server of `opts.kind` (default: S3_TEST_SERVER) with a bucket ready to use. */
export async function startTestServer(opts: StartOptions = {}): Promise<TestServer> {
  const kind = opts.kind ?? selectedServerKind();
  const bucket = opts.bucket ?? 'test-bucket';
  checkBucketName(bucket);
  // Random credentials, so nothing secret is hard-coded and SigV4 is really exercised.
  const accessKeyId = opts.accessKeyId ?? randomBytes(10).toString('hex');
  const secretAccessKey = opts.secretAccessKey ?? randomBytes(20).toString('hex');
  const domains = [opts.domain ?? []].flat();

  // The shared and private s3s-fs servers: exactly what scripts/s3-server.mjs starts.
  if (kind === 's3s-fs' && opts.port === undefined) {
    const s = await startS3Server({ bucket, accessKeyId, secretAccessKey, domain: opts.domain, dataDir: opts.dataDir });
    const gone = () => {
      try {
        process.kill(s.pid, 0);
        return false;
      } catch {
        return true;
      }
    };
    // Polled with unref'd timers: a live server must not keep the process alive.
    const exited = (async () => {
      while (!gone()) await new Promise((r) => setTimeout(r, 100).unref());
    })();
    return {
      ...s,
      kind,
      exited,
      kill: async (signal = 'SIGKILL') => {
        if (!gone()) process.kill(s.pid, signal);
        await exited;
      },
    };
  }

  const ownDir = opts.dataDir === undefined;
  const dataDir = ownDir ? await mkdtemp(path.join(os.tmpdir(), `s3-${kind}-`)) : path.resolve(opts.dataDir!);
  mkdirSync(dataDir, { recursive: true });
  const port = opts.port ?? (await freePort());
  const endpoint = `http://${HOST}:${port}`;
  const region = regionOf(kind);
  const coords: Coords = { endpoint, region, bucket, accessKeyId, secretAccessKey };
  const tempDir = ownDir ? dataDir : undefined;

  let spawned: Spawned;
  try {
    if (kind === 's3s-fs') {
      mkdirSync(path.join(dataDir, bucket), { recursive: true });
      const args = ['--host', HOST, '--port', String(port), '--access-key', accessKeyId, '--secret-key', secretAccessKey];
      for (const d of domains) args.push('--domain', d.includes(':') ? d : `${d}:${port}`);
      spawned = await spawnReady('s3s-fs', await findOrInstallS3sFs(), [...args, dataDir], { port, ready: async () => true, timeoutMs: 15_000, tempDir });
    } else if (kind === 'garage') {
      const config = path.join(dataDir, 'garage.toml');
      if (!existsSync(config)) {
        // Kept with the data, so a restart uses the same RPC port, secret and paths.
        const rpcPort = await freePort();
        writeFileSync(
          config,
          [
            `metadata_dir = ${JSON.stringify(path.join(dataDir, 'meta'))}`,
            `data_dir = ${JSON.stringify(path.join(dataDir, 'data'))}`,
            'db_engine = "sqlite"',
            'replication_factor = 1',
            // Test data is random: compressing it only costs CPU on a 2-core machine.
            'compression_level = "none"',
            `rpc_bind_addr = "${HOST}:${rpcPort}"`,
            `rpc_public_addr = "${HOST}:${rpcPort}"`,
            `rpc_secret = "${randomBytes(32).toString('hex')}"`,
            '',
            '[s3_api]',
            `s3_region = "${GARAGE_REGION}"`,
            `api_bind_addr = "${HOST}:${port}"`,
            // Virtual-hosted style: <bucket>.localhost:<any port>.
            'root_domain = ".localhost"',
            '',
          ].join('\n'),
          { mode: 0o600 },
        );
      }
      // --single-node lays out this one node; --default-bucket creates the key (imported with
      // our id and secret) and the bucket with read/write/owner rights. Both are idempotent,
      // so a restart on the same directory is fine.
      spawned = await spawnReady('garage', garageBinary(), ['-c', config, 'server', '--single-node', '--default-bucket'], {
        port,
        env: {
          GARAGE_DEFAULT_ACCESS_KEY: accessKeyId,
          GARAGE_DEFAULT_SECRET_KEY: secretAccessKey,
          GARAGE_DEFAULT_BUCKET: bucket,
          RUST_LOG: process.env.RUST_LOG ?? 'garage=warn',
        },
        // Ready when the bucket answers a signed HEAD.
        ready: async () => (await s3Request(coords, 'HEAD', `/${bucket}`)).status === 200,
        timeoutMs: 30_000,
        tempDir,
      });
    } else {
      spawned = await spawnReady('moto_server', motoBinary(), ['-H', HOST, '-p', String(port)], {
        port,
        // Large bodies spool to TMPDIR: keep them in the server's directory.
        env: { TMPDIR: dataDir },
        // moto keeps state in memory: (re)create the bucket, then it is ready.
        ready: async () => {
          const res = await s3Request(coords, 'PUT', `/${bucket}`);
          return res.status === 200 || /BucketAlreadyOwnedByYou/.test(res.body);
        },
        timeoutMs: 30_000,
        tempDir,
      });
    }
  } catch (err) {
    if (ownDir) await rm(dataDir, { recursive: true, force: true });
    throw err;
  }

  const { child, exited } = spawned;
  const kill = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      live.delete(child);
      if (ownDir) await rm(dataDir, { recursive: true, force: true });
    })());

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
    pid: child.pid!,
    exited,
    kill,
    stop,
    async createBucket(name: string) {
      checkBucketName(name);
      const res = await s3Request(coords, 'PUT', `/${name}`);
      if (res.status !== 200) throw new Error(`CreateBucket ${name} answered ${res.status}: ${res.body}`);
    },
  };
}
