// Child process of the race tests: opens the storage through the built package, then for each
// line on stdin ({ key, condition: 'absent' | <version> }) makes one conditional put and prints
// the outcome as a JSON line. The parent sends each line to all children at once.
// Usage: node race-writer.mjs <root> <id>

import { createInterface } from 'node:readline'
import { createFileSystemStorage } from '../../dist/index.js'

const [root, id] = process.argv.slice(2)
const storage = await createFileSystemStorage({ root })
const data = new TextEncoder().encode(`writer ${id}`)
process.stdout.write('ready\n')
for await (const line of createInterface({ input: process.stdin })) {
  const { key, condition } = JSON.parse(line)
  try {
    const { version } = await storage.put(
      key,
      data,
      condition === 'absent' ? { ifAbsent: true } : { ifVersion: condition },
    )
    process.stdout.write(`${JSON.stringify({ id, won: true, version })}\n`)
  } catch (error) {
    process.stdout.write(`${JSON.stringify({ id, won: false, code: error.code ?? String(error) })}\n`)
  }
}
