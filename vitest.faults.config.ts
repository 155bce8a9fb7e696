import { defineConfig } from 'vitest/config';

/**
 * `npm run test:faults`: only the fault scenarios, at full repetition, one file at a
 * time so each scenario's timings are its own. `npm test` runs the same files once each.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    maxWorkers: 1,
    testTimeout: 900_000,
    hookTimeout: 120_000,
  },
});
