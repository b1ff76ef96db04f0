// `node bench/ab.mjs --a=<root> --b=<root>`: the same scenarios of bench/scenarios.mjs against two
// builds of wf (two checkouts, each built), A and B alternating in one session, to tell whether a
// change made the engine slower. Each measurement is one bench/worker.mjs process of this checkout
// given the other root (`job.root`): the harness and the scenarios stay the same, only the
// packages' `dist` differ. Within a round every scenario runs on A then on B, in the order ABBA
// over consecutive rounds, so a neighbour's load (this machine is shared) lands on both sides.
// Prints one table (µs per step: the median over rounds of each worker's median, and B / A), and
// with --out=<file> writes it as the "ab" section of that file (bench/RESULTS.md: `pnpm bench`
// carries the section over).
//
// Flags: --a=<root> --b=<root> (checkouts with `pnpm build` done; default: this checkout for B),
// --labels=<A name>,<B name>, --rounds=<n> (default 7), --only=a,b,... (default every scenario),
// --backend=memory|fs-none|fs-fsync|fs-journal (default memory), --quick, --out=<file>,
// --title=<the section's heading>.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { median } from './report.mjs'
import { runWorker } from './run-worker.mjs'
import { buildBackendFor, SCENARIOS } from './scenarios.mjs'
import { withSection } from './sections.mjs'

const here = join(dirname(fileURLToPath(import.meta.url)), '..')
const flag = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const roots = [flag('a'), flag('b') ?? here].map((r) => r && resolve(r))
if (!roots[0]) {
  console.error(
    'usage: node bench/ab.mjs --a=<root of a built checkout> [--b=<root>] [--rounds=7] [--only=a,b]',
  )
  process.exit(2)
}
for (const root of roots) {
  if (!existsSync(join(root, 'packages/core/dist/index.js'))) {
    console.error(`${root}: packages/core/dist/index.js is missing: run \`pnpm build\` there first`)
    process.exit(2)
  }
}
const labels = flag('labels')?.split(',') ?? ['A', 'B']
const rounds = Number(flag('rounds') ?? 7)
const only = flag('only')?.split(',') ?? Object.keys(SCENARIOS)
const backend = flag('backend') ?? 'memory'
const quick = process.argv.includes('--quick')
const git = (root, ...args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? ''
const revisions = roots.map((root) => git(root, 'rev-parse', '--short', 'HEAD'))

/** Runs one job in a worker process of this checkout (the job names the root whose packages it measures). */
const worker = (job) => runWorker(job)

const work = mkdtempSync(join(tmpdir(), 'wf-ab-'))
/** `key` (scenario and variant) → { wall, cpu }, each [A's µs per step per round, B's]. */
const results = new Map()
const titles = new Map()
const started = Date.now()
for (let round = 0; round < rounds; round++) {
  // ABBA: A first in even rounds, B first in odd ones.
  const order = round % 2 === 0 ? [0, 1] : [1, 0]
  for (const id of only) {
    const scenario = SCENARIOS[id]
    if (!scenario) throw new Error(`no scenario ${id} in bench/scenarios.mjs`)
    for (const [v, variant] of (scenario.variants?.(quick) ?? [undefined]).entries()) {
      const key = variant ? `${id} ${variant.label}` : id
      titles.set(key, variant ? `${scenario.title.split(':')[0]}: ${variant.label} results` : scenario.title)
      if (!results.has(key)) results.set(key, { wall: [[], []], cpu: [[], []] })
      for (const side of order) {
        const dir = join(work, `${id}${v}-${side}-${round}`)
        // f warm, as `pnpm bench` measures it: its one measured run follows one on a MemoryStorage
        // (a cold run of 200 steps of 1 KB timed V8 compiling the engine, not the engine).
        const job = { root: roots[side], scenario: id, backend, variant, quick, dir, warm: id === 'f' }
        if (SCENARIOS[id].build && backend !== 'memory')
          await worker({ ...job, phase: 'build', backend: buildBackendFor(backend) })
        const result = await worker(job)
        const us = (result.ms * 1000) / result.steps
        const cpu = (result.extra.cpuMs * 1000) / result.steps
        results.get(key).wall[side].push(us)
        results.get(key).cpu[side].push(cpu)
        console.log(
          `round ${round + 1}/${rounds} ${key} ${labels[side]}: ${us.toFixed(2)} µs/step (CPU ${cpu.toFixed(2)})`,
        )
        rmSync(dir, { recursive: true, force: true })
      }
    }
  }
}
rmSync(work, { recursive: true, force: true })

const fmt = (x) => x.toLocaleString('en-US', { maximumFractionDigits: 2, minimumFractionDigits: 2 })
const pct = (ratio) => `${ratio >= 1 ? '+' : '−'}${fmt(Math.abs(ratio - 1) * 100)} %`
/** Medians over rounds of A and B, and the median of the per-round ratios B / A (each pair ran back to back, under the same load). */
const compare = ([a, b]) => [median(a), median(b), median(a.map((x, i) => b[i] / x))]
const rows = [...results].map(([key, { wall, cpu }]) => {
  const [wa, wb, wr] = compare(wall)
  const [ca, cb, cr] = compare(cpu)
  return `| ${titles.get(key)} | ${fmt(wa)} | ${fmt(wb)} | ${pct(wr)} | ${fmt(ca)} | ${fmt(cb)} | ${pct(cr)} |`
})
const minutes = ((Date.now() - started) / 60000).toFixed(1)
const body = [
  `## ${flag('title') ?? `A/B: ${labels[0]} against ${labels[1]}`}`,
  '',
  `Written by \`node bench/ab.mjs\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC in ${minutes} min: Node ${process.version}, ${cpus().length} cores (shared). ` +
    `A = ${labels[0]} (${revisions[0] || roots[0]}), B = ${labels[1]} (${revisions[1] || roots[1]}), backend ${backend}${quick ? ', quick' : ''}. ` +
    `${rounds} round(s); in each, every scenario runs in a fresh worker process on A and on B back to back (ABBA order over rounds), ` +
    'each with the warm-up and the measured runs of bench/worker.mjs. Wall: µs per step, the median of the measured runs; ' +
    "CPU: the worker process's CPU time (every thread, GC included) per step, the same way. " +
    'The table shows the medians over rounds and, as B / A, the median of the per-round ratios (each pair ran back to back, ' +
    'under the same load from the rest of the machine). f runs once, after one unmeasured run on a MemoryStorage (as in `pnpm bench`). g counts one step: its figures are the whole resume.',
  '',
  `| scenario | ${labels[0]} wall | ${labels[1]} wall | B / A | ${labels[0]} CPU | ${labels[1]} CPU | B / A |`,
  '|---|---:|---:|---:|---:|---:|---:|',
  ...rows,
].join('\n')
console.log(`\n${body}\n`)
const out = flag('out')
if (out) {
  const previous = existsSync(out) ? readFileSync(out, 'utf8') : ''
  writeFileSync(out, withSection(previous, 'ab', body))
  console.log(`wrote ${out}`)
}
