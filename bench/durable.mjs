// `node bench/durable.mjs`: durable functions beside graphs. Scenarios a, b, c and g of the
// benchmark and their durable-function forms (a-fn, b-fn, c-fn, g-fn: the same steps awaited by a
// function's body), on the same storage in the same run, each pair back to back in fresh worker
// processes (bench/worker.mjs: JIT warm-up on memory, then the measured runs). Prints one table and,
// with --out=<file>, writes it as the "durable" section of that file (bench/RESULTS.md).
//
// Flags: --rounds=<n> (default 3), --backends=memory,fs-journal (default both), --quick, --out=<file>.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median } from './report.mjs'
import { runWorker } from './run-worker.mjs'
import { buildBackendFor, SCENARIOS } from './scenarios.mjs'
import { withSection } from './sections.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const flag = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const rounds = Number(flag('rounds') ?? 3)
const backends = flag('backends')?.split(',') ?? ['memory', 'fs-journal']
const quick = process.argv.includes('--quick')
const PAIRS = ['a', 'b', 'c', 'g']

const work = mkdtempSync(join(tmpdir(), 'wf-durable-bench-'))
/** `<scenario>|<backend>` → { us: [...], cpu: [...], untilLast: [...] } over rounds. */
const results = new Map()
const started = Date.now()
for (let round = 0; round < rounds; round++) {
  for (const backend of backends) {
    for (const base of PAIRS) {
      // Graph first in even rounds, the function first in odd ones.
      const ids = round % 2 === 0 ? [base, `${base}-fn`] : [`${base}-fn`, base]
      for (const id of ids) {
        const dir = join(work, `${id}-${backend}-${round}`)
        const job = { root, scenario: id, backend, quick, dir }
        if (SCENARIOS[id].build && backend !== 'memory')
          await runWorker({ ...job, phase: 'build', backend: buildBackendFor(backend) })
        const result = await runWorker(job)
        const key = `${id}|${backend}`
        if (!results.has(key)) results.set(key, { us: [], cpu: [], untilLast: [] })
        const into = results.get(key)
        into.us.push((result.ms * 1000) / result.steps)
        into.cpu.push((result.extra.cpuMs * 1000) / result.steps)
        if (result.extra.untilLastMs !== undefined) into.untilLast.push(result.extra.untilLastMs)
        console.log(
          `round ${round + 1}/${rounds} ${id} ${backend}: ${into.us.at(-1).toFixed(1)} µs/step (CPU ${into.cpu.at(-1).toFixed(1)})`,
        )
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
}
rmSync(work, { recursive: true, force: true })

const fmt = (x, digits = 1) =>
  x === undefined
    ? '–'
    : x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
const rows = []
for (const backend of backends) {
  for (const base of PAIRS) {
    const graph = results.get(`${base}|${backend}`)
    const fn = results.get(`${base}-fn|${backend}`)
    if (!graph || !fn) continue
    if (base === 'g') {
      const [gm, fm] = [median(graph.untilLast), median(fn.untilLast)]
      rows.push(
        `| ${SCENARIOS['g-fn'].title} | ${backend} | ${fmt(gm, 0)} ms | ${fmt(fm, 0)} ms | ${fmt(fm / gm, 2)}× | ${fmt((fm * 1000) / 9999)} µs per replayed call | |`,
      )
      continue
    }
    const [gw, fw, gc, fc] = [median(graph.us), median(fn.us), median(graph.cpu), median(fn.cpu)]
    rows.push(
      `| ${SCENARIOS[`${base}-fn`].title} | ${backend} | ${fmt(gw)} | ${fmt(fw)} | ${fmt(fw / gw, 2)}× | ${fmt(gc)} | ${fmt(fc)} |`,
    )
  }
}
const minutes = ((Date.now() - started) / 60000).toFixed(1)
const body = [
  '## Durable functions beside graphs (bench/durable.mjs)',
  '',
  `Written by \`node bench/durable.mjs\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC in ${minutes} min: Node ${process.version}, ${cpus().length} cores (shared). ` +
    `${rounds} round(s); in each, on each backend, a scenario and its durable-function form run back to back in fresh worker processes (the order alternates over rounds), with bench/worker.mjs's warm-up and measured runs. ` +
    'µs per step (wall, and the CPU time of the worker process per step), medians over rounds. g: the time from `resume()` until the last step starts (the graph reloads 9,999 committed steps; the function runs its body from the top and replays 9,999 committed calls, their records read ahead in key order).',
  '',
  '| scenario | backend | graph µs/step | function µs/step | function / graph | graph CPU µs/step | function CPU µs/step |',
  '|---|---|---:|---:|---:|---:|---:|',
  ...rows,
].join('\n')
console.log(`\n${body}\n`)
const out = flag('out')
if (out) {
  const previous = existsSync(out) ? readFileSync(out, 'utf8') : ''
  writeFileSync(out, withSection(previous, 'durable', body))
  console.log(`wrote ${out}`)
}
