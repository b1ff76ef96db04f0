import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openBackend, s3FromEnv } from './backends.mjs'
import { benchPlaces, childProcess, LABELS, pct } from './processes.mjs'
import { withSection } from './sections.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const quick = process.argv.includes('--quick')
const out = join(root, 'bench', 'RESULTS.md')
const s3 = s3FromEnv()
const LEASE_TTL_MS = 15_000
const COUNT = quick ? 10 : 20
const HEARTBEATS = [1000, 5000] // 5000: the default for the default lease (15 s)
const REQUEST_HEARTBEATS = [250, 1000, 5000]
const REQUEST_HOLDS = [1, 20]
const WINDOW_MS = quick ? 5000 : 30_000
const started = Date.now()
const places = await benchPlaces(root, s3, 'cancel')
const { work, backends, where } = places
const runner = (job) => childProcess(join(root, 'bench/cancel-runner.mjs'), job)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const latency = []
for (const backend of backends) {
  for (const heartbeatMs of HEARTBEATS) {
    const place = where(backend)
    const prefixId = `cancel-${places.seq}`
    const job = { root, backend, ...place, leaseTtlMs: LEASE_TTL_MS, heartbeatMs, count: COUNT, prefixId }
    const run = runner({ ...job, mode: 'cancel' })
    await run.seen('READY')
    const core = await import(join(root, 'packages/core/dist/index.js'))
    const storage = await openBackend(root, backend, { ...place, syncs: { file: 0, folder: 0 } })
    // The canceler with the default lease settings (as `wf cancel` has): it waits up to 20 s.
    const canceler = new core.Runtime(storage)
    const cancels = []
    for (let i = 0; i < COUNT; i++) {
      await sleep(Math.random() * heartbeatMs)
      const at = Date.now()
      const outcome = await canceler.cancelDetailed(`${prefixId}-${i}`)
      cancels.push({ id: `${prefixId}-${i}`, at, resolvedMs: Date.now() - at, outcome })
    }
    await run.seen('DONE')
    await run.exited
    const aborted = new Map(
      run.lines
        .filter((l) => l.startsWith('ABORTED '))
        .map((l) => [l.split(' ')[1], Number(l.split(' ')[2])]),
    )
    const startedAfter = run.lines.filter((l) => l.startsWith('STARTED-AFTER-CANCEL')).length
    const resolved = cancels.map((c) => c.resolvedMs)
    const abortedMs = cancels.map((c) => (aborted.get(c.id) ?? Number.NaN) - c.at)
    const row = {
      backend,
      heartbeatMs,
      count: COUNT,
      resolved: [pct(resolved, 50), pct(resolved, 99)],
      aborted: [pct(abortedMs, 50), pct(abortedMs, 99)],
      startedAfter,
      waited: [...new Set(cancels.map((c) => c.outcome.waitedFor))].join(', '),
    }
    latency.push(row)
    console.log(JSON.stringify(row))
    await storage.close?.()
  }
}

const costs = []
if (s3) {
  for (const heartbeatMs of REQUEST_HEARTBEATS) {
    for (const count of REQUEST_HOLDS) {
      const place = where('s3')
      const job = {
        root,
        backend: 's3',
        ...place,
        leaseTtlMs: Math.max(LEASE_TTL_MS, 3 * heartbeatMs),
        heartbeatMs,
        count,
        prefixId: `cost-${places.seq}`,
        mode: 'requests',
        windowMs: WINDOW_MS,
      }
      const run = runner(job)
      const line = await run.seen('REQUESTS ')
      await run.exited
      const counted = JSON.parse(line.slice('REQUESTS '.length))
      const perMinute = Object.fromEntries(
        Object.entries(counted).map(([k, v]) => [k, Math.round((v * 60_000) / WINDOW_MS)]),
      )
      const row = { heartbeatMs, count, perMinute }
      costs.push(row)
      console.log(JSON.stringify(row))
    }
  }
}

const n = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–')
const when = new Date().toISOString().slice(0, 16).replace('T', ' ')
const minutes = ((Date.now() - started) / 60000).toFixed(1)
let body = `## Cancel: from \`cancel()\` to a stopped run (bench/cancel.mjs)

Written by \`node bench/cancel.mjs${quick ? ' --quick' : ''}\` on ${when} UTC in ${minutes} min (Node ${process.version}${s3 ? `; S3: ${s3.endpoint}` : '; no S3 endpoint: folder only'}). A runner process holds ${COUNT} workflows (lease ${LEASE_TTL_MS / 1000} s), each in a step that waits for its abort signal; another process cancels them one at a time, each at a random moment within one heartbeat, with the default settings of \`wf cancel\`. **cancel() resolves**: from the call until it resolved, i.e. until the runner's CANCELED record was read back: from then on no step of the workflow starts anywhere. **signal aborted**: from the call until the runner's step saw its signal (same machine, same clock). With ${COUNT} cancels, p99 is the slowest. A cancel waits for the runner's next heartbeat read of the workflow record (uniform over one heartbeat), then its acknowledgement (one write), then the canceler's next poll (every 100 ms at most).

| backend | heartbeatMs | cancels | cancel() resolves, p50 / p99 ms | step's signal aborted, p50 / p99 ms | what it waited for | steps started after a cancel |
|---|---|---|---|---|---|---|
${latency.map((r) => `| ${LABELS[r.backend]} | ${n(r.heartbeatMs)} | ${r.count} | ${n(r.resolved[0])} / ${n(r.resolved[1])} | ${n(r.aborted[0])} / ${n(r.aborted[1])} | ${r.waited} | ${r.startedAfter} |`).join('\n')}
`
if (costs.length) {
  body += `
**What a heartbeat costs on S3.** A runner that holds workflows reads each workflow's record once per heartbeat (a GET: that read is how a cancel reaches it, and how it notices a takeover) and renews its one runner record (a PUT) when half of its lease, or all but two heartbeats of it, is used up. Counted over ${WINDOW_MS / 1000} s in the runner process while it held its workflows (nothing else running), per minute:

| heartbeatMs | workflows held | GET/min | PUT/min | LIST/min | DELETE/min | requests/min |
|---|---|---|---|---|---|---|
${costs.map((r) => `| ${n(r.heartbeatMs)} | ${r.count} | ${n(r.perMinute.get)} | ${n(r.perMinute.put)} | ${n(r.perMinute.list)} | ${n(r.perMinute.delete)} | ${n(r.perMinute.get + r.perMinute.put + r.perMinute.list + r.perMinute.delete)} |`).join('\n')}

So a runner costs (60,000 / heartbeatMs) GETs per minute per workflow it holds, plus its renewals: one PUT at the first heartbeat with less than max(2 × heartbeatMs, leaseTtlMs / 2) of its lease left, whatever the number of workflows: with a 15 s lease one every 5 to 10 s, 6 to 12 per minute. Lowering the heartbeat from 5 s to 1 s makes a cancel stop about 2.5 s sooner at the median (it waits half a heartbeat on average) and costs 48 more GETs per minute for each workflow held (about $0.03 per workflow-day at $0.40 per million GETs); 250 ms costs 240 GETs per minute per workflow. A canceler adds one GET per 100 ms while it waits, for the cancel's duration only. Nothing is added per step: a cancel request rides in the workflow record the heartbeat already reads.
`
}
const previous = existsSync(out) ? readFileSync(out, 'utf8') : ''
writeFileSync(out, withSection(previous, 'cancel', body))
rmSync(work, { recursive: true, force: true })
console.log(`wrote the cancel section of ${out}`)
process.exit(0)
