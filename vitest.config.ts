import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One process per file: the embedded ClickHouse allows one data directory per process.
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: more parallel files only queue behind each other and slow the engine down.
    maxWorkers: 2,
  },
});
