// What the benchmarks that run real processes share (bench/cancel.mjs, events.mjs, sleep.mjs): a
// fresh place per measurement (a folder, or a prefix of one bucket created for the run), a child
// process whose printed lines can be awaited, and percentiles.
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { importS3Client } from './backends.mjs'

/** Labels of the backends these benchmarks measure. */
export const LABELS = { 'fs-fsync': 'folder, fsync', s3: 'S3 (Ceph RGW)' }

/**
 * A work folder and, with `s3`, a bucket made for this run (`wf-bench-<name>-<time>`); `where(backend)`
 * gives each measurement a place of its own (a subfolder, or a prefix of the bucket).
 */
export async function benchPlaces(root, s3, name) {
  const work = mkdtempSync(join(tmpdir(), `wf-bench-${name}-`))
  let bucket
  if (s3) {
    const sdk = await importS3Client(root)
    const client = new sdk.S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: s3.credentials,
    })
    bucket = `wf-bench-${name}-${Date.now().toString(36)}`
    await client.send(new sdk.CreateBucketCommand({ Bucket: bucket }))
    client.destroy()
  }
  const backends = ['fs-fsync', ...(s3 ? ['s3'] : [])]
  const letter = name[0]
  let seq = 0
  const where = (backend) => {
    seq++
    return backend === 's3'
      ? { s3, bucket, prefix: `${letter}${seq}/` }
      : { dir: join(work, `${letter}${seq}`) }
  }
  // `seq`: the number of the last place given (measurements name their workflows after it).
  return {
    work,
    bucket,
    backends,
    where,
    get seq() {
      return seq
    },
  }
}

/**
 * Starts `node <script> <job as JSON>`; `seen(prefix)` resolves with the first line it printed
 * that starts with `prefix` (rejects if it exits first), `lines` has them all.
 */
export function childProcess(script, job) {
  const child = spawn(process.execPath, [script, JSON.stringify(job)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines = []
  let buffer = ''
  const listeners = new Set()
  child.stdout.on('data', (chunk) => {
    buffer += chunk
    let at = buffer.indexOf('\n')
    while (at !== -1) {
      const line = buffer.slice(0, at)
      buffer = buffer.slice(at + 1)
      lines.push(line)
      for (const listener of listeners) listener(line)
      at = buffer.indexOf('\n')
    }
  })
  const exited = new Promise((resolve) => child.once('close', resolve))
  const seen = (prefix) =>
    new Promise((resolve, reject) => {
      const found = lines.find((l) => l.startsWith(prefix))
      if (found) return resolve(found)
      listeners.add((line) => line.startsWith(prefix) && resolve(line))
      exited.then((code) =>
        reject(new Error(`${script} exited (${code}) before ${prefix}: ${lines.slice(-3).join(' | ')}`)),
      )
    })
  return { child, lines, seen, exited }
}

/** The `p`th percentile of `values` (nearest rank). */
export const pct = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}
