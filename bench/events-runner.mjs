// The processes of bench/events.mjs. argv[2] is a JSON job (root, backend, where to store, mode);
// every line it prints starts with a word and carries epoch ms (one machine, one clock):
// - held: runs `count` workflows `after(waitForEvent('go'))`, held (never parked), inbox listed
//   every `eventPollMs`; READY once each waits, `AFTER <id> <ms>` when a successor starts. With
//   `selfSend`, it sends the events itself, one at a time at random moments, printing
//   `SENT <id> <ms>` when `sendEvent` returned (a send in the runner's process: no polling).
// - worker: a worker (parkAfterMs 0, default poll) that submits `count` such workflows, prints
//   READY once every one is parked, then AFTER lines as sends wake them.
// - send: sends `count` events 'e' one after another to `workflowId`; prints START, then END
//   with how many were accepted.
import { join } from 'node:path'
import { openBackend } from './backends.mjs'

const job = JSON.parse(process.argv[2])
const core = await import(join(job.root, 'packages/core/dist/index.js'))
const storage = await openBackend(job.root, job.backend, { ...job, syncs: { file: 0, folder: 0 } })
const print = (line) => process.stdout.write(`${line}\n`)
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const after = core.step('bench.events.after', (value) => {
  print(`AFTER ${core.currentStep().workflowId} ${Date.now()}`)
  return value
})
const ids = Array.from({ length: job.count }, (_, i) => `${job.prefixId}-${i}`)

if (job.mode === 'held') {
  const runtime = new core.Runtime(storage, {
    parkAfterMs: Number.POSITIVE_INFINITY,
    eventPollMs: job.eventPollMs,
  })
  const runs = []
  for (const id of ids)
    runs.push((await runtime.runAsync(after(core.waitForEvent('go')), { workflowId: id })).result())
  // Each has listed its inbox once by now (its first look is at once).
  await pause(500)
  print('READY')
  if (job.selfSend) {
    for (const [i, id] of ids.entries()) {
      await pause(Math.random() * 200)
      await runtime.sendEvent(id, 'go', i)
      print(`SENT ${id} ${Date.now()}`)
      await runs[i]
    }
  }
  await Promise.all(runs)
  print('DONE')
  process.exit(0)
}

if (job.mode === 'worker') {
  const worker = core.createWorker({ storage, parkAfterMs: 0, pollIntervalMs: job.pollIntervalMs })
  for (const id of ids) await worker.runtime.submit(after(core.waitForEvent('go')), { workflowId: id })
  const store = await worker.runtime.store()
  for (;;) {
    const records = await Promise.all(ids.map((id) => store.readWorkflow(id)))
    if (records.every((r) => r?.record.status === 'PENDING' && r.record.parkedEvents !== undefined)) break
    await pause(100)
  }
  print('READY')
  await worker.stopped
  process.exit(0)
}

if (job.mode === 'send') {
  const runtime = new core.Runtime(storage)
  await runtime.store()
  print(`START ${Date.now()}`)
  let accepted = 0
  for (let n = 0; n < job.count; n++) {
    const sent = await runtime.sendEvent(job.workflowId, 'e', { from: job.from, n })
    if (!sent.duplicate) accepted++
  }
  print(`END ${Date.now()} ${accepted}`)
  process.exit(0)
}

throw new Error(`unknown mode ${job.mode}`)
