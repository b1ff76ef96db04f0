// One DBOS measurement in a process of its own, the counterpart of bench/worker.mjs for the issue's
// scenarios a-c: `node bench/peers/dbos-worker.mjs '{"scenario":"a","url":"postgres://…","entry":"…"}'`
// runs the scenario with real DBOS workflows and steps (each step checkpointed to PostgreSQL),
// warm-up runs first (not measured), then prints one line `RESULT {"ms", "steps", "runs", "version"}`.
//
// As in worker.mjs: step bodies are trivial; each run is timed from starting the workflow(s) to
// having every result, under workflow ids of its own; `ms` is the median of the measured runs (3
// after 3 warm-up runs; 1 after 1 with `quick`). The warm-up runs are real DBOS runs, on the same
// database: DBOS has no in-memory mode to warm its code on.
// DBOS's logging goes to a logger that only keeps warnings and errors, printed to stderr after
// the measurement, so no console output falls within the measured time.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { measureRuns } from './common.mjs'

const job = JSON.parse(process.argv[2])
const WARM_UP_RUNS = job.quick ? 1 : 3
const MEASURED_RUNS = job.quick ? 1 : 3

const module = await import(pathToFileURL(job.entry).href)
const { DBOS } = module.DBOS ? module : module.default

/** The installed SDK's version, from the package.json above its entry file. */
function versionOf(entry) {
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json')
    if (!existsSync(manifest)) continue
    const { name, version } = JSON.parse(readFileSync(manifest, 'utf8'))
    if (name === '@dbos-inc/dbos-sdk') return version
  }
  return 'unknown'
}

const logged = []
const keep = (level) => (entry) =>
  logged.push(`${level}: ${entry instanceof Error ? entry.stack : String(entry)}`)
const quiet = { info() {}, debug() {}, warn: keep('warn'), error: keep('error') }
// Node's own warnings too: dbos.mjs starts this process with --no-warnings, so they are only
// collected here and printed at the end. Left out: pg 8's deprecation of a query sent while another
// runs, which DBOS 5.3's pool does on each new connection (its `SET idle_in_transaction_…`).
process.on('warning', (warning) => {
  if (!warning.message.includes('client is already executing a query'))
    logged.push(`node ${warning.name}: ${warning.message}`)
})

// The same step bodies as bench/scenarios.mjs, as DBOS steps (DBOS wants them async).
const inc = DBOS.registerStep(async (x) => x + 1, { name: 'bench.inc' })
const leaf = DBOS.registerStep(async (i) => i, { name: 'bench.leaf' })
const joinAll = DBOS.registerStep(async (xs) => xs.length, { name: 'bench.join' })

const chain = DBOS.registerWorkflow(
  async (length) => {
    let x = 0
    for (let i = 0; i < length; i++) x = await inc(x)
    return x
  },
  { name: 'bench.chain' },
)
// DBOS numbers a workflow's steps in call order, before their first await, so steps started
// together are deterministic: Promise.all over step calls is how DBOS runs them in parallel. Their
// checkpoints do not commit in parallel, though: DBOS 5.3 writes each one in a transaction that first
// locks the workflow's status row (an ownership check, SELECT … FOR NO KEY UPDATE) until its commit,
// so one workflow's checkpoints commit one at a time, and (b) costs about what (a) does.
const fanOut = DBOS.registerWorkflow(
  async (width) => joinAll(await Promise.all(Array.from({ length: width }, (_, i) => leaf(i)))),
  { name: 'bench.fanOut' },
)

/** Starts a workflow under `workflowID` and resolves to its result. */
async function start(workflow, workflowID, arg) {
  const handle = await DBOS.startWorkflow(workflow, { workflowID })(arg)
  return handle.getResult()
}

function expect(value, wanted, what) {
  if (value !== wanted) throw new Error(`${what} returned ${value}, expected ${wanted}`)
}

const SCENARIOS = {
  a: {
    steps: 1000,
    async run(tag) {
      expect(await start(chain, `a${tag}`, 1000), 1000, 'the chain')
    },
  },
  b: {
    steps: 1001,
    async run(tag) {
      expect(await start(fanOut, `b${tag}`, 1000), 1000, 'the fan-out')
    },
  },
  c: {
    steps: 2000,
    async run(tag) {
      // All 200 started before any is awaited.
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, w) => start(chain, `c${tag}-${w}`, 10)),
      )
      for (const result of results) expect(result, 10, 'a chain of 10')
    },
  },
}

const scenario = SCENARIOS[job.scenario]
if (!scenario) throw new Error(`unknown scenario ${job.scenario} (a, b or c)`)

DBOS.setConfig({
  name: 'wf-bench',
  systemDatabaseUrl: job.url,
  logger: quiet,
  enableOTLP: false,
})
await DBOS.launch()

const { ms, runs } = await measureRuns((tag) => scenario.run(tag), WARM_UP_RUNS, MEASURED_RUNS)

await DBOS.shutdown()
for (const line of new Set(logged)) process.stderr.write(`  dbos ${line}\n`)
const result = { ms, steps: scenario.steps, runs, version: versionOf(job.entry) }
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
process.exit(0)
