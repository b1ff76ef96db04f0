// The example's workflow, the quickstart's daily report: `planReport` is a continuation that
// decides at run time how many days to fan out over, `fetchDay` and `clean` run once per day in
// parallel, and `report` joins them. Each step commits its result to the bucket once.

import { type StepNode, step } from '@wf/core'

export interface Row {
  day: string
  amount: number
}

export type Report = { days: number; rows: number; total: number }

const STEP_DELAY_MS = Number(process.env.S3_PIPELINE_STEP_DELAY_MS ?? 50)

let executed = 0

/** How many step bodies ran in this process: 0 when a run only read committed results back. */
export function stepsRunHere(): number {
  return executed
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const fetchDay = step('s3-pipeline.fetchDay', async (day: string): Promise<Row[]> => {
  executed++
  const seed = Number(day.replaceAll('-', ''))
  await pause(STEP_DELAY_MS * (1 + (seed % 4))) // stands in for an API call of varying speed
  return Array.from({ length: 5 }, (_, i) => ({ day, amount: ((seed * (i + 7)) % 97) - 10 }))
})

export const clean = step('s3-pipeline.clean', (rows: Row[]): Row[] => {
  executed++
  return rows.filter((row) => row.amount > 0)
})

export const report = step('s3-pipeline.report', (days: Row[][]): Report => {
  executed++
  const rows = days.flat()
  return { days: days.length, rows: rows.length, total: rows.reduce((sum, row) => sum + row.amount, 0) }
})

export const planReport = step(
  's3-pipeline.planReport',
  (firstDay: string, count: number): StepNode<Report> => {
    executed++
    const start = Date.parse(`${firstDay}T00:00:00Z`)
    const days = Array.from({ length: count }, (_, i) =>
      new Date(start + i * 86_400_000).toISOString().slice(0, 10),
    )
    return report(days.map((day) => clean(fetchDay(day))))
  },
)
