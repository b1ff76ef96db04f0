// One measurement in a process of its own (so peak RSS is the scenario's): opens the backend,
// runs one scenario (or builds g's failed chain), prints one JSON line starting with RESULT.
import { join } from 'node:path'
import { countWrites, openBackend } from './backends.mjs'
import { defineSteps, SCENARIOS } from './scenarios.mjs'

const job = JSON.parse(process.argv[2])
const core = await import(join(job.root, 'packages/core/dist/index.js'))
const steps = defineSteps(core)
const scenario = SCENARIOS[job.scenario]
const syncs = { file: 0, folder: 0 }
const storage = await openBackend(job.root, job.backend, { ...job, syncs })
const counter = countWrites(storage, syncs)
const context = { core, storage, steps, quick: job.quick, variant: job.variant }

if (job.phase === 'build' || (job.scenario === 'g' && job.backend === 'memory')) await scenario.build(context)
let result = {}
if (job.phase !== 'build') {
  if (scenario.warmUp) {
    // A fresh process runs the engine's code cold: run the scenario once on a MemoryStorage first,
    // so the numbers are the steady state, not the JIT's warm-up.
    await scenario.run({ ...context, storage: new core.MemoryStorage() })
  }
  counter.reset()
  result = await scenario.run(context)
  // The process's high-water mark (no sampling timer: it would cost the scenario time).
  result = {
    ...result,
    ...counter.stats,
    fileSyncs: syncs.file,
    folderSyncs: syncs.folder,
    maxRssMb: process.resourceUsage().maxRSS / 1024,
  }
}
await storage.close?.()
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
process.exit(0)
