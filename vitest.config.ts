import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['libs/**/*.test.ts', 'apps/**/*.test.ts', 'test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Cross-process tests start real peers on fixed loopback addresses; two cores are
    // shared between them, so test files run two at a time at most.
    maxWorkers: 2,
  },
});
