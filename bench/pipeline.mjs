// `node bench/pipeline.mjs`: pipelined checkpoints (`pipelineCheckpoints: true`) against the default,
// strict checkpoints, in the same run. Scenarios a, b and c of the benchmark on the folder (journal
// and fsync) and, when WF_S3_ENDPOINT is set, scenario a on S3 with 20 ms added before every request
// (a distant region). Each pair runs back to back in fresh worker processes (bench/worker.mjs: JIT
// warm-up, then the measured runs), the order alternating over rounds. Prints one table and, with
// --out=<file>, writes it as the "pipeline" section of that file (bench/RESULTS.md).
//
// Flags: --rounds=<n> (default 3), --backends=fs-journal,fs-fsync,s3-20ms, --quick, --out=<file>.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BACKEND_LABELS, importS3Client, s3FromEnv } from './backends.mjs'
import { median } from './report.mjs'
import { runWorker } from './run-worker.mjs'
import { SCENARIOS } from './scenarios.mjs'
import { withSection } from './sections.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const flag = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const rounds = Number(flag('rounds') ?? 3)
const quick = process.argv.includes('--quick')
const s3 = s3FromEnv()
const backends = flag('backends')?.split(',') ?? ['fs-journal', 'fs-fsync', ...(s3 ? ['s3-20ms'] : [])]
/** Scenarios per backend: on S3 with added latency only the chain (a) is asked for (and b for the target). */
const scenariosOf = (backend) => (backend === 's3-20ms' ? ['a'] : ['a', 'b', 'c'])
const MODES = { strict: undefined, pipelined: { pipelineCheckpoints: true } }

let bucket
if (backends.some((b) => b.startsWith('s3'))) {
  if (!s3) throw new Error('set WF_S3_ENDPOINT (and the keys) for the S3 rows')
  const sdk = await importS3Client(root)
  const client = new sdk.S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3.credentials,
  })
  bucket = `wf-bench-pipeline-${Date.now().toString(36)}`
  await client.send(new sdk.CreateBucketCommand({ Bucket: bucket }))
  client.destroy()
}

const work = mkdtempSync(join(tmpdir(), 'wf-pipeline-bench-'))
/** `<scenario>|<backend>|<mode>` → { us: [...], cpu: [...] } over rounds. */
const results = new Map()
const loads = []
const started = Date.now()
let seq = 0
for (let round = 0; round < rounds; round++) {
  for (const backend of backends) {
    for (const scenario of scenariosOf(backend)) {
      const modes = round % 2 === 0 ? ['strict', 'pipelined'] : ['pipelined', 'strict']
      for (const mode of modes) {
        seq++
        const dir = join(work, `${scenario}-${backend}-${mode}-${round}`)
        const place = backend.startsWith('s3') ? { s3, bucket, prefix: `p${seq}/` } : { dir }
        loads.push(loadavg()[0])
        const result = await runWorker({
          root,
          scenario,
          backend,
          quick,
          ...place,
          runtimeOptions: MODES[mode],
        })
        const key = `${scenario}|${backend}|${mode}`
        if (!results.has(key)) results.set(key, { us: [], cpu: [] })
        const into = results.get(key)
        into.us.push((result.ms * 1000) / result.steps)
        into.cpu.push((result.extra.cpuMs * 1000) / result.steps)
        console.log(
          `round ${round + 1}/${rounds} ${scenario} ${backend} ${mode}: ${into.us.at(-1).toFixed(1)} µs/step (CPU ${into.cpu.at(-1).toFixed(1)})`,
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
const us = (scenario, backend, mode) => {
  const found = results.get(`${scenario}|${backend}|${mode}`)
  return found && median(found.us)
}
const cpu = (scenario, backend, mode) => {
  const found = results.get(`${scenario}|${backend}|${mode}`)
  return found && median(found.cpu)
}
const rows = []
for (const backend of backends) {
  for (const scenario of scenariosOf(backend)) {
    const [s, p] = [us(scenario, backend, 'strict'), us(scenario, backend, 'pipelined')]
    rows.push(
      `| ${SCENARIOS[scenario].title} | ${BACKEND_LABELS[backend]} | ${fmt(s)} | ${fmt(p)} | ${fmt(s / p, 2)}× | ${fmt(cpu(scenario, backend, 'strict'))} | ${fmt(cpu(scenario, backend, 'pipelined'))} |`,
    )
  }
}
const targets = []
for (const backend of backends.filter((b) => b.startsWith('fs-'))) {
  const a = us('a', backend, 'pipelined')
  const b = us('b', backend, 'strict')
  if (a === undefined || b === undefined) continue
  targets.push(
    `- ${BACKEND_LABELS[backend]}: (a) pipelined ${fmt(a)} µs per step, (b) ${fmt(b)} µs: ${fmt(a / b, 2)}× — ${a <= 2 * b ? 'met' : 'not met'} (target: within 2×).`,
  )
}
const minutes = ((Date.now() - started) / 60000).toFixed(1)
const body = [
  '## Pipelined checkpoints (bench/pipeline.mjs)',
  '',
  `Written by \`node bench/pipeline.mjs${quick ? ' --quick' : ''}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC in ${minutes} min: Node ${process.version}, ${cpus().length} cores (shared; load average ${fmt(Math.min(...loads), 1)}–${fmt(Math.max(...loads), 1)} while it ran). ` +
    `${rounds} round(s); in each, on each backend, a scenario runs with strict checkpoints (the default) and with \`pipelineCheckpoints: true\` back to back in fresh worker processes (the order alternates over rounds), with bench/worker.mjs's warm-up and measured runs. ` +
    "µs per step (wall, and the CPU time of the worker process per step), medians over rounds. With the journal, a pipelined record is written as soon as its input was accepted (`putStaged`): the chain shares the journal's group commit as a fan-out does. On S3 a record can only be written once its input's PUT answered, so a chain still pays one request per step: pipelining only overlaps the steps' own work with it.",
  '',
  '| scenario | backend | strict µs/step | pipelined µs/step | speed-up | strict CPU µs/step | pipelined CPU µs/step |',
  '|---|---|---:|---:|---:|---:|---:|',
  ...rows,
  '',
  '**Target** (pipelined (a) on the folder within 2× of (b) in the same run):',
  ...targets,
].join('\n')
console.log(`\n${body}\n`)
const out = flag('out')
if (out) {
  const previous = existsSync(out) ? readFileSync(out, 'utf8') : ''
  writeFileSync(out, withSection(previous, 'pipeline', body))
  console.log(`wrote ${out}`)
}
