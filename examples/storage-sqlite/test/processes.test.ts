// Conditional writes raced by real processes on one database file: the contract suite's parallel
// writers share one connection (better-sqlite3 is synchronous, so they never truly overlap); here
// each writer is its own process with its own connection, as runners on one machine are.

import { join } from 'node:path'
import { expect, it } from 'vitest'
import { createSqliteStorage } from '../src/index.js'
import { fixture, requireBuild, runNode, tempDir } from './support.js'

const PROCESSES = 4
const CLAIMS = 50
const INCREMENTS = 150

it(`lets exactly one of ${PROCESSES} processes win each create-if-absent, and loses no compare-and-swap increment`, async () => {
  requireBuild()
  const temp = tempDir('race')
  const database = join(temp.dir, 'race.db')
  const storage = await createSqliteStorage({ path: database })
  try {
    await storage.put('counter', new TextEncoder().encode('0'))
    const startAt = Date.now() + 1500 // after every child has started up
    const exits = await Promise.all(
      Array.from({ length: PROCESSES }, () =>
        runNode([fixture('race-child.mjs'), database, String(startAt), String(CLAIMS), String(INCREMENTS)]),
      ),
    )
    for (const exit of exits) {
      expect(exit.stderr).toBe('')
      expect(exit.code).toBe(0)
    }
    const results = exits.map((exit) => JSON.parse(exit.stdout) as { claimed: number[]; conflicts: number })

    const counter = await storage.get('counter')
    expect(new TextDecoder().decode(counter?.data)).toBe(String(PROCESSES * INCREMENTS))
    const wins = results.flatMap((result) => result.claimed).sort((a, b) => a - b)
    expect(wins).toEqual(Array.from({ length: CLAIMS }, (_, i) => i))
    expect((await storage.list('claims/')).keys).toHaveLength(CLAIMS)
    // The race was real: some swaps lost to another process and were retried.
    expect(results.reduce((sum, result) => sum + result.conflicts, 0)).toBeGreaterThan(0)
  } finally {
    await storage.close()
    temp.remove()
  }
}, 60_000)
