// Child process of the crash test: writes and overwrites keys through the built package as fast
// as it can until the test kills it with SIGKILL, printing each write once put() has resolved.
// Usage: node crash-writer.mjs <root> <first sequence number> [durability]

import { createFileSystemStorage } from '../../dist/index.js'

const [root, firstSeq, durability = 'fsync'] = process.argv.slice(2)
const storage = await createFileSystemStorage({ root, durability })
const keys = ['a', 'a/b', 'deep/er/key', 'deep/er/key2', 'odd/.dot ~%', 'counter']

// A self-checking value: a JSON header naming key and sequence, then a pattern derived from the
// sequence whose length varies, so a torn or mixed value cannot pass for a whole one.
function valueFor(key, seq) {
  const head = JSON.stringify({ key, seq })
  const body = String(seq % 97).repeat(1 + ((seq * 7919) % 4000))
  return new TextEncoder().encode(`${head}\n${body}`)
}

process.stdout.write('ready\n')
for (let seq = Number(firstSeq); ; seq++) {
  const key = keys[seq % keys.length]
  if (key === 'counter') {
    // Compare-and-swap, so kills also land inside the lock.
    const current = await storage.get(key)
    try {
      await storage.put(
        key,
        valueFor(key, seq),
        current ? { ifVersion: current.version } : { ifAbsent: true },
      )
    } catch (error) {
      if (error.code !== 'WF_CONDITION_FAILED') throw error
      continue
    }
  } else if (seq % 11 === 0) {
    await storage.put(`created/${seq}`, valueFor(`created/${seq}`, seq), { ifAbsent: true })
    process.stdout.write(`ack ${seq} created/${seq}\n`)
    continue
  } else {
    await storage.put(key, valueFor(key, seq))
  }
  process.stdout.write(`ack ${seq} ${key}\n`)
}
