import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'example-storage-sqlite',
    include: ['test/**/*.test.ts'],
  },
})
