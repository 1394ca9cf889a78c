// The check CLI (bin/check.mjs, `npm run check`): against the test server, against an
// endpoint that accepts connections and never answers, and with wrong credentials. The
// check is run as a user runs it: a child process, STORAGE_S3_* in its environment.
import { execFile } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testServer } from './helpers/s3';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const s3 = testServer();

interface Step {
  name: string;
  ok: boolean;
  ms: number;
  reason?: string;
  hint?: string;
  error?: string;
}
interface Report {
  target: string;
  checked: string;
  passed: number;
  failed: number;
  steps: Step[];
}

function runCheck(env: Record<string, string>, args: string[] = []): Promise<{ code: number; stdout: string; ms: number }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STORAGE_'))) as Record<string, string>;
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(root, 'bin', 'check.mjs'), ...args], { env: { ...clean, ...env }, timeout: 120_000 }, (err, stdout) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, ms: Math.round(performance.now() - t0) });
    });
  });
}

const envFor = (endpoint: string, secret = s3.secretAccessKey) => ({
  STORAGE_S3_ENDPOINT: endpoint,
  STORAGE_S3_REGION: s3.region,
  STORAGE_S3_BUCKET: s3.bucket,
  STORAGE_S3_ACCESS_KEY_ID: s3.accessKeyId,
  STORAGE_S3_SECRET_ACCESS_KEY: secret,
});

describe('storage-s3-check', () => {
  // Accepts every connection and never answers: the hardest case for a check to end.
  let silent: net.Server;
  let silentPort: number;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentPort = (silent.address() as net.AddressInfo).port;
  });
  afterAll(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  it('against the test server: every step passes, exit 0, and the summary names the service it checked', async () => {
    const { code, stdout } = await runCheck(envFor(s3.endpoint));
    expect(code).toBe(0);
    expect(stdout).toMatch(/^9 passed, 0 failed$/m);
    expect(stdout).toContain('checked: the service STORAGE_S3_* names');
    expect(stdout).not.toContain(s3.secretAccessKey);
  });

  it('with no STORAGE_S3_* and no cargo on PATH: runs against the built-in server, every step passes, and the summary says it checked a local server, not a deployment', async () => {
    // PATH holds only node's own directory: no cargo, no s3s-fs, no other server.
    const { code, stdout } = await runCheck({ PATH: path.dirname(process.execPath) }, ['--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as Report;
    expect(report).toMatchObject({ target: 'local', passed: 9, failed: 0 });
    expect(report.checked).toMatch(/built-in local S3 server.*not your deployment/);
    expect(report.steps[0].name).toBe('configuration');
  });

  it('--json: one document with every step, the same outcome', async () => {
    const { code, stdout } = await runCheck(envFor(s3.endpoint), ['--json']);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as Report;
    expect(report).toMatchObject({ target: 'configured', passed: 9, failed: 0 });
    expect(report.steps.map((s) => s.ok)).toEqual(Array(9).fill(true));
  });

  it('an endpoint that accepts connections and never answers: stops after the connectivity step (2 steps), unavailable, with what to check', async () => {
    const { code, stdout, ms } = await runCheck(envFor(`http://127.0.0.1:${silentPort}`), ['--json']);
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as Report;
    expect(report.steps.map((s) => [s.name, s.ok])).toEqual([
      ['configuration', true],
      ['connectivity and bucket access', false],
    ]);
    const failed = report.steps[1];
    expect(failed.reason).toBe('unavailable');
    expect(failed.hint).toContain('STORAGE_S3_ENDPOINT');
    console.log(`CHECK-FIGURES silent endpoint: whole check ${ms} ms, failing step ${Math.round(failed.ms)} ms`);
  });

  it.skipIf(s3.server === 'moto')('wrong credentials: stops after the connectivity step with auth (access_denied on Garage) and the credential variables to check', async () => {
    const { code, stdout } = await runCheck(envFor(s3.endpoint, 'wrong-secret-key-value'), ['--json']);
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as Report;
    expect(report.steps.length).toBe(2);
    const failed = report.steps[1];
    expect(['auth', 'access_denied']).toContain(failed.reason);
    expect(failed.hint).toMatch(/STORAGE_S3_ACCESS_KEY_ID|permissions/);
    expect(stdout).not.toContain('wrong-secret-key-value');
  });
});
