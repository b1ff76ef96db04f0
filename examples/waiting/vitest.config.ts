import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'example-waiting',
    include: ['test/**/*.test.ts'],
  },
})
