// The scenarios of the benchmark issue, with trivial step bodies so the engine's and the storage's
// own cost shows. Each `run` gets a fresh storage and returns the wall time of one real run, from
// submission to result, in milliseconds, and its step count (plus scenario-specific numbers).
// `warmUp: true` marks the scenarios that worker.mjs runs several times in its process before
// measuring (and, on memory, measures several times): see worker.mjs for exactly what is measured.

/** Step definitions, registered once per process (bodies read `marks` for in-flight timings). */
export function defineSteps(core) {
  const { step } = core
  const marks = { fail: false, every: 0, at: [], lastStart: 0 }
  const sampleAt = (x) => {
    if (marks.every > 0 && x % marks.every === 0)
      marks.at.push({ x, t: performance.now(), rss: process.memoryUsage.rss() })
  }
  const steps = {
    marks,
    inc: step('bench.inc', (x) => {
      sampleAt(x)
      return x + 1
    }),
    leaf: step('bench.leaf', (i) => i),
    join: step('bench.join', (xs) => xs.length),
    payload: step('bench.payload', (_prev, i, bytes) => sizedString(bytes, i)),
    last: step(
      'bench.last',
      (x) => {
        if (marks.fail) throw new Error('the last step fails until it is fixed')
        marks.lastStart = performance.now()
        return x
      },
      { maxRetries: 0 },
    ),
  }
  // The durable-function rows (a-fn, b-fn, c-fn, g-fn): the same steps awaited by a function's body.
  // A checkout from before durable functions (bench/ab.mjs --a=…) has no `workflow`.
  if (core.workflow) {
    const { workflow } = core
    steps.fn = {
      sequential: workflow('bench.fn.sequential', async (ctx, n) => {
        let x = 0
        for (let i = 0; i < n; i++) x = await ctx.run(steps.inc(x))
        return x
      }),
      parallel: workflow('bench.fn.parallel', async (ctx, n) => {
        const xs = await ctx.run(Array.from({ length: n }, (_, i) => steps.leaf(i)))
        return ctx.run(steps.join(xs))
      }),
      // g-fn: the body stops (throws) after n - 1 calls until it is fixed, then makes the last one.
      resumed: workflow('bench.fn.resumed', async (ctx, n) => {
        let x = 0
        for (let i = 0; i < n - 1; i++) x = await ctx.run(steps.inc(x))
        if (marks.fail) throw new Error('the body stops before its last call until it is fixed')
        return ctx.run(steps.last(x))
      }),
    }
  }
  return steps
}

function fnSteps(steps) {
  if (!steps.fn) throw new Error('this checkout of @wf/core has no durable functions (workflow())')
  return steps.fn
}

const strings = new Map()
/** A string of `bytes` characters, different per `i` (so content-addressed blobs do not repeat). */
/** The result of scenario f's step `i`: a string of `bytes` ASCII characters (its floors encode the same). */
export function sizedString(bytes, i) {
  let base = strings.get(bytes)
  if (base === undefined) {
    base = 'x'.repeat(bytes)
    strings.set(bytes, base)
  }
  const tag = `${i}:`
  return tag + base.slice(tag.length)
}

function chain(steps, length, first = 0) {
  let node = steps.inc(first)
  for (let i = 1; i < length; i++) node = steps.inc(node)
  return node
}

async function timed(fn) {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

export const SCENARIOS = {
  a: {
    warmUp: true,
    title: 'a: 1 workflow, 1,000 sequential steps',
    floor: 'sequential',
    async run({ core, storage, steps, tag = '', runtimeOptions }) {
      const rt = new core.Runtime(storage, runtimeOptions)
      const ms = await timed(() => rt.run(chain(steps, 1000), { workflowId: `a${tag}` }))
      return { ms, steps: 1000 }
    },
  },
  b: {
    warmUp: true,
    title: 'b: 1 workflow, 1,000 parallel steps + join',
    floor: 'parallel',
    async run({ core, storage, steps, tag = '', runtimeOptions }) {
      const rt = new core.Runtime(storage, runtimeOptions)
      const node = steps.join(Array.from({ length: 1000 }, (_, i) => steps.leaf(i)))
      const ms = await timed(() => rt.run(node, { workflowId: `b${tag}` }))
      return { ms, steps: 1001 }
    },
  },
  c: {
    warmUp: true,
    title: 'c: 200 workflows × 10 sequential steps, started at once',
    floor: 'parallel',
    async run({ core, storage, steps, tag = '', runtimeOptions }) {
      const rt = new core.Runtime(storage, runtimeOptions)
      const ms = await timed(() =>
        Promise.all(
          Array.from({ length: 200 }, (_, w) => rt.run(chain(steps, 10), { workflowId: `c${tag}-${w}` })),
        ),
      )
      return { ms, steps: 2000 }
    },
  },
  'a-fn': {
    warmUp: true,
    title: 'a-fn: (a) as a durable function: 1,000 awaited steps in a loop',
    floor: 'sequential',
    async run({ storage, steps, core, tag = '' }) {
      const rt = new core.Runtime(storage)
      const ms = await timed(() => rt.run(fnSteps(steps).sequential(1000), { workflowId: `a-fn${tag}` }))
      return { ms, steps: 1000 }
    },
  },
  'b-fn': {
    warmUp: true,
    title: 'b-fn: (b) as a durable function: one call of 1,000 steps side by side, then the join',
    floor: 'parallel',
    async run({ storage, steps, core, tag = '' }) {
      const rt = new core.Runtime(storage)
      const ms = await timed(() => rt.run(fnSteps(steps).parallel(1000), { workflowId: `b-fn${tag}` }))
      return { ms, steps: 1001 }
    },
  },
  'c-fn': {
    warmUp: true,
    title: 'c-fn: (c) as durable functions: 200 × 10 awaited steps, started at once',
    floor: 'parallel',
    async run({ storage, steps, core, tag = '' }) {
      const rt = new core.Runtime(storage)
      const fn = fnSteps(steps).sequential
      const ms = await timed(() =>
        Promise.all(Array.from({ length: 200 }, (_, w) => rt.run(fn(10), { workflowId: `c-fn${tag}-${w}` }))),
      )
      return { ms, steps: 2000 }
    },
  },
  d: {
    title: 'd: 1 workflow, 100,000 sequential steps',
    floor: 'sequential',
    async run({ core, storage, steps, quick }) {
      const n = quick ? 20_000 : 100_000
      const window = n / 10
      steps.marks.every = window
      const rt = new core.Runtime(storage)
      const ms = await timed(() => rt.run(chain(steps, n), { workflowId: 'd' }))
      const at = steps.marks.at
      const rate = (from, to) => (window * 1000) / (to.t - from.t)
      const first = rate(at[0], at[1])
      const last = rate(at[at.length - 2], at[at.length - 1])
      return {
        ms,
        steps: n,
        extra: {
          window,
          firstRate: first,
          lastRate: last,
          firstRssMb: at[1].rss / 2 ** 20,
          lastRssMb: at[at.length - 1].rss / 2 ** 20,
        },
      }
    },
  },
  e: {
    warmUp: true,
    title: 'e: 1 workflow, 10,000-wide fan-out + join',
    floor: 'parallel',
    async run({ core, storage, steps, tag = '' }) {
      const rt = new core.Runtime(storage)
      const node = steps.join(Array.from({ length: 10_000 }, (_, i) => steps.leaf(i)))
      const ms = await timed(() => rt.run(node, { workflowId: `e${tag}` }))
      return { ms, steps: 10_001 }
    },
  },
  f: {
    title: 'f: step results of 1 KB, 100 KB, 1 MB and 10 MB (sequential)',
    floor: 'sequential',
    /** Sizes and steps per size; each size is a separate worker (`variant`). */
    variants: (quick) => [
      { label: '1 KB', bytes: 1_000, steps: quick ? 100 : 200 },
      { label: '100 KB', bytes: 100_000, steps: quick ? 20 : 30 },
      { label: '1 MB', bytes: 1_000_000, steps: 10 },
      { label: '10 MB', bytes: 10_000_000, steps: 3 },
    ],
    async run({ core, storage, steps, variant }) {
      const rt = new core.Runtime(storage)
      let node = steps.payload(null, 0, variant.bytes)
      for (let i = 1; i < variant.steps; i++) node = steps.payload(node, i, variant.bytes)
      const ms = await timed(() => rt.run(node, { workflowId: 'f' }))
      return { ms, steps: variant.steps }
    },
  },
  g: {
    title: 'g: resuming a 10,000-step chain with 9,999 steps committed',
    floor: 'sequential',
    /** Builds the failed chain: 9,999 committed steps and a last one that threw with maxRetries 0. */
    async build({ core, storage, steps }) {
      steps.marks.fail = true
      const rt = new core.Runtime(storage)
      try {
        await rt.run(steps.last(chain(steps, 9_999)), { workflowId: 'g' })
      } catch (error) {
        if (error?.code !== 'WF_EXECUTION_FAILED') throw error
      }
      steps.marks.fail = false
    },
    async run({ core, storage, steps }) {
      const t = performance.now()
      const rt = new core.Runtime(storage) // a fresh runtime, as after a restart
      await rt.resume('g')
      const ms = performance.now() - t
      if (steps.marks.lastStart === 0) throw new Error('the last step never ran')
      return { ms, steps: 1, extra: { untilLastMs: steps.marks.lastStart - t } }
    },
  },
}

SCENARIOS['g-fn'] = {
  title: 'g-fn: resuming a durable function whose loop made 9,999 of its 10,000 calls',
  floor: 'sequential',
  /** Builds the stopped run: 9,999 committed calls, then the body threw. */
  async build({ core, storage, steps }) {
    steps.marks.fail = true
    const rt = new core.Runtime(storage)
    try {
      await rt.run(fnSteps(steps).resumed(10_000), { workflowId: 'g' })
    } catch (error) {
      if (error?.code !== 'WF_EXECUTION_FAILED') throw error
    }
    steps.marks.fail = false
  },
  run: SCENARIOS.g.run,
}

/**
 * The backend a scenario's build phase (g: the committed chain) writes with, for a measurement on
 * `backend`: the folder without fsync, which is faster to make (only the resume is measured), except
 * for the journal, since a folder keeps the durability family it was made with; S3 itself.
 */
export function buildBackendFor(backend) {
  return backend === 's3' || backend === 'fs-journal' ? backend : 'fs-none'
}

/** Which backends a scenario runs on, and why some are left out. */
export function backendsFor(id, all) {
  // d: 100,000 fsynced steps (~2 min per run at ~1.5 ms) or S3 PUTs (~4 min) do not fit a bench run.
  if (id === 'd') return all.filter((b) => b === 'memory' || b === 'fs-none')
  const base = id[0]
  if (base !== 'b' && base !== 'c' && base !== 'a') return all.filter((b) => b !== 'fs-fsync-before')
  return all
}
