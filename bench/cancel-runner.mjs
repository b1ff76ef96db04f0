// The runner process of bench/cancel.mjs: opens the backend, runs `count` workflows whose first
// step waits for its abort signal (and a second step that must never start), and reports on
// stdout: READY once every first step runs, `ABORTED <workflowId> <epoch ms>` when a step sees its
// signal, and in `requests` mode the storage requests it made in a window while holding them all.
import { join } from 'node:path'
import { openBackend } from './backends.mjs'

const job = JSON.parse(process.argv[2])
const core = await import(join(job.root, 'packages/core/dist/index.js'))
const storage = await openBackend(job.root, job.backend, { ...job, syncs: { file: 0, folder: 0 } })

// Every storage request, by method: what a runner costs per minute on S3.
const requests = { get: 0, put: 0, list: 0, delete: 0 }
for (const method of Object.keys(requests)) {
  const call = storage[method].bind(storage)
  storage[method] = (...args) => {
    requests[method]++
    return call(...args)
  }
}

const runtime = new core.Runtime(storage, { leaseTtlMs: job.leaseTtlMs, heartbeatMs: job.heartbeatMs })
let running = 0
const wait = core.step('bench.cancel.wait', (i) => {
  running++
  if (running === job.count) process.stdout.write('READY\n')
  const { signal, workflowId } = core.currentStep()
  return new Promise((resolve) => {
    signal.addEventListener('abort', () => {
      process.stdout.write(`ABORTED ${workflowId} ${Date.now()}\n`)
      resolve(i)
    })
  })
})
const charge = core.step('bench.cancel.charge', (i) => {
  process.stdout.write(`STARTED-AFTER-CANCEL ${i}\n`)
  return i
})

// The steps wait on signals only, and the runtime's timers do not hold the process open.
const keepAlive = setInterval(() => {}, 1000)
const runs = []
for (let i = 0; i < job.count; i++) {
  runs.push(runtime.run(charge(wait(i)), { workflowId: `${job.prefixId}-${i}` }).catch(() => {}))
}
if (job.mode === 'requests') {
  await new Promise((resolve) => {
    const check = setInterval(() => {
      if (running === job.count) {
        clearInterval(check)
        resolve()
      }
    }, 5)
  })
  // Settle first: the submissions' writes are not what a held workflow costs.
  await new Promise((resolve) => setTimeout(resolve, job.heartbeatMs))
  for (const method of Object.keys(requests)) requests[method] = 0
  await new Promise((resolve) => setTimeout(resolve, job.windowMs))
  process.stdout.write(`REQUESTS ${JSON.stringify(requests)}\n`)
  process.exit(0)
}
await Promise.all(runs)
clearInterval(keepAlive)
process.stdout.write('DONE\n')
process.exit(0)
