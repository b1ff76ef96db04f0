import { defineProject } from 'vitest/config'

export default defineProject({
  test: {
    name: 'example-s3-pipeline',
    include: ['test/**/*.test.ts'],
  },
})
