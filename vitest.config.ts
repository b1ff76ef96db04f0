import { defineConfig } from 'vitest/config'

// One vitest run over every package: far faster than one run per package (see TOOLCHAIN.md).
export default defineConfig({
  test: {
    projects: ['packages/*', 'examples/*'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
})
