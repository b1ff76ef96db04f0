// `node bench/large.mjs [--rounds=3] [--backends=memory,fs-fsync,fs-journal,s3] [--root=<checkout>] [--cold]`: scenario f's
// 1 MB and 10 MB results alone, on each backend, against their floors measured in the same rounds
// (the codec's encode of the same value; a durable write of that many bytes; one S3 PUT), without
// the rest of `pnpm bench`. Prints the table `pnpm bench` adds under f. Needs `pnpm build` (in
// `--root`, another built checkout whose packages are measured with this harness). Each worker
// first runs f once on a MemoryStorage (steady cost per step), unless --cold (as `pnpm bench` does).
// CPU: the worker's CPU time per step, steadier than wall time on a machine shared with other work.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { importS3Client, s3FromEnv } from './backends.mjs'
import { codecEncodes, largeWrites, s3LargePuts } from './floors.mjs'
import { largeFloorTable, median } from './report.mjs'
import { runWorker } from './run-worker.mjs'
import { SCENARIOS, sizedString } from './scenarios.mjs'

const flag = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const root = resolve(flag('root') ?? join(dirname(fileURLToPath(import.meta.url)), '..'))
const rounds = Number(flag('rounds') ?? 3)
const warm = !process.argv.includes('--cold')
const s3 = s3FromEnv()
const backends = (flag('backends') ?? `memory,fs-fsync,fs-journal${s3 ? ',s3' : ''}`).split(',')
const variants = SCENARIOS.f.variants(false).filter((v) => v.bytes >= 1_000_000)
const core = await import(join(root, 'packages/core/dist/index.js'))

const work = mkdtempSync(join(tmpdir(), 'wf-large-'))
let client
let bucket
if (backends.includes('s3')) {
  const sdk = await importS3Client(root)
  client = new sdk.S3Client({
    endpoint: s3.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: s3.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
  })
  bucket = `wf-large-${Date.now().toString(36)}`
  await client.send(new sdk.CreateBucketCommand({ Bucket: bucket }))
  client.Put = sdk.PutObjectCommand
}

const floors = {}
const results = {}
const add = (table, key, value) => {
  table[key] ??= []
  table[key].push(value)
}
for (let round = 0; round < rounds; round++) {
  for (const variant of variants) {
    add(
      floors,
      `f-encode ${variant.label}`,
      codecEncodes(core.defaultCodec, (i) => sizedString(variant.bytes, i)),
    )
    add(floors, `f-write ${variant.label}`, await largeWrites(work, variant.bytes))
    if (client)
      add(floors, `f-s3 ${variant.label}`, await s3LargePuts(client, client.Put, bucket, variant.bytes))
    for (const backend of backends) {
      const dir = join(work, `f-${backend}-${round}`)
      const job = {
        root,
        scenario: 'f',
        backend,
        variant,
        dir,
        s3,
        bucket,
        prefix: `f-${round}-${variant.label}/`,
        warm,
      }
      const result = await runWorker(job)
      add(results, `f|${variant.label}|${backend}`, result)
      console.log(
        `round ${round + 1} ${variant.label} ${backend}: ${(result.ms / result.steps).toFixed(1)} ms per step (CPU ${(result.extra.cpuMs / result.steps).toFixed(1)}), ${((result.bytes ?? 0) / result.steps / 1e6).toFixed(2)} MB written per step`,
      )
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
rmSync(work, { recursive: true, force: true })
const floor = Object.fromEntries(Object.entries(floors).map(([k, v]) => [k, median(v)]))
const get = (id, backend, label) => {
  const runs = results[`${id}|${label}|${backend}`]
  return (
    runs && {
      us: median(runs.map((r) => (r.ms * 1000) / r.steps)),
      cpuUs: median(runs.map((r) => (r.extra.cpuMs * 1000) / r.steps)),
    }
  )
}
console.log(`\n${largeFloorTable(get, floor, variants, backends).join('\n')}`)
