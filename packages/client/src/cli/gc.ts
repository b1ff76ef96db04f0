// `wf gc`: deletes ended workflows in bulk (deleteWorkflows). Asks before deleting unless --yes,
// and refuses without --yes when nobody can answer (stdin not a terminal); a progress bar on
// stderr on long runs (cli-progress), never under --json or when stdout is not a terminal.

import { createInterface } from 'node:readline/promises'
import { InvalidOptionsError, parseDuration, type WorkflowStatus } from '@wf/core'
import cliProgress from 'cli-progress'
import type { WorkflowClient } from '../client.js'
import type { DeleteWorkflowsResult } from '../retention.js'
import { type Out, paint } from './format.js'

/** The options `wf gc` takes. */
export interface GcCommandOptions {
  status?: WorkflowStatus[]
  olderThan?: string
  dryRun?: boolean
  yes?: boolean
  full?: boolean
  metadata?: string[]
}

/** The streams `wf gc` talks through. */
export interface GcIO {
  stdin: NodeJS.ReadStream
  stdout: NodeJS.WriteStream
  stderr: NodeJS.WriteStream
}

/** A bar once the pass has this many entries to look at: shorter runs end before it would draw. */
const BAR_FROM = 200

/** `--metadata key=value` (value as JSON when it parses, else the text). */
function parseMetadata(pairs: readonly string[]): { [key: string]: unknown } | undefined {
  if (pairs.length === 0) return undefined
  const metadata: { [key: string]: unknown } = {}
  for (const pair of pairs) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new InvalidOptionsError(`--metadata takes key=value, got ${JSON.stringify(pair)}`)
    const text = pair.slice(eq + 1)
    let value: unknown = text
    try {
      value = JSON.parse(text)
    } catch {
      // Plain text: `--metadata team=payments`.
    }
    metadata[pair.slice(0, eq)] = value
  }
  return metadata
}

function summary(result: DeleteWorkflowsResult, days: string): string {
  const n = result.workflows
  const verb = result.dryRun ? 'would delete' : 'deleted'
  const skipped = result.skipped > 0 ? `; ${result.skipped} skipped (resumed meanwhile or unreadable)` : ''
  return `${verb} ${n} workflow${n === 1 ? '' : 's'} (${result.keys} key${result.keys === 1 ? '' : 's'}) that ended more than ${days} ago${skipped}`
}

/** Runs `wf gc`; resolves to the exit code (0, or 1 when the user said no). */
export async function runGc(
  client: WorkflowClient,
  options: GcCommandOptions,
  out: Out,
  io: GcIO,
): Promise<number> {
  if (options.status === undefined || options.status.length === 0)
    throw new InvalidOptionsError('wf gc needs --status, e.g. --status SUCCESSFUL,CANCELED')
  if (options.olderThan === undefined)
    throw new InvalidOptionsError('wf gc needs --older-than, e.g. --older-than 30d')
  const age = parseDuration(options.olderThan, '--older-than')
  const metadata = parseMetadata(options.metadata ?? [])
  const base = {
    status: options.status,
    endedBefore: Date.now() - age,
    full: options.full ?? false,
    ...(metadata === undefined ? {} : { metadata: metadata as never }),
  }
  const what = `${options.status.join(', ')} workflows that ended more than ${options.olderThan} ago`
  if (!options.dryRun && !options.yes) {
    if (!io.stdin.isTTY)
      throw new InvalidOptionsError(
        `wf gc would delete ${what} and cannot ask (stdin is not a terminal): add --yes to delete, or --dry-run to count`,
      )
    const counted = await client.deleteWorkflows({ ...base, dryRun: true })
    if (counted.workflows === 0) {
      out.stdout(out.json ? JSON.stringify(counted) : summary(counted, options.olderThan))
      return 0
    }
    const rl = createInterface({ input: io.stdin, output: io.stderr })
    const answer = await rl.question(
      `Delete ${counted.workflows} ${what} (${counted.keys} keys)? This cannot be undone. [y/N] `,
    )
    rl.close()
    if (!/^y(es)?$/i.test(answer.trim())) {
      out.stderr(`${paint(out, 'yellow', 'wf:')} nothing deleted\n`)
      return 1
    }
  }
  // Quiet for scripts: under --json, and when stdout is not a terminal (output piped or logged).
  const wantBar = !out.json && io.stdout.isTTY === true && io.stderr.isTTY === true
  let bar: cliProgress.SingleBar | undefined
  const result = await client.deleteWorkflows({
    ...base,
    dryRun: options.dryRun ?? false,
    ...(wantBar
      ? {
          onProgress: ({ scanned, workflows, total }) => {
            if (bar === undefined && total >= BAR_FROM) {
              bar = new cliProgress.SingleBar(
                {
                  stream: io.stderr,
                  format: ' {bar} {value}/{total} looked at, {workflows} deleted, {eta_formatted} left',
                  hideCursor: true,
                  clearOnComplete: true,
                },
                cliProgress.Presets.shades_classic,
              )
              bar.start(total, 0, { workflows: 0 })
            }
            bar?.setTotal(Math.max(total, scanned))
            bar?.update(scanned, { workflows })
          },
        }
      : {}),
  })
  bar?.stop()
  out.stdout(out.json ? JSON.stringify(result) : summary(result, options.olderThan))
  return 0
}
