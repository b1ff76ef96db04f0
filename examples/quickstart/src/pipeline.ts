// The quickstart's workflow: a small daily report. `fetchDay` and `clean` fan out over days, `report`
// joins them, and `planReport` is a continuation: it decides at run time how many days to fan out
// over and returns that sub-graph. Every step body appends "<pid> <stepId>" to a log file, so the
// demo can show which process ran which step.

import { appendFileSync } from 'node:fs'
import { currentStep, type StepNode, step } from '@wf/core'

export interface Row {
  day: string
  amount: number
}

const STEP_DELAY_MS = Number(process.env.QUICKSTART_STEP_DELAY_MS ?? 120)

/** Records that this process ran the current step (the demo's side effect). */
function logExecution(): void {
  const log = process.env.QUICKSTART_LOG
  if (log) appendFileSync(log, `${process.pid} ${currentStep().stepId}\n`)
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const fetchDay = step('quickstart.fetchDay', async (day: string): Promise<Row[]> => {
  logExecution()
  const seed = Number(day.replaceAll('-', ''))
  await pause(STEP_DELAY_MS * (1 + (seed % 4))) // some days are slower, so the steps finish at different times
  return Array.from({ length: 5 }, (_, i) => ({ day, amount: ((seed * (i + 7)) % 97) - 10 }))
})

export const clean = step('quickstart.clean', async (rows: Row[]): Promise<Row[]> => {
  logExecution()
  await pause(STEP_DELAY_MS)
  return rows.filter((row) => row.amount > 0)
})

export const report = step('quickstart.report', (days: Row[][]) => {
  logExecution()
  const rows = days.flat()
  return { days: days.length, rows: rows.length, total: rows.reduce((sum, row) => sum + row.amount, 0) }
})

export const planReport = step(
  'quickstart.planReport',
  (firstDay: string, count: number): StepNode<Report> => {
    logExecution()
    const start = Date.parse(`${firstDay}T00:00:00Z`)
    const days = Array.from({ length: count }, (_, i) =>
      new Date(start + i * 86_400_000).toISOString().slice(0, 10),
    )
    return report(days.map((day) => clean(fetchDay(day))))
  },
)

export type Report = { days: number; rows: number; total: number }
