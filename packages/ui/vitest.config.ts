import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'ui',
    include: ['src/**/*.test.ts'],
    // A project does not inherit the root config's timeouts: the same ones here (a process test
    // on a busy 2-core machine can take far longer than vitest's 5 s default).
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
})
