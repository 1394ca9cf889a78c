// Workload definitions shared by bench/run.mjs (parent) and bench/worker.mjs (child).
export const MiB = 1024 * 1024;

/** `baseline` (an earlier build of ours, see peers/baseline.mjs) runs only when BENCH_BASELINE is set. */
export const PEERS = ['ours', ...(process.env.BENCH_BASELINE ? ['baseline'] : []), 'aws', 'opendal', 'minio', 'curl'];

/** Sizes and counts: the full run, and --smoke (tiny, for CI). importReps: fresh processes per client per round. */
export const SIZES = {
  full: { presignN: 20000, opsC32: 2000, opsC1: 300, obj1mN: 128, big: 256 * MiB, huge: 1024 * MiB, coldReps: 3, importReps: 5 },
  smoke: { presignN: 2000, opsC32: 200, opsC1: 200, obj1mN: 16, big: 1 * MiB, huge: 16 * MiB, coldReps: 1, importReps: 2 },
};

/** Rounds of a full run when --rounds is not given: targets compare medians of at least this many. */
export const FULL_ROUNDS = 5;

/** The pseudo-client of the `import` workload: an empty `node` process, the baseline every import is measured over. */
export const EMPTY_NODE = 'node';

const sz = (n) => (n >= 1024 * MiB ? `${n / (1024 * MiB)} GiB` : n >= MiB ? `${n / MiB} MiB` : `${n / 1024} KiB`);

/**
 * metrics: what each child reports. better: which way is good.
 * large: show RSS growth / event-loop lag / per-GiB CPU.
 */
/** The small-object phases, in order; `get-stream` only for clients with `getStream` (ours). */
export const SMALL_OPS = ['put', 'head', 'get', 'get-stream', 'delete'];

export function workloads(S) {
  return {
    presign: {
      title: `Presign GET URLs (${S.presignN} URLs, 32 in flight)`,
      peers: PEERS.filter((p) => p !== 'curl'),
      metrics: [{ name: 'presign', unit: 'URLs/s', better: 'higher' }],
    },
    // `get` reads each object into one Buffer (ours: downloadBuffer, OpenDAL: read, AWS SDK:
    // transformToByteArray); `get-stream` is ours through the host's download() Readable.
    'ops-c32': {
      title: `1 KiB objects, concurrency 32 (${S.opsC32} ops per phase)`,
      metrics: SMALL_OPS.map((name) => ({ name, unit: 'ops/s', better: 'higher' })),
    },
    'ops-c1': {
      title: `1 KiB objects, concurrency 1 (${S.opsC1} ops per phase)`,
      metrics: SMALL_OPS.map((name) => ({ name, unit: 'ops/s', better: 'higher' })),
    },
    'obj1m-c8': {
      title: `1 MiB objects, concurrency 8 (${S.obj1mN} objects)`,
      metrics: ['put', 'get'].map((name) => ({ name, unit: 'MB/s', better: 'higher' })),
    },
    'upload-buffer': {
      title: `${sz(S.big)} upload from a Buffer (curl: -T file)`,
      size: S.big,
      large: true,
      metrics: [{ name: 'upload', unit: 'MB/s', better: 'higher' }],
    },
    download: {
      title: `${sz(S.big)} download, each chunk written to a file on /dev/shm as it arrives (curl: -o file)`,
      size: S.big,
      large: true,
      metrics: [{ name: 'download', unit: 'MB/s', better: 'higher' }],
    },
    'upload-stream': {
      title: `${sz(S.big)} upload from a stream of unknown length (curl: chunked -T - from a pipe)`,
      size: S.big,
      large: true,
      metrics: [{ name: 'upload', unit: 'MB/s', better: 'higher' }],
    },
    'stream-up-huge': {
      title: `${sz(S.huge)} stream of unknown length up`,
      size: S.huge,
      large: true,
      metrics: [{ name: 'upload', unit: 'MB/s', better: 'higher' }],
    },
    'stream-down-huge': {
      title: `${sz(S.huge)} stream down (written to a file on /dev/shm like the download)`,
      size: S.huge,
      large: true,
      metrics: [{ name: 'download', unit: 'MB/s', better: 'higher' }],
    },
    'cold-start': {
      title: 'Cold start: fresh process, import + construct + first HEAD',
      metrics: [{ name: 'cold', unit: 'ms', better: 'lower' }],
    },
    import: {
      title: 'Import overhead: fresh `node` process that only imports the client library, against an empty `node`',
      // Run by bench/run.mjs itself (no worker): wall time of each process, the empty node interleaved with the clients.
      parent: true,
      reps: S.importReps,
      peers: [EMPTY_NODE, ...PEERS.filter((p) => p !== 'curl')],
      metrics: [{ name: 'import', unit: 'ms', better: 'lower' }],
    },
  };
}
