import { defineConfig } from 'vitest/config'

// One vitest run over every package: far faster than one run per package (see TOOLCHAIN.md).
// Timeouts live in each project's own config: a project found by this glob does not inherit the
// root's test options (vitest 4), so a testTimeout set here would apply to nothing.
export default defineConfig({
  test: {
    projects: ['packages/*', 'examples/*'],
  },
})
