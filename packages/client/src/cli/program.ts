// The `wf` command's parser and commands (commander). Each command has a human form (aligned
// tables, colour on a TTY) and a `--json` form for scripts. Exit codes: 0 success, 1 failure,
// 2 usage error (bad arguments, bad ids, bad storage URI, a bad wf.config.json), 3 done but some
// records could not be read: `list` and `resume-all` went on without them and name each on stderr
// (a line per key; with --json, a line `{"errors":[{workflowId,key,code,message}]}` while stdout
// keeps its usual shape), and `wf doctor` found problems it did not (or could not) fix.
// Over 400 lines: one registration per command, in one place so their shared options read alike;
// the longer commands already live in files of their own (show, worker, doctor, ui).
//
// The storage is `--storage`, else WF_STORAGE, else `storage` in wf.config.json (or the `wf` field
// of package.json) found from the working directory up, else the default folder; unless it came
// from the flag, the first line on stderr says which (not with --json). The same file's
// `import` stands in for `--import` when none is given.
// Over 400 lines: every `wf` command's definition (commander options, help, parsers) in one place.

import { readFile } from 'node:fs/promises'
import {
  type CancelOutcome,
  InvalidOptionsError,
  InvalidWorkflowIdError,
  StorageConfigError,
  WfError,
  type WorkflowStatus,
} from '@wf/core'
import { Command, CommanderError, Option } from 'commander'
import { WorkflowClient } from '../client.js'
import type { ScheduleInfo } from '../schedules.js'
import { parseStatusFilter } from '../status-filter.js'
import type { UnreadableWorkflow, WorkflowListEntry, WorkflowSummary } from '../types.js'
import { chooseStorage, describeStorage, findConfig, type ProjectConfig } from './config.js'
import { doctorText, problemsLeft } from './doctor.js'
import {
  firstColumnWidth,
  fitWidth,
  formatValue,
  jsonValue,
  type Out,
  paint,
  shorten,
  shortenQuoted,
  status,
  table,
  time,
  useColor,
} from './format.js'
import { type GcCommandOptions, runGc } from './gc.js'
import { hint } from './hints.js'
import { infoReport, infoText } from './info.js'
import { importModules } from './modules.js'
import { showProgress } from './progress.js'
import { showJson, showText } from './show.js'
import { uiCommand } from './ui.js'
import {
  CODE_CHANGE_POLICIES,
  retentionFlag,
  runWorker,
  type WorkerCommandOptions,
  wholeNumber,
} from './worker.js'

interface GlobalOptions {
  storage?: string
  json?: boolean
  color: boolean
}

/** What a run of the program needs from its process: arguments and streams. */
export interface CliIO {
  stdout: NodeJS.WriteStream
  stderr: NodeJS.WriteStream
  /** Where `wf gc` reads its confirmation (default: this process's stdin). */
  stdin?: NodeJS.ReadStream
}

const USAGE_ERRORS = [InvalidOptionsError, InvalidWorkflowIdError, StorageConfigError]
/** The exit code of a command that went on without some unreadable records (see the header). */
const UNREADABLE_EXIT = 3

/** Runs `wf` with `argv` (as `process.argv`) and resolves to the exit code. */
export async function main(argv: string[], io: CliIO = process): Promise<number> {
  let client: WorkflowClient | undefined
  let out: Out = {
    color: useColor(io.stderr, !argv.includes('--no-color')),
    json: argv.includes('--json'),
    stdout: (t) => io.stdout.write(`${t}\n`),
    stderr: (t) => io.stderr.write(t),
  }
  let code = 0
  const output = (command: Command): { out: Out; opts: GlobalOptions } => {
    const opts = command.optsWithGlobals<GlobalOptions>()
    out = { ...out, json: Boolean(opts.json), color: useColor(io.stdout, opts.color) }
    return { out, opts }
  }
  let config: ProjectConfig | undefined | null = null // null: not looked for yet
  const project = (): ProjectConfig | undefined => {
    if (config === null) config = findConfig()
    return config
  }
  let storage: string | undefined
  /** The storage URI (flag > env > config > default), saying which on stderr unless it was the flag. */
  const storageOf = (opts: GlobalOptions): string => {
    if (storage !== undefined) return storage
    const choice = chooseStorage(opts.storage, project())
    const line = describeStorage(choice)
    // Not with --json: scripts read stderr as one JSON error object, and name their storage anyway.
    if (line !== undefined && !out.json) out.stderr(`${paint(out, 'dim', `wf: ${line}`)}\n`)
    storage = choice.uri
    return storage
  }
  /** The modules to import: `--import`, else the config file's `import`. */
  const importsOf = (given: string[]): string[] => (given.length > 0 ? given : (project()?.import ?? []))
  const context = (command: Command): { client: WorkflowClient; out: Out; opts: GlobalOptions } => {
    const { opts } = output(command)
    client ??= new WorkflowClient({ storage: storageOf(opts) })
    return { client, out, opts }
  }
  /** Reports records a command went on without: a line each on stderr (JSON with --json), exit code 3. */
  const reportUnreadable = (errors: readonly UnreadableWorkflow[]): void => {
    if (errors.length === 0) return
    if (code === 0) code = UNREADABLE_EXIT
    if (out.json) {
      out.stderr(`${JSON.stringify({ errors })}\n`)
      return
    }
    for (const e of errors) {
      const what = e.workflowId === undefined ? '' : ` (workflow ${shorten(e.workflowId)})`
      out.stderr(
        `${paint(out, 'yellow', 'wf:')} skipped ${shorten(e.key)}${what}: ${shortenQuoted(e.message)}\n`,
      )
    }
    const one = errors.find((e) => e.workflowId !== undefined)?.workflowId
    out.stderr(
      `${paint(out, 'yellow', 'wf:')} ${errors.length} record${errors.length === 1 ? '' : 's'} could not be read: \`wf doctor\` lists them all${one === undefined ? '' : `, \`wf delete ${shorten(one)} --force\` removes a workflow`}\n`,
    )
  }
  /** The width the id column may take on this terminal (none when stdout is not one: full ids). */
  const idWidth = (rest: number): number | undefined =>
    io.stdout.isTTY ? firstColumnWidth(io.stdout.columns, rest) : undefined

  const program = new Command('wf')
    .description('Manage wf workflows: list, inspect, resume, cancel and delete them; run workers.')
    .option('--storage <uri>', 'where workflows are stored: a path, file://, s3://… (default: $WF_STORAGE)')
    .option('--json', 'print JSON for scripts')
    .option('--no-color', 'never colour the output (NO_COLOR works too)')
    .exitOverride()
    .configureOutput({ writeOut: (t) => io.stdout.write(t), writeErr: (t) => io.stderr.write(t) })
    .showSuggestionAfterError()

  const collect = (value: string, previous: string[]): string[] => [...previous, value]
  /** `--status`: repeated, or separated with commas; an unknown status is a usage error naming the valid ones. */
  const statuses = (value: string, previous: WorkflowStatus[] | undefined): WorkflowStatus[] => {
    const given = value.split(',').filter((s) => s !== '')
    return [...(previous ?? []), ...(parseStatusFilter(given as WorkflowStatus[]) ?? [])]
  }

  program
    .command('list')
    .description('list workflows by id, with their status')
    .option('--status <status...>', 'only these statuses (repeat, or separate with commas)', statuses)
    .option('-l, --long', 'also show creation time and metadata (reads each record)')
    .action(async (options: { status?: WorkflowStatus[]; long?: boolean }, command: Command) => {
      const { client, out } = context(command)
      const filter = options.status === undefined ? undefined : new Set(options.status)
      if (options.long) {
        const all: WorkflowSummary[] = []
        const errors: UnreadableWorkflow[] = []
        let cursor: string | undefined
        do {
          const page = await client.listWorkflows({ status: filter, limit: 1000, cursor })
          all.push(...page.workflows)
          errors.push(...page.errors)
          cursor = page.cursor
        } while (cursor !== undefined)
        reportUnreadable(errors)
        if (out.json) return out.stdout(JSON.stringify(all, null, 2))
        const width = idWidth(10 + 2 + 19 + 2 + 2)
        const rows = all.map((w) => [
          fitWidth(w.workflowId, width),
          status(out, w.status),
          time(w.createdAt),
          JSON.stringify(w.metadata),
        ])
        return out.stdout(
          all.length ? table(['WORKFLOW ID', 'STATUS', 'CREATED', 'METADATA'], rows, out) : 'no workflows',
        )
      }
      const list = await client.listAll(filter)
      reportUnreadable(list.errors)
      if (out.json) return out.stdout(JSON.stringify(list, null, 2))
      const width = idWidth(10 + 2)
      const rows = list.map((w) => [
        fitWidth(w.workflowId, width),
        `${status(out, w.status)}${waitingText(w)}`,
      ])
      out.stdout(list.length ? table(['WORKFLOW ID', 'STATUS'], rows, out) : 'no workflows')
    })

  program
    .command('status')
    .description("print a workflow's status")
    .argument('<id>', 'workflow id')
    .action(async (id: string, _options: object, command: Command) => {
      const { client, out } = context(command)
      const value = await client.getStatus(id)
      out.stdout(out.json ? JSON.stringify({ workflowId: id, status: value }) : status(out, value))
    })

  program
    .command('show')
    .description("show a workflow and its step graph: each step's status, attempts and duration")
    .argument('<id>', 'workflow id')
    .option(
      '--import <module>',
      'modules that define the steps, to mark steps whose code changed (repeatable)',
      collect,
      [],
    )
    .action(async (id: string, options: { import: string[] }, command: Command) => {
      await importModules(importsOf(options.import))
      const { client, out } = context(command)
      const meta = await client.getMetadata(id)
      const graph = await client.getGraph(id)
      const events = await client.listEvents(id)
      out.stdout(
        out.json
          ? JSON.stringify(showJson(meta, graph, events), null, 2)
          : showText(meta, graph, out, events),
      )
    })

  program
    .command('output')
    .description("print a workflow's output (waits while it runs), or a step's result")
    .argument('<id>', 'workflow id')
    .option('--step <stepId>', "this step's result instead")
    .action(async (id: string, options: { step?: string }, command: Command) => {
      const { client, out } = context(command)
      const value = await client.getOutput(id, options.step === undefined ? {} : { stepId: options.step })
      if (!out.json) return out.stdout(formatValue(value, out))
      const stepPart = options.step === undefined ? {} : { stepId: options.step }
      out.stdout(JSON.stringify({ workflowId: id, ...stepPart, ...jsonValue(value) }, null, 2))
    })

  program
    .command('cancel')
    .description(
      'cancel a workflow (it cannot be resumed afterwards); returns once no step of it can start anywhere',
    )
    .argument('<id>', 'workflow id')
    .action(async (id: string, _options: object, command: Command) => {
      const { client, out } = context(command)
      // A run elsewhere stops at its runner's next heartbeat (5 s by default): say so on a terminal.
      const onWaiting = ({ host, pid }: { host: string; pid: number }, upToMs: number) => {
        if (io.stderr.isTTY && !out.json)
          io.stderr.write(
            `waiting for its runner ${host}:${pid} to stop it (at its next heartbeat; at most ${Math.round(upToMs / 1000)} s)…\n`,
          )
      }
      const done = await client.runtime.cancelDetailed(id, { onWaiting })
      if (out.json) return out.stdout(JSON.stringify(done))
      out.stdout(cancelText(done))
    })

  program
    .command('fork')
    .description(
      'start a new workflow from the same graph, keeping the results not downstream of --from and running the rest with the code loaded now',
    )
    .argument('<id>', 'workflow id')
    .option('--from <step>', 'the step to run again with what depends on it (default: the first failed step)')
    .option('--id <id>', 'the new workflow id (default <id>-fork-<n>)')
    .option('--import <module>', 'a module that defines the steps (repeatable)', collect, [])
    .option('--detach', 'store it PENDING for the workers instead of running it here')
    .action(
      async (
        id: string,
        options: { from?: string; id?: string; import: string[]; detach?: boolean },
        command: Command,
      ) => {
        await importModules(importsOf(options.import))
        const { client, out } = context(command)
        const forked = await client.fork(id, {
          ...(options.from === undefined ? {} : { fromStep: options.from }),
          ...(options.id === undefined ? {} : { workflowId: options.id }),
          ...(options.detach ? { detach: true } : {}),
        })
        const head = `forked ${forked.workflowId} from ${id} at step ${forked.forkedFrom.stepId} (${forked.kept.length} results kept)`
        if (options.detach) {
          return out.stdout(
            out.json
              ? JSON.stringify({
                  workflowId: forked.workflowId,
                  forkedFrom: forked.forkedFrom,
                  kept: forked.kept,
                })
              : head,
          )
        }
        if (!out.json) io.stderr.write(`${head}\n`)
        const output = await forked.result()
        out.stdout(
          out.json
            ? JSON.stringify({ workflowId: forked.workflowId, ...jsonValue(output) })
            : formatValue(output, out),
        )
      },
    )

  const schedules = program
    .command('schedules')
    .description(
      'list, show, pause, resume, trigger, backfill and delete schedules (declared with schedule())',
    )
  const scheduleRow = (s: ScheduleInfo, out: Out) => [
    s.scheduleId,
    s.paused ? paint(out, 'yellow', 'paused') : paint(out, 'green', 'active'),
    s.description,
    s.lastRun === undefined ? '-' : time(s.lastTick),
    s.nextTick === undefined || s.paused ? '-' : time(s.nextTick),
  ]
  schedules
    .command('list')
    .description('every stored schedule: spec in words, paused or active, last and next tick')
    .action(async (_options: object, command: Command) => {
      const { client, out } = context(command)
      const all = await client.listSchedules()
      if (out.json) return out.stdout(JSON.stringify(all, null, 2))
      out.stdout(
        all.length
          ? table(
              ['SCHEDULE', 'STATE', 'WHEN', 'LAST RUN', 'NEXT'],
              all.map((s) => scheduleRow(s, out)),
              out,
            )
          : 'no schedules (a worker that imports a schedule() stores it at its first poll)',
      )
    })
  schedules
    .command('show')
    .description('one schedule: spec, policies, the last run, skipped ticks and the next fire times')
    .argument('<id>', 'schedule id')
    .action(async (id: string, _options: object, command: Command) => {
      const { client, out } = context(command)
      const s = await client.getSchedule(id)
      if (out.json) return out.stdout(JSON.stringify(s, null, 2))
      const spec = s.spec.everyMs !== undefined ? `every ${s.spec.everyMs} ms` : `cron ${s.spec.cron}`
      const lines: [string, string][] = [
        ['schedule', s.scheduleId],
        ['state', s.paused ? paint(out, 'yellow', 'paused') : paint(out, 'green', 'active')],
        ['when', `${s.description} (${spec})`],
        ['policies', `overlap ${s.overlap}, catch-up ${s.catchUp}`],
        ['last run', s.lastRun === undefined ? '-' : `${s.lastRun}`],
        ['buffered', s.buffered === undefined ? '-' : time(s.buffered)],
        ['next', (s.upcoming ?? []).map((t) => time(t)).join(', ') || '-'],
      ]
      if (s.declaredBy) lines.push(['declared by', `${s.declaredBy.host} pid ${s.declaredBy.pid}`])
      const width = Math.max(...lines.map(([k]) => k.length))
      const text = lines.map(([k, v]) => `${k.padEnd(width)}  ${v}`)
      if (s.skipped.length > 0) {
        text.push('', 'skipped ticks:')
        for (const k of s.skipped) {
          const range =
            k.count && k.until !== undefined
              ? `${time(k.tick)} .. ${time(k.until)} (${k.count})`
              : time(k.tick)
          text.push(`  ${range}  ${k.reason}`)
        }
      }
      out.stdout(text.join('\n'))
    })
  for (const [name, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    schedules
      .command(name)
      .description(
        paused
          ? 'stop firing a schedule (its ticks are recorded skipped)'
          : 'fire a paused schedule again, from now on (no catch-up of the pause)',
      )
      .argument('<id>', 'schedule id')
      .action(async (id: string, _options: object, command: Command) => {
        const { client, out } = context(command)
        const s = paused ? await client.pauseSchedule(id) : await client.resumeSchedule(id)
        out.stdout(out.json ? JSON.stringify(s) : `${s.scheduleId} ${s.paused ? 'paused' : 'active'}`)
      })
  }
  schedules
    .command('trigger')
    .description('run a schedule now, by hand (<id>@manual-<time>, PENDING for a worker)')
    .argument('<id>', 'schedule id')
    .option('--import <module>', 'the module that declares the schedule (repeatable)', collect, [])
    .action(async (id: string, options: { import: string[] }, command: Command) => {
      await importModules(importsOf(options.import))
      const { client, out } = context(command)
      const workflowId = await client.triggerSchedule(id)
      out.stdout(out.json ? JSON.stringify({ workflowId }) : `submitted ${workflowId}`)
    })
  schedules
    .command('backfill')
    .description(
      'one run per tick in a time range, PENDING for workers; ticks that ran already are not run again',
    )
    .argument('<id>', 'schedule id')
    .requiredOption('--from <time>', 'first tick (ISO 8601 time or date)', parseTime)
    .requiredOption('--to <time>', 'last tick (ISO 8601 time or date)', parseTime)
    .option('--import <module>', 'the module that declares the schedule (repeatable)', collect, [])
    .action(async (id: string, options: { from: number; to: number; import: string[] }, command: Command) => {
      await importModules(importsOf(options.import))
      const { client, out } = context(command)
      const done = await client.backfillSchedule(id, options.from, options.to)
      if (out.json) return out.stdout(JSON.stringify(done))
      out.stdout(`${done.created.length} submitted, ${done.existing.length} already there`)
    })
  schedules
    .command('delete')
    .description("delete a schedule's record (a schedule removed from the code)")
    .argument('<id>', 'schedule id')
    .action(async (id: string, _options: object, command: Command) => {
      const { client, out } = context(command)
      await client.deleteSchedule(id)
      out.stdout(out.json ? JSON.stringify({ deleted: id }) : `deleted schedule ${id}`)
    })

  program
    .command('send')
    .description(
      'send an event to a workflow, where waitForEvent(NAME) takes it (kept until a step takes it; wakes a parked workflow)',
    )
    .argument('<id>', 'workflow id')
    .argument('<name>', 'event name')
    .addOption(new Option('--data <json>', 'the payload, as JSON (default: null)').conflicts('dataFile'))
    .option('--data-file <file>', 'read the JSON payload from a file')
    .option('--key <key>', 'idempotency key: sends with the same key are one event (safe to retry)')
    .action(
      async (
        id: string,
        name: string,
        options: { data?: string; dataFile?: string; key?: string },
        command: Command,
      ) => {
        const { client, out } = context(command)
        const text = options.dataFile !== undefined ? await readFile(options.dataFile, 'utf8') : options.data
        let payload: unknown = null
        if (text !== undefined) {
          try {
            payload = JSON.parse(text)
          } catch (error) {
            throw new InvalidOptionsError(
              `${options.dataFile !== undefined ? `--data-file ${options.dataFile}` : '--data'} is not JSON: ${(error as Error).message}`,
            )
          }
        }
        const sent = await client.sendEvent(
          id,
          name,
          payload,
          options.key === undefined ? {} : { idempotencyKey: options.key },
        )
        if (out.json) return out.stdout(JSON.stringify(sent))
        out.stdout(
          sent.duplicate
            ? `event ${name} was sent before with this key (#${sent.seq}): nothing new sent`
            : `sent event ${name} to ${shorten(id)} (#${sent.seq})`,
        )
      },
    )

  program
    .command('resume')
    .description('resume a workflow, running only the steps not committed yet, and print its output')
    .argument('<id>', 'workflow id')
    .option('--import <module>', 'a module that defines the steps (repeatable)', collect, [])
    .action(async (id: string, options: { import: string[] }, command: Command) => {
      // Import first: a module may register the storage's URI scheme (a storage plugin).
      await importModules(importsOf(options.import))
      const { client, out } = context(command)
      const handle = await client.resumeAsync(id)
      const stop =
        io.stderr.isTTY && !out.json
          ? showProgress(await client.runtime.store(), id, (t) => io.stderr.write(t))
          : () => {}
      let value: unknown
      try {
        value = await handle.result()
      } finally {
        stop()
      }
      if (!out.json) return out.stdout(formatValue(value, out))
      out.stdout(JSON.stringify({ workflowId: id, status: 'SUCCESSFUL', ...jsonValue(value) }, null, 2))
    })

  program
    .command('resume-all')
    .description('resume every RESUMABLE workflow (and FAILED ones with --include-failed)')
    .option('--include-failed', 'also resume FAILED workflows from their failed step')
    .option('--import <module>', 'a module that defines the steps (repeatable)', collect, [])
    .action(async (options: { import: string[]; includeFailed?: boolean }, command: Command) => {
      // Import first: a module may register the storage's URI scheme (a storage plugin).
      await importModules(importsOf(options.import))
      const { client, out } = context(command)
      const resumed = await client.resumeAll({ includeFailed: options.includeFailed ?? false })
      const settled = await Promise.allSettled(resumed.map((r) => r.result))
      const results = resumed.map((r, i) => {
        const s = settled[i] as PromiseSettledResult<unknown>
        if (s.status === 'fulfilled')
          return { workflowId: r.workflowId, status: 'SUCCESSFUL', ...jsonValue(s.value) }
        const name = s.reason instanceof WfError && s.reason.code === 'WF_CANCELED' ? 'CANCELED' : 'FAILED'
        return {
          workflowId: r.workflowId,
          status: name,
          error: s.reason instanceof Error ? s.reason.message : String(s.reason),
        }
      })
      if (results.some((r) => r.status !== 'SUCCESSFUL')) code = 1
      reportUnreadable(resumed.errors)
      if (out.json) return out.stdout(JSON.stringify(results, null, 2))
      if (results.length === 0) return out.stdout('no workflows to resume')
      const rows = results.map((r) => [
        r.workflowId,
        status(out, r.status as WorkflowStatus),
        'error' in r ? String(r.error) : JSON.stringify(r.output),
      ])
      out.stdout(table(['WORKFLOW ID', 'RESULT', 'OUTPUT / ERROR'], rows, out))
    })

  program
    .command('worker')
    .description('run workflows: take PENDING ones (oldest first) and RESUMABLE ones until SIGTERM/SIGINT')
    .option('--import <module>', 'a module that defines the steps (repeatable, at least one)', collect, [])
    .option(
      '--concurrency <n>',
      'at most this many workflows at once (default 4)',
      wholeNumber('--concurrency', 1),
    )
    .option(
      '--poll-interval <ms>',
      'how often to look for work when idle (default 1000)',
      wholeNumber('--poll-interval', 1),
    )
    .option(
      '--grace <ms>',
      'on stop, how long running steps may take to finish (default 10000)',
      wholeNumber('--grace', 0),
    )
    .option(
      '--lease-ttl <ms>',
      "how long the worker's lease lasts without renewal: a dead machine's workflows wait this long (default 15000)",
      wholeNumber('--lease-ttl', 10),
    )
    .option(
      '--heartbeat <ms>',
      "how often the worker's lease is renewed when due and cancels are noticed (default lease-ttl / 3)",
      wholeNumber('--heartbeat', 1),
    )
    .addOption(
      new Option(
        '--on-code-change <policy>',
        'a workflow submitted with other step code (default warn)',
      ).choices(CODE_CHANGE_POLICIES),
    )
    .option(
      '--retention <STATUS=AGE,...>',
      'delete ended workflows this old, e.g. SUCCESSFUL=7d,FAILED=30d,CANCELED=7d (one pass per interval across workers)',
      retentionFlag,
    )
    .option(
      '--retention-interval <duration>',
      'how often a retention pass runs across all workers (default 1h)',
    )
    .action(async (options: WorkerCommandOptions, command: Command) => {
      const { out, opts } = output(command)
      const uri = storageOf(opts)
      code = await runWorker(uri, { ...options, import: importsOf(options.import) }, out)
    })

  program
    .command('delete')
    .description('delete a workflow and all its checkpoints (not while it runs)')
    .argument('<id>', 'workflow id')
    .option(
      '--force',
      'also a workflow whose record cannot be read, or is gone while its steps or index entries remain',
    )
    .action(async (id: string, options: { force?: boolean }, command: Command) => {
      const { client, out } = context(command)
      await client.delete(id, { force: options.force ?? false })
      out.stdout(out.json ? JSON.stringify({ workflowId: id, deleted: true }) : `deleted ${id}`)
    })

  program
    .command('gc')
    .description(
      'delete ended workflows in bulk, with every key they own (never RUNNING, PENDING or RESUMABLE ones)',
    )
    .option(
      '--status <status...>',
      'FAILED, CANCELED, SUCCESSFUL (repeat, or separate with commas)',
      statuses,
    )
    .option('--older-than <duration>', "those that ended longer ago than this: '30d', '12h', '1w'")
    .option(
      '--metadata <key=value>',
      'only those with this metadata field (repeatable; JSON values)',
      collect,
      [],
    )
    .option('--dry-run', 'count what would be deleted, delete nothing')
    .option('--yes', 'delete without asking (required when stdin is not a terminal)')
    .option(
      '--full',
      'also find workflows that ended before wf indexed ended workflows by day (slower, once)',
    )
    .action(async (options: GcCommandOptions, command: Command) => {
      const { client, out } = context(command)
      code = await runGc(client, options, out, { ...io, stdin: io.stdin ?? process.stdin })
    })

  program
    .command('doctor')
    .description(
      'check the storage: unreadable records, keys of workflows without a record, index entries that disagree with their record',
    )
    .option(
      '--fix',
      `repair the index and remove orphaned keys older than ten lease periods (never a readable workflow)`,
    )
    .action(async (options: { fix?: boolean }, command: Command) => {
      const { client, out } = context(command)
      const report = await client.checkStorage({ fix: options.fix ?? false })
      if (problemsLeft(report) && code === 0) code = UNREADABLE_EXIT
      out.stdout(out.json ? JSON.stringify(report, null, 2) : doctorText(report, out))
    })

  program
    .command('info')
    .description(
      'show the storage (where its URI came from), its backend and durability mode with the reason, and the wf versions',
    )
    .action(async (_options: object, command: Command) => {
      const { client, out, opts } = context(command)
      const info = infoReport(await client.runtime.storage(), chooseStorage(opts.storage, project()))
      out.stdout(out.json ? JSON.stringify(info, null, 2) : infoText(info, out))
    })

  program.addCommand(uiCommand({ context, importsOf }))

  try {
    await program.parseAsync(argv)
    return code
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has printed its message; help and --version are successes.
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? 0 : 2
    }
    const usage = USAGE_ERRORS.some((E) => error instanceof E)
    const message = error instanceof Error ? error.message : String(error)
    if (out.json) {
      const errCode = error instanceof WfError ? error.code : 'WF_UNEXPECTED'
      const name = error instanceof Error ? error.name : 'Error'
      // Messages quote long ids cut short; scripts get the whole ones beside them.
      const { workflowId, key, stepName } = (error ?? {}) as {
        workflowId?: unknown
        key?: unknown
        stepName?: unknown
      }
      const whole = { workflowId, key, stepName }
      out.stderr(`${JSON.stringify({ error: { code: errCode, name, message, ...whole } })}\n`)
    } else out.stderr(`${paint(out, 'red', 'wf:')} ${shortenQuoted(message)}${hint(error)}\n`)
    return usage ? 2 : 1
  } finally {
    await client?.close().catch(() => {})
  }
}

/** What `wf cancel` did and what it waited for, in one line. */
/** A time given on the command line, in ms since the epoch. */
function parseTime(text: string): number {
  const ms = Date.parse(text)
  if (!Number.isFinite(ms))
    throw new InvalidOptionsError(
      `not a time: ${JSON.stringify(text)} (use ISO 8601, e.g. 2027-01-31T03:00Z)`,
    )
  return ms
}

/** What a parked workflow waits for, after its status in `wf list` ('' for any other). */
function waitingText(entry: WorkflowListEntry): string {
  const what = [
    entry.waitingForEvents?.length ? `waiting for ${entry.waitingForEvents.join(', ')}` : '',
    entry.waitingUntil === undefined ? '' : `sleeping until ${time(entry.waitingUntil)}`,
  ].filter(Boolean)
  return what.length === 0 ? '' : ` (${what.join(' or ')})`
}

function cancelText(done: CancelOutcome): string {
  const { workflowId, status, owner, elapsedMs } = done
  if (status === 'SUCCESSFUL') return `${workflowId} is SUCCESSFUL: it had finished, nothing to cancel`
  const by = owner ? `${owner.host}:${owner.pid}` : ''
  switch (done.waitedFor) {
    case 'owner':
      return `canceled ${workflowId}: its runner ${by} stopped it and acknowledged (waited ${elapsedMs} ms); no step of it will start again`
    case 'owner-gone':
      return `canceled ${workflowId}: its runner ${by} is gone (process exited or lease expired), nothing was running it`
    case 'this-process':
      return `canceled ${workflowId}: stopped in this process`
    default:
      return done.was === 'CANCELED'
        ? `${workflowId} was already CANCELED`
        : `canceled ${workflowId}: it was ${done.was}, nothing was running it`
  }
}
