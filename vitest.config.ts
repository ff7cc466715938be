import { defineConfig } from 'vitest/config'

// Two projects: fast unit tests, and integration tests that run the real job (threads, the real
// data set, the CLI as a child process). Benchmarks are not tests: `crowdmesh bench` measures speed.
export default defineConfig({
  test: {
    projects: [
      {
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000 },
      },
      {
        test: {
          name: 'integration',
          // e2e: the same real parts, driven through headless Chromium. One sequential pool for both:
          // each file takes every core.
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          // The browser tests load the participant web app as built now.
          globalSetup: ['test/support/build-web-app.ts'],
          testTimeout: 600_000,
          hookTimeout: 120_000,
          // Each file runs jobs on every core; running two at once would only slow both.
          fileParallelism: false,
        },
      },
    ],
  },
})
