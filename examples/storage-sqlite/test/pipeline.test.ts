// The quickstart's pipeline on SQLite: a continuation decides at run time how many days to fan out
// over, `fetchDay` and `clean` run once per day in parallel, `report` joins them. Every step is
// committed once to the database, and a second run with the same id reads the output back.

import { join } from 'node:path'
import { currentStep, init, type StepNode, step } from '@wf/core'
import { afterAll, expect, it } from 'vitest'
// A side-effect import registers sqlite://; an `import type` alone is erased and would not.
import '../src/index.js'
import type { SqliteStorage } from '../src/index.js'
import { tempDir } from './support.js'

interface Row {
  day: string
  amount: number
}
type Report = { days: number; rows: number; total: number }

const ran: string[] = []
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// Deterministic, so the test can compute the expected report without running the workflow.
const rowsOf = (day: string): Row[] => {
  const seed = Number(day.replaceAll('-', ''))
  return Array.from({ length: 5 }, (_, i) => ({ day, amount: ((seed * (i + 7)) % 97) - 10 }))
}
const daysFrom = (first: string, count: number): string[] =>
  Array.from({ length: count }, (_, i) =>
    new Date(Date.parse(`${first}T00:00:00Z`) + i * 86_400_000).toISOString().slice(0, 10),
  )

const fetchDay = step('sqlite.fetchDay', async (day: string): Promise<Row[]> => {
  ran.push(currentStep().stepId)
  await pause(5 + (Number(day.slice(-2)) % 4) * 5) // the days finish in a different order
  return rowsOf(day)
})
const clean = step('sqlite.clean', (rows: Row[]): Row[] => {
  ran.push(currentStep().stepId)
  return rows.filter((row) => row.amount > 0)
})
const report = step('sqlite.report', (days: Row[][]): Report => {
  ran.push(currentStep().stepId)
  const rows = days.flat()
  return { days: days.length, rows: rows.length, total: rows.reduce((sum, row) => sum + row.amount, 0) }
})
const planReport = step('sqlite.planReport', (first: string, count: number): StepNode<Report> => {
  ran.push(currentStep().stepId)
  return report(daysFrom(first, count).map((day) => clean(fetchDay(day))))
})

const temp = tempDir('pipeline')
afterAll(temp.remove)

it('runs a fan-out with a continuation on sqlite://, committing each step once, and reads the output back on a second run', async () => {
  const runtime = await init(`sqlite://${join(temp.dir, 'pipeline.db')}`)
  const storage = (await runtime.storage()) as SqliteStorage
  try {
    const days = 12
    const kept = daysFrom('2026-11-01', days).flatMap((day) => rowsOf(day).filter((row) => row.amount > 0))
    const expected = { days, rows: kept.length, total: kept.reduce((sum, row) => sum + row.amount, 0) }

    expect(await planReport('2026-11-01', days).run({ workflowId: 'report-1' })).toEqual(expected)
    const committed = await (await runtime.store()).listStepIds('report-1')
    expect(committed).toHaveLength(1 + days + days + 1)
    expect([...ran].sort()).toEqual([...committed].sort())

    ran.length = 0
    expect(await planReport('2026-11-01', days).run({ workflowId: 'report-1' })).toEqual(expected)
    expect(ran).toEqual([])

    // What the runtime wrote, as the plugin lists it: one row per step record, under the workflow's prefix.
    const page = await storage.list('workflows/report-1/steps/')
    expect(page).toEqual({ keys: [...committed].sort().map((id) => `workflows/report-1/steps/${id}`) })
  } finally {
    await storage.close()
  }
})
