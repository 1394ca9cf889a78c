// The benchmark's S3 server: s3s-fs (scripts/s3-server.mjs) pinned to CPU 1 with
// `taskset -c 1`, its data directory on /dev/shm, and TCP_NODELAY forced on
// accepted sockets by an LD_PRELOAD shim compiled here with gcc.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findOrInstallS3sFs, startS3Server } from '../../scripts/s3-server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SHIM_SRC = path.join(here, '..', 'tcp-nodelay-shim.c');

export function hasTaskset() {
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
    return os.cpus().length >= 2;
  } catch {
    return false;
  }
}

/** Reads utime+stime (clock ticks -> ms) of a process from /proc. */
export function procCpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15.
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

export async function startBenchServer({ log = () => {} } = {}) {
  const realBin = await findOrInstallS3sFs();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-s3-'));
  const setup = { taskset: false, nodelayShim: false, dataDir: '', bin: realBin };

  let shim;
  try {
    shim = path.join(tmp, 'tcp-nodelay-shim.so');
    execFileSync('gcc', ['-O2', '-shared', '-fPIC', '-o', shim, SHIM_SRC, '-ldl'], { stdio: 'pipe' });
    setup.nodelayShim = true;
  } catch (err) {
    shim = undefined;
    log(`WARNING: could not build the TCP_NODELAY shim (${String(err.stderr ?? err.message).trim()}); small requests may stall ~40 ms`);
  }
  setup.taskset = hasTaskset();

  // A wrapper that exec()s, so the pid startS3Server sees is s3s-fs itself.
  const wrapper = path.join(tmp, 's3s-fs-bench.sh');
  const pre = shim ? `LD_PRELOAD=${JSON.stringify(shim)} ` : '';
  const pin = setup.taskset ? 'taskset -c 1 ' : '';
  writeFileSync(wrapper, `#!/bin/sh\n# s3s-fs for benchmarks (bench/lib/server.mjs)\nRUST_LOG=\${RUST_LOG:-warn} ${pre}exec ${pin}${JSON.stringify(realBin)} "$@"\n`);
  chmodSync(wrapper, 0o755);
  setup.wrapper = readFileSync(wrapper, 'utf8');

  const shmOk = existsSync('/dev/shm');
  const dataDir = mkdtempSync(path.join(shmOk ? '/dev/shm' : os.tmpdir(), 'bench-s3-data-'));
  setup.dataDir = dataDir;
  setup.dataOnTmpfs = shmOk;

  const prevBin = process.env.S3S_FS_BIN;
  process.env.S3S_FS_BIN = wrapper;
  let server;
  try {
    server = await startS3Server({ bucket: 'bench', dataDir });
  } finally {
    if (prevBin === undefined) delete process.env.S3S_FS_BIN;
    else process.env.S3S_FS_BIN = prevBin;
  }
  setup.pid = server.pid;
  return {
    ...server,
    setup,
    objectPath: (key) => path.join(dataDir, server.bucket, key),
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
