// One Restate measurement in a process of its own, the counterpart of dbos-worker.mjs:
// `node bench/peers/restate-worker.mjs '{"scenario":"a","sdk":"…","admin":"http://…","ingress":"http://…"}'`
// serves the bench workflows from the Restate SDK on an HTTP/2 endpoint of its own (a free port on
// 127.0.0.1), registers that endpoint with the restate-server that restate.mjs started, runs the
// scenario through the server's ingress, warm-up runs first (not measured), then prints one line
// `RESULT {"ms", "steps", "runs", "version"}`.
//
// As in worker.mjs and dbos-worker.mjs: step bodies are trivial, each one a `ctx.run` (a journal
// entry the server appends to its log, fsynced, before the SDK sees it completed); each run is timed
// from starting the workflow(s) to having every result, under workflow keys of its own; `ms` is the
// median of the measured runs (3 after 3 warm-up runs; 1 after 1 with `quick`). The endpoint and the
// client share this process, as the DBOS worker's steps and client do; the server is a process of
// its own, as DBOS's PostgreSQL is. A workflow is started by a request to the ingress that waits for
// its result (`POST /<workflow>/<key>/run`).
import { createServer } from 'node:http2'
import { measureRuns } from './common.mjs'

const job = JSON.parse(process.argv[2])
const WARM_UP_RUNS = job.quick ? 1 : 3
const MEASURED_RUNS = job.quick ? 1 : 3

// The SDK logs every invocation at info level to the console: only errors, so that no console
// output falls within the measured time.
process.env.RESTATE_LOGGING = 'ERROR'
const restate = await import(job.sdk)

// The same step bodies as bench/scenarios.mjs, each a durable step (`ctx.run`).
const inc = (x) => x + 1
const leaf = (i) => i
const joinAll = (xs) => xs.length

const chain = restate.workflow({
  name: 'bench_chain',
  handlers: {
    run: async (ctx, length) => {
      let x = 0
      for (let i = 0; i < length; i++) {
        const input = x
        x = await ctx.run('inc', () => inc(input))
      }
      return x
    },
  },
})
// Steps started together run in parallel: RestatePromise.all is the SDK's deterministic join.
const fanOut = restate.workflow({
  name: 'bench_fanOut',
  handlers: {
    run: async (ctx, width) => {
      const xs = await restate.RestatePromise.all(
        Array.from({ length: width }, (_, i) => ctx.run('leaf', () => leaf(i))),
      )
      return ctx.run('join', () => joinAll(xs))
    },
  },
})

const endpoint = createServer(restate.createEndpointHandler({ services: [chain, fanOut] }))
await new Promise((resolveListen, reject) => {
  endpoint.once('error', reject)
  endpoint.listen(0, '127.0.0.1', resolveListen)
})
const endpointUrl = `http://127.0.0.1:${endpoint.address().port}`

/** No request of a scenario takes minutes: one that does is stuck (fetch's own limit is 5 min). */
const REQUEST_TIMEOUT_MS = 120_000

async function request(url, init) {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
  const text = await response.text()
  if (!response.ok)
    throw new Error(`${init?.method ?? 'GET'} ${url}: ${response.status} ${text.slice(0, 500)}`)
  return text
}

// Registers this endpoint (force: the same services, served by the previous scenario's worker, may
// be registered already).
await request(`${job.admin}/deployments`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ uri: endpointUrl, force: true }),
})

/** Starts the workflow `name` under `key` with `arg` and resolves to its result. */
async function start(name, key, arg) {
  const text = await request(`${job.ingress}/${name}/${key}/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(arg),
  })
  return JSON.parse(text)
}

function expect(value, wanted, what) {
  if (value !== wanted) throw new Error(`${what} returned ${value}, expected ${wanted}`)
}

// A new cluster elects its partitions' leaders after it reports healthy, and a registration reaches
// the ingress a moment later: until then a call may fail. One-step chains until one answers.
for (let attempt = 1; ; attempt++) {
  try {
    expect(await start('bench_chain', `ready-${attempt}`, 1), 1, 'a chain of 1')
    break
  } catch (error) {
    if (attempt >= 120) throw new Error(`Restate did not run a workflow within a minute: ${error.message}`)
    await new Promise((resolveWait) => setTimeout(resolveWait, 500))
  }
}

const SCENARIOS = {
  a: {
    steps: 1000,
    async run(tag) {
      expect(await start('bench_chain', `a${tag}`, 1000), 1000, 'the chain')
    },
  },
  b: {
    steps: 1001,
    async run(tag) {
      expect(await start('bench_fanOut', `b${tag}`, 1000), 1000, 'the fan-out')
    },
  },
  c: {
    steps: 2000,
    async run(tag) {
      // All 200 started before any is awaited.
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, w) => start('bench_chain', `c${tag}-${w}`, 10)),
      )
      for (const result of results) expect(result, 10, 'a chain of 10')
    },
  },
}

const scenario = SCENARIOS[job.scenario]
if (!scenario) throw new Error(`unknown scenario ${job.scenario} (a, b or c)`)

const { ms, runs } = await measureRuns((tag) => scenario.run(tag), WARM_UP_RUNS, MEASURED_RUNS)

const result = { ms, steps: scenario.steps, runs, version: job.version }
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
process.exit(0)
