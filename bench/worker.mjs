// One measurement in a process of its own (so peak RSS is the scenario's): opens the backend,
// runs one scenario (or builds g's failed chain), prints one JSON line starting with RESULT.
//
// What is measured, for the scenarios with `warmUp` (a, b, c, e):
// - Warm-up, not measured: a fresh process runs the engine's code cold, and V8 optimizes its hot
//   functions only after thousands of calls, then revises its choices (which allocations to put
//   straight in the old generation) after a few dozen more runs: a 1,000-step chain ran at ~50-120
//   µs per step the first time, reached ~5 µs after ~8 runs, and still had runs of 20-70 µs around
//   the 25th (code thrown away and optimized again). So the scenario first runs on a MemoryStorage
//   until at least WARM_UP_STEPS steps and WARM_UP_RUNS runs are done.
// - Then the measured runs, each one real run of the scenario, timed from submission to result:
//   on `memory`, MEASURED_RUNS_MEMORY runs (each on a fresh MemoryStorage) and `ms` is their
//   median; on the folder backends (a-c), one more warm-up run on the measured storage, then
//   MEASURED_RUNS_DISK runs under new workflow ids, and their median; on S3 (and the folder in e),
//   one run. Writes and bytes are those of the first measured run.
// - `extra` keeps the rest: `coldMs` (the first warm-up run: what a process that just started
//   sees), `firstMs` (the first measured run), `warmUpRuns`, `cpuMs` (the median CPU time of the
//   process over the measured runs) and, on memory, `minMs` and `maxMs`.
//   They are also printed to stderr.
// Scenario d (one long run) and f, g are measured once, without warm-up, each after a full garbage
// collection: a run of f at 1 KB takes ~17 ms, and whether one or two scavenges of the young
// generation (1.5-3 ms each) land in it depended on what the process had allocated before, loading
// the engine's modules included (measured: a334fb6 started f with 0.6 MB of young garbage and had
// one scavenge in the run, the layered core of #18, with twice the modules, started with 1.4 MB and
// had two, for the same 3.5 MB allocated by the run itself). Peak RSS is the whole process's,
// warm-up included.
// Under `--cpu-prof` (the profile rows of the report), the worker keeps to one warm-up run and one
// measured run: the report divides the whole process's CPU time by twice the scenario's steps.
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { countWrites, openBackend } from './backends.mjs'
import { defineSteps, SCENARIOS } from './scenarios.mjs'

const profiled = process.execArgv.some((arg) => arg.startsWith('--cpu-prof'))
const WARM_UP_STEPS = profiled ? 0 : 50_000
const WARM_UP_RUNS = profiled ? 1 : 3
// 15, not 5: a run of b allocates ~3.7 MB, so about one run in four holds a young-generation GC that
// doubles its time, and with 5 runs whether the median is such a run depended on how full the young
// generation was when measuring began (set by module loading and the warm-up, not by the code measured).
const MEASURED_RUNS_MEMORY = profiled ? 1 : 15
const MEASURED_RUNS_DISK = 3
/** A full collection (`gc` without --expose-gc on the command line: ab.mjs and report.mjs start workers plainly). */
function collectGarbage() {
  // Only in the processes that measure a single run: V8 flags set after start stay out of the rest.
  setFlagsFromString('--expose-gc')
  runInNewContext('gc')()
}

const job = JSON.parse(process.argv[2])
const core = await import(join(job.root, 'packages/core/dist/index.js'))
const steps = defineSteps(core)
const scenario = SCENARIOS[job.scenario]
const syncs = { file: 0, folder: 0 }
const storage = await openBackend(job.root, job.backend, { ...job, syncs })
const counter = countWrites(storage, syncs)
const context = {
  core,
  storage,
  steps,
  quick: job.quick,
  variant: job.variant,
  runtimeOptions: job.runtimeOptions,
}
/** A MemoryStorage wrapped like the measured storage (so the engine's call sites see one shape). */
const spareMemory = () => {
  const spare = new core.MemoryStorage()
  countWrites(spare, { file: 0, folder: 0 })
  return spare
}
const perStep = (ms, n) => `${((ms * 1000) / n).toFixed(1)} µs/step`

if (job.phase === 'build' || (scenario.build && job.backend === 'memory')) await scenario.build(context)
let result = {}
if (job.phase !== 'build') {
  let coldMs
  let warmUpRuns = 0
  if (scenario.warmUp) {
    let warmSteps = 0
    for (; warmUpRuns < WARM_UP_RUNS || warmSteps < WARM_UP_STEPS; warmUpRuns++) {
      const warm = await scenario.run({ ...context, storage: spareMemory() })
      coldMs ??= warm.ms
      warmSteps += warm.steps
    }
  }
  // On the folder, a-c also warm up on the measured storage (its own code, the journal's segment,
  // the first folders), then run MEASURED_RUNS_DISK times under new workflow ids.
  const onDisk =
    scenario.warmUp && job.backend.startsWith('fs-') && 'abc'.includes(job.scenario[0]) && !profiled
  if (onDisk) {
    await scenario.run({ ...context, tag: '-warm' })
    warmUpRuns++
  }
  // `job.warm` (bench/large.mjs): a scenario measured once first runs once on a MemoryStorage, so
  // its time per step is the steady cost, not that of the engine's code compiled cold.
  if (!scenario.warmUp && job.warm) await scenario.run({ ...context, storage: spareMemory() })
  counter.reset()
  // A run measured once starts with an empty young generation (see the top of this file).
  if (!scenario.warmUp) collectGarbage()
  // CPU time of the process per measured run too (all threads: GC and V8's helpers included): on a
  // machine shared with other work, it moves less than the wall time (bench/ab.mjs compares both).
  const cpuMs = []
  const measure = async (ctx) => {
    const before = process.cpuUsage()
    const run = await scenario.run(ctx)
    const used = process.cpuUsage(before)
    cpuMs.push((used.user + used.system) / 1000)
    return run
  }
  result = await measure({ ...context, tag: '-1' })
  const stats = { ...counter.stats, fileSyncs: syncs.file, folderSyncs: syncs.folder }
  if (scenario.warmUp) {
    const firstMs = result.ms
    const all = [firstMs]
    if (job.backend === 'memory') {
      while (all.length < MEASURED_RUNS_MEMORY)
        all.push((await measure({ ...context, storage: spareMemory() })).ms)
    } else if (onDisk) {
      while (all.length < MEASURED_RUNS_DISK)
        all.push((await measure({ ...context, tag: `-${all.length + 1}` })).ms)
    }
    const sorted = [...all].sort((x, y) => x - y)
    const ms = sorted[sorted.length >> 1]
    const cpuSorted = [...cpuMs].sort((x, y) => x - y)
    const extra = { ...result.extra, coldMs, firstMs, warmUpRuns, cpuMs: cpuSorted[cpuSorted.length >> 1] }
    if (all.length > 1) Object.assign(extra, { minMs: sorted[0], maxMs: sorted[sorted.length - 1] })
    result = { ...result, ms, extra }
    process.stderr.write(
      `  ${job.scenario} ${job.backend}: cold (first run in the process) ${perStep(coldMs, result.steps)}; ` +
        `after ${warmUpRuns} warm-up run(s): ${all.length > 1 ? `median of ${all.length} runs ${perStep(ms, result.steps)} (runs: ${all.map((x) => ((x * 1000) / result.steps).toFixed(1)).join(', ')})` : perStep(ms, result.steps)}\n`,
    )
  } else result = { ...result, extra: { ...result.extra, cpuMs: cpuMs[0] } }
  // The process's high-water mark (no sampling timer: it would cost the scenario time).
  result = { ...result, ...stats, maxRssMb: process.resourceUsage().maxRSS / 1024 }
}
// Timed apart: for the journal, close() is the checkpoint that otherwise runs in the background.
const closing = performance.now()
await storage.close?.()
result.closeMs = performance.now() - closing
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
process.exit(0)
