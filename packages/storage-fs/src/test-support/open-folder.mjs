// Child process of the concurrent-first-open test: loads the built package, says "ready", waits
// for "go" on stdin (the parent sends it to every child at once), opens the folder and prints
// what it got as one JSON line: { durability } or { code } of the error.
// Usage: node open-folder.mjs <root> <durability | default>

import { createInterface } from 'node:readline'
import { createFileSystemStorage } from '../../dist/index.js'

const [root, asked] = process.argv.slice(2)
const lines = createInterface({ input: process.stdin })
process.stdout.write('ready\n')
for await (const line of lines) {
  if (line !== 'go') continue
  try {
    const storage = await createFileSystemStorage(
      asked === 'default' ? { root } : { root, durability: asked },
    )
    process.stdout.write(`${JSON.stringify({ durability: storage.durability })}\n`)
    await storage.close()
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ code: error.code ?? String(error) })}\n`)
  }
  break
}
lines.close()
