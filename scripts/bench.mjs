// `pnpm bench`: the engine's per-step cost on each backend next to the floor of the storage itself,
// written to bench/RESULTS.md. A first cut of the benchmark issue: scenarios (a) 1,000 sequential
// steps, (b) 1,000 parallel steps and a join, (c) 200 workflows of 10 steps at once. Medians of
// several runs; `--quick` runs fewer. Trivial step bodies, so the engine's own cost shows.
import { spawnSync } from 'node:child_process'
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { cpus, tmpdir, totalmem } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const quick = process.argv.includes('--quick')
const runs = quick ? 1 : 3
if (
  spawnSync('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
  }).status !== 0
)
  process.exit(1)

const core = await import(join(root, 'packages/core/dist/index.js'))
const fsStorage = await import(join(root, 'packages/storage-fs/dist/index.js'))
const { MemoryStorage, Runtime, step } = core

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const work = mkdtempSync(join(tmpdir(), 'wf-bench-'))

/** Counts writes and bytes going to a storage. */
function counting(storage) {
  const stats = { puts: 0, bytes: 0 }
  const put = storage.put.bind(storage)
  storage.put = (key, data, cond) => {
    stats.puts++
    stats.bytes += data.byteLength
    return put(key, data, cond)
  }
  return { storage, stats }
}

const inc = step('bench.inc', (x) => x + 1)
const leaf = step('bench.leaf', (i) => i)
const join_ = step('bench.join', (xs) => xs.length)

const scenarios = {
  'a: 1,000 sequential steps': {
    steps: 1001,
    async run(rt, id) {
      let n = inc(0)
      for (let i = 0; i < 1000; i++) n = inc(n)
      await rt.run(n, { workflowId: id })
    },
  },
  'b: 1,000 parallel steps + join': {
    steps: 1001,
    async run(rt, id) {
      await rt.run(join_(Array.from({ length: 1000 }, (_, i) => leaf(i))), { workflowId: id })
    },
  },
  'c: 200 workflows x 10 steps at once': {
    steps: 2000,
    async run(rt, id) {
      await Promise.all(
        Array.from({ length: 200 }, (_, w) => {
          let n = inc(0)
          for (let i = 1; i < 10; i++) n = inc(n)
          return rt.run(n, { workflowId: `${id}-${w}` })
        }),
      )
    },
  },
}

const backends = {
  memory: async () => new MemoryStorage(),
  'folder, fsync': async () => fsStorage.createFileSystemStorage({ root: mkdtempSync(join(work, 'fs-')) }),
  'folder, no fsync': async () =>
    fsStorage.createFileSystemStorage({ root: mkdtempSync(join(work, 'fs-')), durability: 'none' }),
}

function floor(n) {
  const dir = mkdtempSync(join(work, 'floor-'))
  const data = Buffer.alloc(100, 7)
  const t = performance.now()
  for (let i = 0; i < n; i++) {
    const tmp = join(dir, `.${i}.tmp`)
    const fd = openSync(tmp, 'w')
    writeSync(fd, data)
    fdatasyncSync(fd)
    closeSync(fd)
    renameSync(tmp, join(dir, `k${i}`))
    const dfd = openSync(dir, 'r')
    fsyncSync(dfd)
    closeSync(dfd)
  }
  return ((performance.now() - t) * 1000) / n
}

const floorUs = median(Array.from({ length: runs }, () => floor(quick ? 200 : 500)))
const lines = [
  '# wf benchmark results',
  '',
  `Written by \`pnpm bench${quick ? ' --quick' : ''}\` on ${new Date().toISOString()}: Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB. Medians of ${runs} run(s).`,
  '',
  `Floor: one durable atomic 100-byte file write (write + fdatasync + rename + directory fsync, sync API), sequential: **${floorUs.toFixed(0)} µs**.`,
  '',
]
for (const [name, scenario] of Object.entries(scenarios)) {
  lines.push(
    `## ${name}`,
    '',
    '| backend | µs per step | steps/s | writes per step | bytes written per step | peak RSS MB | ratio to floor |',
    '|---|---|---|---|---|---|---|',
  )
  for (const [backendName, make] of Object.entries(backends)) {
    const times = []
    let stats
    for (let r = 0; r < runs; r++) {
      const counted = counting(await make())
      const rt = new Runtime(counted.storage)
      const t = performance.now()
      await scenario.run(rt, `bench-${r}`)
      times.push(((performance.now() - t) * 1000) / scenario.steps)
      stats = counted.stats
    }
    const us = median(times)
    lines.push(
      `| ${backendName} | ${us.toFixed(1)} | ${Math.round(1e6 / us)} | ${(stats.puts / scenario.steps).toFixed(2)} | ${Math.round(stats.bytes / scenario.steps)} | ${Math.round(process.memoryUsage().rss / 2 ** 20)} | ${backendName.startsWith('folder, fsync') ? (us / floorUs).toFixed(2) : '–'} |`,
    )
    console.log(`${name} / ${backendName}: ${us.toFixed(1)} µs per step`)
  }
  lines.push('')
}
lines.push(
  "Not measured yet (see the benchmark issue): S3, scenarios d–g, a profile of where a step's time goes.",
  '',
)
mkdirSync(join(root, 'bench'), { recursive: true })
writeFileSync(join(root, 'bench', 'RESULTS.md'), lines.join('\n'))
rmSync(work, { recursive: true, force: true })
console.log('wrote bench/RESULTS.md')
