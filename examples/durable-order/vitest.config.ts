import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'example-durable-order',
    include: ['test/**/*.test.ts'],
  },
})
