// The processes of bench/schedules.mjs, on one backend (a folder or an S3 prefix), by `job.mode`:
// - `worker`: a worker (createWorker, `job.pollIntervalMs`) that declares `job.schedules`
//   per-second schedules `tick-<i>` (overlap 'allow'); for each tick it fires it appends
//   `fired <runId> <tick ms> <ms>` to `job.log` (the run exists then), and each run's step appends
//   `start <runId> <tick ms> <ms>`; a skipped tick `skipped <scheduleId> <tick ms> <count> <reason>`. Prints `READY`; on SIGTERM stops and prints `RESULT <json>`
//   (storage requests).
// - `idle`: a worker that declares `job.schedules` schedules none of which is due in the window
//   (half `{ every: '1d' }`, half a daily cron in a time zone), counts its storage requests (by
//   method, and by key prefix: `schedules/`, `declarations/`, the rest) over `job.windowMs` after a
//   warm-up, and prints `RESULT <json>`.
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import { openBackend } from './backends.mjs'

const job = JSON.parse(process.argv[2])
const core = await import(join(job.root, 'packages/core/dist/index.js'))
const storage = await openBackend(job.root, job.backend, { ...job, syncs: { file: 0, folder: 0 } })

// Every storage request, by method, and by the first segment of its key or prefix.
const requests = { get: 0, put: 0, list: 0, delete: 0, deleteMany: 0 }
const byPrefix = new Map()
let counting = true
for (const method of Object.keys(requests)) {
  if (typeof storage[method] !== 'function') continue
  const call = storage[method].bind(storage)
  storage[method] = (...args) => {
    if (counting) {
      requests[method]++
      const segment = Array.isArray(args[0]) ? 'many' : String(args[0]).split('/')[0]
      const key = `${method} ${segment}`
      byPrefix.set(key, (byPrefix.get(key) ?? 0) + 1)
    }
    return call(...args)
  }
}
const resetCounts = () => {
  for (const method of Object.keys(requests)) requests[method] = 0
  byPrefix.clear()
}
const counts = () => ({ ...requests, byPrefix: Object.fromEntries(byPrefix) })

const tickStep = core.step('bench.schedules.tick', (tickMs) => {
  if (job.log) appendFileSync(job.log, `start ${core.currentStep().workflowId} ${tickMs} ${Date.now()}\n`)
  return tickMs
})

if (job.mode === 'worker') {
  const schedules = Array.from({ length: job.schedules }, (_, i) =>
    core.schedule(`tick-${i}`, { every: '1s' }, (tick) => tickStep(tick.getTime()), { overlap: 'allow' }),
  )
  const worker = core.createWorker({
    storage,
    schedules,
    concurrency: job.concurrency,
    pollIntervalMs: job.pollIntervalMs,
    handleSignals: false,
    onSchedule: (event) => {
      if (event.outcome === 'FIRED')
        appendFileSync(job.log, `fired ${event.runId} ${event.tick} ${Date.now()}\n`)
      else if (event.outcome === 'SKIPPED')
        appendFileSync(
          job.log,
          `skipped ${event.scheduleId} ${event.tick} ${event.count ?? 1} ${event.reason}\n`,
        )
    },
  })
  process.stdout.write('READY\n')
  process.once('SIGTERM', async () => {
    await worker.stop()
    process.stdout.write(`RESULT ${JSON.stringify({ requests: counts() })}\n`)
    process.exit(0)
  })
}

if (job.mode === 'idle') {
  counting = false
  const schedules = Array.from({ length: job.schedules }, (_, i) =>
    i % 2 === 0
      ? core.schedule(`idle-${i}`, { every: '1d' }, (tick) => tickStep(tick.getTime()))
      : core.schedule(`idle-${i}`, { cron: '0 3 * * *', timezone: 'Europe/Berlin' }, (tick) =>
          tickStep(tick.getTime()),
        ),
  )
  const worker = core.createWorker({
    storage,
    schedules,
    pollIntervalMs: job.pollIntervalMs,
    handleSignals: false,
  })
  // The first polls (its runner record, each schedule's record read or created once: on S3, longer
  // than a few polls for 100 schedules) are not what an idle minute costs.
  const recorded = async () => {
    let n = 0
    let after
    do {
      const page = await storage.list('schedules/', after === undefined ? {} : { after })
      n += page.keys.length
      after = page.next
    } while (after !== undefined)
    return n
  }
  while ((await recorded()) < job.schedules) await new Promise((resolve) => setTimeout(resolve, 200))
  await new Promise((resolve) => setTimeout(resolve, 3 * job.pollIntervalMs))
  counting = true
  resetCounts()
  await new Promise((resolve) => setTimeout(resolve, job.windowMs))
  const counted = counts()
  counting = false
  await worker.stop()
  process.stdout.write(`RESULT ${JSON.stringify({ requests: counted })}\n`)
  process.exit(0)
}
