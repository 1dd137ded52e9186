import { defineConfig } from 'vitest/config';

// Long soak, crash and fuzz runs: `npm run slow`. Not part of the default CI suite.
export default defineConfig({
  test: {
    include: ['test/**/*.slow.test.ts'],
    testTimeout: 30 * 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
});
