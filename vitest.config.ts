import { configDefaults, defineConfig } from 'vitest/config';

// Options every project needs. Inline projects without `extends` do not inherit the root
// `test` options, which is what keeps the global setup below to a single run.
const shared = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
  // expect.poll waits for what a call does in the background after it settles (the
  // AbortMultipartUpload sent once the parts in flight end, a connection closing). The default
  // 1 s is short on a loaded 2-core machine; a poll still fails when the thing never happens.
  expect: { poll: { timeout: 5_000 } },
};

export default defineConfig({
  test: {
    // One s3s-fs for the whole run: the root project runs its global setup once, and every
    // project inherits what it provides (inject('s3')). Do not repeat it in the projects:
    // each project would then start its own server.
    globalSetup: ['__test__/helpers/global-setup.ts'],
    // The JSON report lets .ci/run print one plain "N passed, N failed" line per server;
    // scripts/matrix.mjs sets VITEST_JSON_OUTPUT to test-results/vitest-<server>.json.
    // S3_TEST_SERVER (s3s-fs | garage | moto) picks the server: __test__/helpers/servers.ts.
    reporters: ['default', ['json', { outputFile: process.env.VITEST_JSON_OUTPUT || 'test-results/vitest.json' }]],
    projects: [
      {
        test: {
          ...shared,
          name: 'forks',
          // Forks, not threads: the native addon and its Tokio runtime are safest one per process.
          pool: 'forks',
          include: ['__test__/**/*.test.ts'],
          exclude: [...configDefaults.exclude, '__test__/threads/**'],
        },
      },
      {
        test: {
          ...shared,
          // The host's test runner (vitest 1.x) runs files in worker_threads by default.
          name: 'threads',
          pool: 'threads',
          include: ['__test__/threads/**/*.test.ts'],
        },
      },
    ],
  },
});
