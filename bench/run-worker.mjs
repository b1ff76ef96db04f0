// One measurement of bench/worker.mjs in a process of its own (so peak RSS is the scenario's):
// resolves to its RESULT line, parsed. Used by `pnpm bench` (scripts/bench.mjs), bench/ab.mjs and
// bench/durable.mjs.
import { spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const workerScript = join(dirname(fileURLToPath(import.meta.url)), 'worker.mjs')

/** Runs `job` in a worker process; `echo` copies its stderr (its progress lines) to ours. */
export function runWorker(job, { execArgv = [], echo = false } = {}) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [...execArgv, workerScript, JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stderr.on('data', (chunk) => {
      stderr += chunk
      if (echo) process.stderr.write(chunk)
    })
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => {
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '))
      const why = stderr.match(/^(\w*Error\b.*)$/m)?.[1] ?? stderr.slice(-300)
      if (code !== 0 || !line) reject(new Error(`worker exited with ${code}: ${why}`))
      else resolvePromise(JSON.parse(line.slice(7)))
    })
  })
}
