// How `wf doctor` prints its report: one section per kind of problem, each line naming the
// workflow (or key) and what was done or what to do.

import type { StorageReport } from '../doctor.js'
import { type Out, paint, shorten, shortenQuoted, time } from './format.js'

/** Whether the report leaves anything for the user: corrupt records, orphans kept, markers not repaired. */
export function problemsLeft(report: StorageReport): boolean {
  return (
    report.corrupt.length > 0 ||
    report.orphans.some((o) => !o.removed) ||
    report.staleIndex.some((s) => !s.repaired) ||
    (!report.fixed &&
      report.unfinishedDeletions.length +
        report.unindexedEnded.length +
        report.unindexedCreated.length +
        report.staleCreated.length >
        0)
  )
}

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`

/** The report as text. */
export function doctorText(report: StorageReport, out: Pick<Out, 'color'>): string {
  const lines = [`checked ${plural(report.checked, 'workflow id')}`]
  const { unfinishedDeletions, unindexedEnded, unindexedCreated, staleCreated } = report
  if (
    report.corrupt.length +
      report.orphans.length +
      report.staleIndex.length +
      unfinishedDeletions.length +
      unindexedEnded.length +
      unindexedCreated.length +
      staleCreated.length ===
    0
  ) {
    lines.push(paint(out, 'green', 'no problems found'))
    return lines.join('\n')
  }
  if (report.corrupt.length > 0) {
    lines.push('', paint(out, 'bold', `unreadable records (${report.corrupt.length})`))
    for (const c of report.corrupt) {
      const fix =
        c.workflowId === undefined
          ? 'inspect it, then delete it by hand'
          : `\`wf delete ${shorten(c.workflowId)} --force\` removes the workflow`
      lines.push(`  ${paint(out, 'red', shorten(c.key))}: ${shortenQuoted(c.message)}`, `    ${fix}`)
    }
  }
  if (report.orphans.length > 0) {
    lines.push('', paint(out, 'bold', `keys of workflows without a record (${report.orphans.length})`))
    for (const o of report.orphans) {
      const age = o.lastWrittenAt === undefined ? '' : `, last written ${time(o.lastWrittenAt)}`
      const what = o.removed
        ? paint(out, 'green', 'removed')
        : o.removable
          ? 'removable: run `wf doctor --fix`'
          : `kept: ${o.reason ?? ''}`
      lines.push(`  ${shorten(o.workflowId)}: ${plural(o.keys.length, 'key')}${age}: ${what}`)
    }
  }
  if (report.staleIndex.length > 0) {
    lines.push(
      '',
      paint(out, 'bold', `index entries that disagree with their record (${report.staleIndex.length})`),
    )
    for (const s of report.staleIndex) {
      const markers = s.markers.length === 0 ? 'none' : s.markers.join(', ')
      const what = s.repaired
        ? paint(out, 'green', 'repaired')
        : s.status === 'RUNNING' && report.fixed
          ? 'left to the runner driving it'
          : 'run `wf doctor --fix`'
      lines.push(`  ${shorten(s.workflowId)}: markers ${markers}, its record says ${s.expected}: ${what}`)
    }
  }
  // Lists that may be long (every workflow of a store that ended before the ended index): a few ids.
  const few = (ids: string[]) =>
    ids.length <= 5
      ? ids.map(shorten).join(', ')
      : `${ids.slice(0, 5).map(shorten).join(', ')} and ${ids.length - 5} more`
  const done = (text: string) => (report.fixed ? paint(out, 'green', text) : 'run `wf doctor --fix`')
  if (unfinishedDeletions.length > 0)
    lines.push(
      '',
      paint(out, 'bold', `deletions cut short (${unfinishedDeletions.length})`),
      `  ${few(unfinishedDeletions)}: ${done('finished')}`,
    )
  if (unindexedEnded.length > 0)
    lines.push(
      '',
      paint(out, 'bold', `ended workflows missing from the ended index (${unindexedEnded.length})`),
      `  ${few(unindexedEnded)}: ${done('indexed')} (retention passes find them then)`,
    )
  if (unindexedCreated.length > 0)
    lines.push(
      '',
      paint(out, 'bold', `workflows missing from the creation-time index (${unindexedCreated.length})`),
      `  ${few(unindexedCreated)}: ${done('indexed')} (the dashboard lists them then)`,
    )
  if (staleCreated.length > 0)
    lines.push(
      '',
      paint(out, 'bold', `creation-time entries of no workflow (${staleCreated.length})`),
      `  ${few(staleCreated)}: ${done('deleted')}`,
    )
  return lines.join('\n')
}
