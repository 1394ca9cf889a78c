import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Forks, not threads: the native addon and its Tokio runtime are safest one per process.
    pool: 'forks',
    globalSetup: ['__test__/helpers/global-setup.ts'],
    include: ['__test__/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
