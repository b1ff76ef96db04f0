// Schedules: how late ticks fire, and what an idle worker costs with 100 schedules declared.
// - Lateness: three worker processes declare 10 per-second schedules (overlap 'allow') and fire
//   them for about 10 s, and (not with --quick) one per-second schedule for 100 s: 100 ticks or
//   more, measured after a warm-up of two seconds. Per tick:
//   fired = when its run was created (the FIRED report) minus the nominal tick; started = when
//   its step began minus the tick. Also: ticks fired twice (must be 0) and ticks not fired
//   (catch-up 'latest' records a tick skipped as missed when a poll comes more than a period late).
// - Idle: one worker with 0 and with 100 schedules none of which is due (half `every: 1d`, half a
//   daily cron in Europe/Berlin): its storage requests per minute, by method and key prefix.
// On the folder (fsync) and, with WF_S3_ENDPOINT set, on S3. Prints the table; writes nothing.
//   node bench/schedules.mjs [--quick]   (--quick: 10 schedules only, idle windows of 20 s, not 60 s)
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { s3FromEnv } from './backends.mjs'
import { benchPlaces, childProcess, LABELS, pct } from './processes.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const quick = process.argv.includes('--quick')
const s3 = s3FromEnv()
const WORKERS = 3
const SCHEDULE_SETS = quick ? [10] : [10, 1]
const TICKS = 100
const WARM_UP_MS = 2000
const POLL_MS = 1000 // createWorker's default
const IDLE_SCHEDULES = [0, 100]
const IDLE_WINDOW_MS = quick ? 20_000 : 60_000
const places = await benchPlaces(root, s3, 'schedules')
const { work, backends, where } = places
const runner = (job) => childProcess(join(root, 'bench/schedules-runner.mjs'), job)
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const lateness = []
for (const backend of backends)
  for (const scheduleCount of SCHEDULE_SETS) {
    const log = join(work, `lateness-${backend}-${scheduleCount}.log`)
    writeFileSync(log, '')
    const job = {
      root,
      backend,
      ...where(backend),
      mode: 'worker',
      schedules: scheduleCount,
      concurrency: 16,
      pollIntervalMs: POLL_MS,
      log,
    }
    const procs = Array.from({ length: WORKERS }, () => runner(job))
    await Promise.all(procs.map((p) => p.seen('READY')))
    const from = Date.now() + WARM_UP_MS
    const read = () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' '))
    const counted = (kind) => read().filter(([k, , tick]) => k === kind && Number(tick) >= from)
    const deadline = Date.now() + 180_000
    while (new Set(counted('start').map(([, id]) => id)).size < TICKS && Date.now() < deadline)
      await pause(200)
    // A tick fired twice would show up a poll later.
    await pause(POLL_MS + 500)
    for (const p of procs) p.child.kill('SIGTERM')
    await Promise.all(procs.map((p) => p.seen('RESULT ')))
    await Promise.all(procs.map((p) => p.exited))
    const fired = counted('fired')
    const started = counted('start')
    const perId = new Map()
    for (const [, id] of fired) perId.set(id, (perId.get(id) ?? 0) + 1)
    // Not fired: per schedule, the ticks from the first counted to the last fired that did not fire,
    // and of them those recorded skipped as missed.
    const last = Math.max(...fired.map(([, , tick]) => Number(tick)))
    const firedTicks = new Set(fired.map(([, id]) => id))
    let missing = 0
    for (let s = 0; s < scheduleCount; s++)
      for (let t = Math.ceil(from / 1000) * 1000; t <= last; t += 1000)
        if (!firedTicks.has(`tick-${s}@${new Date(t).toISOString()}`)) missing++
    let skippedMissed = 0
    for (const [k, , tick, count, reason] of read())
      if (k === 'skipped' && reason === 'missed' && Number(tick) >= from) skippedMissed += Number(count)
    const firedLate = fired.map(([, , tick, at]) => Number(at) - Number(tick))
    const startedLate = [
      ...new Map(started.map(([, id, tick, at]) => [id, Number(at) - Number(tick)])).values(),
    ]
    lateness.push({
      backend,
      schedules: scheduleCount,
      ticks: perId.size,
      fired: [pct(firedLate, 50), pct(firedLate, 99), Math.max(...firedLate)],
      started: [pct(startedLate, 50), pct(startedLate, 99), Math.max(...startedLate)],
      twice: [...perId.values()].filter((n) => n > 1).length,
      missing,
      skippedMissed,
    })
    console.log(JSON.stringify(lateness.at(-1)))
  }

const idle = []
for (const backend of backends) {
  for (const schedules of IDLE_SCHEDULES) {
    const p = runner({
      root,
      backend,
      ...where(backend),
      mode: 'idle',
      schedules,
      pollIntervalMs: POLL_MS,
      windowMs: IDLE_WINDOW_MS,
    })
    const result = JSON.parse((await p.seen('RESULT ')).slice(7))
    await p.exited
    const { byPrefix, ...methods } = result.requests
    const total = Object.values(methods).reduce((a, b) => a + b, 0)
    const perMinute = (n) => Math.round((n * 60_000) / IDLE_WINDOW_MS)
    idle.push({
      backend,
      schedules,
      perMinute: perMinute(total),
      methods: Object.fromEntries(Object.entries(methods).map(([k, v]) => [k, perMinute(v)])),
      byPrefix: Object.fromEntries(Object.entries(byPrefix).map(([k, v]) => [k, perMinute(v)])),
    })
    console.log(JSON.stringify(idle.at(-1)))
  }
}

const ms = ([p50, p99, max]) => `${p50} / ${p99} / ${max}`
console.log(
  `\nTick lateness, ${WORKERS} worker processes, per-second schedules, poll ${POLL_MS} ms (ms p50 / p99 / max)\n`,
)
console.log(
  '| backend | schedules | ticks | run created | step started | fired twice | not fired (skipped as missed) |',
)
console.log('|---|---:|---:|---:|---:|---:|---:|')
for (const r of lateness)
  console.log(
    `| ${LABELS[r.backend]} | ${r.schedules} | ${r.ticks} | ${ms(r.fired)} | ${ms(r.started)} | ${r.twice} | ${r.missing} (${r.skippedMissed}) |`,
  )
console.log(
  `\nStorage requests per idle worker-minute (window ${IDLE_WINDOW_MS / 1000} s, poll ${POLL_MS} ms)\n`,
)
console.log('| backend | schedules | requests/min | by method | by key prefix |')
console.log('|---|---:|---:|---|---|')
const list = (o) =>
  Object.entries(o)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')
for (const r of idle)
  console.log(
    `| ${LABELS[r.backend]} | ${r.schedules} | ${r.perMinute} | ${list(r.methods)} | ${list(r.byPrefix)} |`,
  )
