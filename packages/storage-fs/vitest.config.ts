import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'storage-fs',
    include: ['src/**/*.test.ts'],
  },
})
