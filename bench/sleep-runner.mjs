// The processes of bench/sleep.mjs, on one backend (a folder or an S3 prefix), by `job.mode`:
// - `park`: starts `job.count` workflows `bench.sleep.mark(sleepUntil(job.wakeAt))` with
//   parkAfterMs 0 (`job.chunk` at a time), waits until every one is parked (its run let it go),
//   prints `PARKED <ms taken>` and exits: nothing holds them any more.
// - `worker`: a worker (createWorker, `job.concurrency`, `job.pollIntervalMs`); each mark step
//   appends `<workflowId> <wake ms> <start ms>` to `job.log`, each workflow it takes on (claims)
//   `took <workflowId> <ms>`, and each workflow that ends appends
//   `done <workflowId> <outcome> <ms>`. Prints `READY`; on SIGTERM stops and prints
//   `RESULT <json>` (RSS, storage requests).
// - `idle`: a worker on parked workflows none of which is due: counts its storage requests (by
//   method, and its listings by prefix) over `job.windowMs`, prints `RESULT <json>` with them and
//   its RSS at the window's start and end.
import { appendFileSync } from 'node:fs'
import { join } from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { openBackend } from './backends.mjs'

const job = JSON.parse(process.argv[2])
const core = await import(join(job.root, 'packages/core/dist/index.js'))
const storage = await openBackend(job.root, job.backend, { ...job, syncs: { file: 0, folder: 0 } })

// Every storage request, by method, and each listing's prefix: what a worker costs on S3.
const requests = { get: 0, put: 0, list: 0, delete: 0, deleteMany: 0 }
const lists = new Map()
// Keys the listings of the due index returned: what a poll reads of it (bytes, on S3).
let dueKeysRead = 0
let counting = true
for (const method of Object.keys(requests)) {
  if (typeof storage[method] !== 'function') continue
  const call = storage[method].bind(storage)
  storage[method] = (...args) => {
    if (counting) {
      requests[method]++
      if (method === 'list') {
        // By the listing's first segment (`due`, `starts`, `runners`…), and the status for `index/<status>`.
        const segments = String(args[0]).split('/')
        const prefix = segments[0] === 'index' ? segments.slice(0, 2).join('/') : segments[0]
        lists.set(prefix, (lists.get(prefix) ?? 0) + 1)
        if (prefix === 'due')
          return call(...args).then((page) => {
            dueKeysRead += page.keys.length
            return page
          })
      }
    }
    return call(...args)
  }
}
const resetCounts = () => {
  for (const method of Object.keys(requests)) requests[method] = 0
  lists.clear()
  dueKeysRead = 0
}
const counts = () => ({ ...requests, lists: Object.fromEntries(lists), dueKeysRead })
const mb = () => Math.round(process.memoryUsage().rss / 1048576)
/**
 * The JS heap in use after a full collection, in MB: what the worker keeps alive (RSS also counts
 * garbage not collected yet and memory the allocator keeps, which grew 65 to 88 MB in 30 s).
 */
function liveHeapMb() {
  v8.setFlagsFromString('--expose-gc')
  vm.runInNewContext('gc')()
  return Math.round((process.memoryUsage().heapUsed / 1048576) * 10) / 10
}

const mark = core.step('bench.sleep.mark', (wakeMs) => {
  const started = Date.now()
  if (job.log) appendFileSync(job.log, `${core.currentStep().workflowId} ${wakeMs} ${started}\n`)
  return started
})

/** The number of keys under `prefix` (every page). */
async function countKeys(prefix) {
  let n = 0
  let after
  do {
    const page = await storage.list(prefix, after === undefined ? {} : { after })
    n += page.keys.length
    after = page.next
  } while (after !== undefined)
  return n
}

if (job.mode === 'park') {
  const started = Date.now()
  // A long lease: this process follows each workflow it parked (it would wake it), reading its
  // record once a lease period; with the default 15 s, 10,000 followed workflows are 667 reads a
  // second, which jam the S3 client's 50 sockets and time the parking out.
  const runtime = new core.Runtime(storage, { parkAfterMs: 0, leaseTtlMs: 600_000 })
  // A few hundred at once: 500 parallel starts made the gateway time out connections (5 s).
  const chunk = job.chunk ?? 200
  for (let from = 0; from < job.count; from += chunk) {
    const upTo = Math.min(job.count, from + chunk)
    const starts = []
    for (let i = from; i < upTo; i++) {
      starts.push(runtime.runAsync(mark(core.sleepUntil(job.wakeAt)), { workflowId: `${job.idPrefix}${i}` }))
    }
    await Promise.all(starts)
    // Parked once its run let it go (its record written PENDING with its wake time): not when its
    // due marker is there, which is written first.
    const ids = Array.from({ length: upTo - from }, (_, i) => `${job.idPrefix}${from + i}`)
    while (ids.some((id) => runtime.isActive(id))) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  const due = await countKeys('due/')
  if (due !== job.count) throw new Error(`parked ${job.count} workflows, but the due index lists ${due}`)
  process.stdout.write(`PARKED ${Date.now() - started}\n`)
  process.exit(0)
}

if (job.mode === 'worker') {
  const worker = core.createWorker({
    storage,
    concurrency: job.concurrency,
    pollIntervalMs: job.pollIntervalMs,
    handleSignals: false,
    onTake: (workflowId) => appendFileSync(job.log, `took ${workflowId} ${Date.now()}\n`),
    onWorkflow: ({ workflowId, outcome }) => {
      if (workflowId) appendFileSync(job.log, `done ${workflowId} ${outcome} ${Date.now()}\n`)
    },
  })
  // The process's CPU time (every thread) now and then: the bench takes what it used from T until
  // the drain ended, to tell a worker bound by its own CPU (the S3 client's per request) from one
  // that waits on its storage.
  const cpu = () => {
    const used = process.cpuUsage()
    appendFileSync(
      job.log,
      `cpu ${process.pid} ${Date.now()} ${Math.round((used.user + used.system) / 1000)}\n`,
    )
  }
  const sampling = setInterval(cpu, 50)
  process.stdout.write('READY\n')
  process.once('SIGTERM', async () => {
    clearInterval(sampling)
    await worker.stop()
    process.stdout.write(`RESULT ${JSON.stringify({ rssMb: mb(), requests: counts() })}\n`)
    process.exit(0)
  })
}

if (job.mode === 'idle') {
  counting = false
  const worker = core.createWorker({ storage, pollIntervalMs: job.pollIntervalMs, handleSignals: false })
  // The worker's first polls (its runner record, a first sweep) are not what an idle minute costs.
  await new Promise((resolve) => setTimeout(resolve, 3 * job.pollIntervalMs))
  counting = true
  resetCounts()
  const rssStart = mb()
  const heapStart = liveHeapMb()
  await new Promise((resolve) => setTimeout(resolve, job.windowMs))
  const counted = counts()
  const rssEnd = mb()
  const heapEnd = liveHeapMb()
  counting = false
  await worker.stop()
  process.stdout.write(
    `RESULT ${JSON.stringify({ requests: counted, rssStart, rssEnd, heapStart, heapEnd })}\n`,
  )
  process.exit(0)
}
