// Child process of the journal tests: 6 lanes, each owning its own keys, create, overwrite,
// compare-and-swap and delete them through the built package in `durability: 'journal'` until the
// test kills it with SIGKILL. Each lane prints what it is about to make a key hold ("try") and,
// once the put or delete resolved, "ack". A state is `-` (absent) or the value's text.
// Usage: node journal-writer.mjs <root> <boot id> <checkpoint ms>

import { createFileSystemStorage } from '../../dist/index.js'

const [root, bootId, checkpointMs] = process.argv.slice(2)
const storage = await createFileSystemStorage({
  root,
  durability: 'journal',
  bootId,
  checkpointMs: Number(checkpointMs),
})
const encode = (text) => new TextEncoder().encode(text)
const say = (line) => process.stdout.write(`${line}\n`)

async function lane(id) {
  const keys = [`lane${id}/record`, `lane${id}/steps/a`, `lane${id}/steps/b~c.`, `lane${id}/blob`]
  for (let seq = 0; ; seq++) {
    const key = keys[seq % keys.length]
    const value = `${key}#${seq}:${'x'.repeat(seq % 300)}`
    const current = await storage.get(key)
    if (seq % 7 === 3 && current) {
      say(`try ${key} -`)
      await storage.delete(key)
      say(`ack ${key} -`)
      continue
    }
    say(`try ${key} ${value}`)
    if (current === undefined) await storage.put(key, encode(value), { ifAbsent: true })
    else if (seq % 2 === 0) await storage.put(key, encode(value), { ifVersion: current.version })
    else await storage.put(key, encode(value))
    say(`ack ${key} ${value}`)
  }
}

say('ready')
await Promise.all([0, 1, 2, 3, 4, 5].map(lane))
