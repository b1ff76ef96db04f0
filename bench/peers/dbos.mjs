// DBOS measured in the same run as wf, on the same disk: the figures for DBOS were taken on
// another day, and this machine's disk speed drifts 1.5-2.5x from day to day. Installs the pinned
// SDK on demand (outside the workspace), starts a throwaway PostgreSQL, and runs scenarios a-c each
// in a dbos-worker.mjs process of its own, on a database of its own (DBOS creates it).
//
// Alone: `node bench/peers/dbos.mjs [--quick]` prints the µs per step of a, b and c.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runPeerWorker } from './common.mjs'
import { DBOS_VERSION, ensureDbos } from './install-dbos.mjs'
import { startPostgres } from './postgres.mjs'

const here = dirname(fileURLToPath(import.meta.url))

/**
 * Measures DBOS on scenarios `scenarios` (default a, b, c), one worker process each, one after the
 * other, against a PostgreSQL cluster created in a new folder under `work` (left there: the caller
 * deletes `work`). Resolves to `{ version, results: { a: { ms, steps, runs }, … } }`, where a
 * scenario that failed is `{ error: message }`; only setting up (install, PostgreSQL) throws.
 *
 * @example
 * const dbos = await measureDbos({ root, work, quick: false })
 * const usPerStep = (dbos.results.a.ms * 1000) / dbos.results.a.steps
 */
export async function measureDbos({ root, work, quick = false, scenarios = ['a', 'b', 'c'] }) {
  const entry = ensureDbos(join(root, 'node_modules', '.cache', 'wf-bench-peers'))
  mkdirSync(work, { recursive: true })
  const pg = await startPostgres(mkdtempSync(join(work, 'dbos-pg-')))
  const results = {}
  let version = DBOS_VERSION
  try {
    for (const scenario of scenarios) {
      // A database per scenario: DBOS's tables do not carry one scenario's rows into the next.
      const url = pg.url.replace(/\/postgres$/, `/dbos_bench_${scenario}`)
      try {
        const {
          ms,
          steps,
          runs,
          version: reported,
        } = await runPeerWorker(join(here, 'dbos-worker.mjs'), { scenario, url, entry, quick }, [
          '--no-warnings',
        ])
        results[scenario] = { ms, steps, runs }
        version = reported
      } catch (error) {
        results[scenario] = { error: error.message }
      }
    }
  } finally {
    await pg.stop()
  }
  return { version, results }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = performance.now()
  const work = mkdtempSync(join(tmpdir(), 'wf-bench-dbos-'))
  try {
    const { version, results } = await measureDbos({
      root: join(here, '..', '..'),
      work,
      quick: process.argv.includes('--quick'),
    })
    console.log(
      `DBOS ${version}, PostgreSQL with fsync on, in ${((performance.now() - started) / 1000).toFixed(1)} s:`,
    )
    for (const [id, r] of Object.entries(results)) {
      if (r.error) console.log(`  ${id}: failed: ${r.error}`)
      else
        console.log(
          `  ${id}: ${((r.ms * 1000) / r.steps).toFixed(0)} µs/step (median of ${r.runs.length}: ${r.runs.map((ms) => ((ms * 1000) / r.steps).toFixed(0)).join(', ')})`,
        )
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
