// `wf worker`: a long-running process that imports the step modules, then runs core's
// `createWorker` on one storage, printing a line (or a JSON line) per workflow it takes and per
// workflow that ends. SIGTERM/SIGINT stop it gracefully (exit 0); a second signal exits at once.

import {
  type CodeChangePolicy,
  createWorker,
  InvalidOptionsError,
  parseDuration,
  type RetentionPolicy,
  Runtime,
  type RuntimeOptions,
  registeredSchedules,
  retentionPlan,
  type StorageSpec,
} from '@wf/core'
import { describeSpec } from '../schedules.js'
import { duration, type Out, paint, type Style, shorten } from './format.js'
import { hint } from './hints.js'
import { importModules } from './modules.js'

/** The command's options as commander gives them, parsed and checked by the parsers below. */
export interface WorkerCommandOptions {
  import: string[]
  concurrency?: number
  pollInterval?: number
  grace?: number
  leaseTtl?: number
  heartbeat?: number
  onCodeChange?: CodeChangePolicy
  retention?: RetentionPolicy
  retentionInterval?: string
}

/**
 * `--retention SUCCESSFUL=7d,FAILED=30d` (repeatable, or separated with commas) as a policy,
 * checked by core's `retentionPlan` (the statuses, the durations).
 */
export function retentionFlag(value: string, previous: RetentionPolicy | undefined): RetentionPolicy {
  const policy: { [status: string]: string | number | undefined } = { ...(previous ?? {}) }
  for (const part of value.split(',').filter((p) => p.trim() !== '')) {
    const eq = part.indexOf('=')
    if (eq <= 0)
      throw new InvalidOptionsError(`--retention takes STATUS=AGE, such as SUCCESSFUL=7d, got "${part}"`)
    policy[part.slice(0, eq).trim().toUpperCase()] = part.slice(eq + 1).trim()
  }
  retentionPlan(policy)
  return policy as RetentionPolicy
}

/** The values of `--on-code-change` (commander's `.choices()`). */
export const CODE_CHANGE_POLICIES: readonly CodeChangePolicy[] = ['warn', 'error', 'ignore']

type Outcome = 'SUCCESSFUL' | 'FAILED' | 'CANCELED' | 'RELEASED' | 'PARKED' | 'ERROR'

const OUTCOME_STYLE: Record<Outcome, Style> = {
  SUCCESSFUL: 'green',
  FAILED: 'red',
  CANCELED: 'magenta',
  RELEASED: 'yellow',
  PARKED: 'cyan',
  ERROR: 'red',
}

/**
 * A flag's parser (commander's `argParser`) for a whole number of at least `min`. It throws wf's
 * usage error rather than commander's: that one reaches `wf --json` users as a JSON error with a
 * stable code, and its message names the flag.
 */
export function wholeNumber(flag: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value)
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidOptionsError(`${flag} must be a whole number of at least ${min}, got "${value}"`)
    }
    return n
  }
}

/** Runs the worker until a signal stops it; resolves to the exit code. */
export async function runWorker(
  storage: StorageSpec,
  options: WorkerCommandOptions,
  out: Out,
): Promise<number> {
  if (options.import.length === 0) {
    throw new InvalidOptionsError(
      'wf worker needs --import MODULE: the modules that register the steps its workflows use',
    )
  }
  const { concurrency, pollInterval: pollIntervalMs, grace: shutdownGraceMs } = options
  const runtimeOptions: RuntimeOptions = {}
  if (options.leaseTtl !== undefined) runtimeOptions.leaseTtlMs = options.leaseTtl
  if (options.heartbeat !== undefined) runtimeOptions.heartbeatMs = options.heartbeat
  if (options.onCodeChange !== undefined) runtimeOptions.onCodeChange = options.onCodeChange

  await importModules(options.import)
  const runtime = new Runtime(storage, runtimeOptions)
  await runtime.storage() // a bad URI or an unreachable backend fails here, before any work

  const emit = (event: Record<string, unknown>, text: string): void =>
    out.stdout(out.json ? JSON.stringify({ time: new Date().toISOString(), ...event }) : text)
  const clock = () => paint(out, 'dim', new Date().toISOString().slice(11, 23))
  const takenAt = new Map<string, number>()

  const onTake = (workflowId: string) => {
    takenAt.set(workflowId, Date.now())
    emit({ event: 'taken', workflowId }, `${clock()} ${paint(out, 'cyan', 'taken')}      ${workflowId}`)
  }

  let worker: ReturnType<typeof createWorker>
  try {
    worker = createWorker({
      runtime,
      concurrency,
      pollIntervalMs,
      shutdownGraceMs,
      handleSignals: false, // this command handles them, to print and to force a second time
      onTake,
      ...(options.retention === undefined
        ? {}
        : {
            retention: options.retention,
            ...(options.retentionInterval === undefined
              ? {}
              : {
                  retentionIntervalMs: Math.max(
                    1,
                    parseDuration(options.retentionInterval, '--retention-interval'),
                  ),
                }),
            onRetention: (event) => {
              if (event.phase === 'progress') return
              const { phase, workflows, keys } = event
              const text =
                phase === 'start'
                  ? 'retention pass started'
                  : `retention pass done: ${workflows} workflow${workflows === 1 ? '' : 's'} deleted (${keys} keys)`
              emit({ event: 'retention', phase, workflows, keys }, `${clock()} ${paint(out, 'dim', text)}`)
            },
          }),
      // Ticks of the schedules the imported modules declare.
      onSchedule: (event) => {
        const tick = new Date(event.tick).toISOString()
        const what =
          event.outcome === 'FIRED'
            ? `fired      ${event.runId}`
            : event.outcome === 'BUFFERED'
              ? `buffered   ${event.scheduleId} tick ${tick}`
              : `skipped    ${event.scheduleId} tick ${tick}${event.count ? ` and ${event.count - 1} more` : ''} (${event.reason})`
        emit({ event: 'schedule', ...event, tick }, `${clock()} ${paint(out, 'cyan', what)}`)
      },
      onWorkflow: ({ workflowId, outcome, error, skipped }) => {
        if (workflowId === '') {
          // The worker's own loop failed (storage unreachable): it keeps polling.
          const message = error instanceof Error ? error.message : String(error)
          emit({ event: 'error', message }, `${clock()} ${paint(out, 'red', 'error')}      ${message}`)
          return
        }
        if (skipped) {
          // Not taken (its record cannot be read, or it cannot run here): tried again later.
          const e = error as { code?: string; message?: string } | undefined
          emit(
            { event: 'skipped', workflowId, error: { code: e?.code, message: e?.message } },
            `${clock()} ${paint(out, 'yellow', 'skipped')}    ${shorten(workflowId)}: ${e?.message ?? String(error)}${hint(error)}`,
          )
          return
        }
        const started = takenAt.get(workflowId)
        takenAt.delete(workflowId)
        const durationMs = started === undefined ? undefined : Date.now() - started
        const e = error as { code?: string; message?: string } | undefined
        const detail = outcome === 'SUCCESSFUL' || outcome === 'RELEASED' ? undefined : e?.message
        emit(
          {
            event: 'finished',
            workflowId,
            outcome,
            durationMs,
            ...(error === undefined ? {} : { error: { code: e?.code, message: e?.message } }),
          },
          `${clock()} ${paint(out, OUTCOME_STYLE[outcome], outcome.padEnd(10))} ${workflowId} ${duration(durationMs)}${detail ? `: ${detail}` : ''}`,
        )
      },
    })
  } catch (error) {
    await (await runtime.storage()).close?.()
    throw error
  }

  const settings = {
    concurrency: concurrency ?? 4,
    leaseTtlMs: runtime.leaseTtlMs,
    heartbeatMs: runtime.heartbeatMs,
  }
  emit(
    { event: 'started', pid: process.pid, runnerId: runtime.runner.runnerId, ...settings },
    `${clock()} worker ${runtime.runner.host}:${process.pid} started (concurrency ${settings.concurrency}, lease ${settings.leaseTtlMs}ms, heartbeat ${settings.heartbeatMs}ms)`,
  )
  // What it fires: the schedules the imported modules declare, and when each fires next.
  const now = Date.now()
  for (const definition of registeredSchedules()) {
    const next = definition.ticks.next(now)
    const nextIso = next === undefined ? undefined : new Date(next).toISOString()
    const description = describeSpec(definition.ticks.spec)
    emit(
      {
        event: 'declared',
        scheduleId: definition.id,
        spec: definition.ticks.spec,
        description,
        overlap: definition.overlap,
        catchUp: definition.catchUp,
        ...(nextIso === undefined ? {} : { next: nextIso }),
      },
      `${clock()} ${paint(out, 'cyan', 'schedule')}   ${definition.id}: ${description} (overlap ${definition.overlap}, catch-up ${definition.catchUp}), next ${nextIso ?? 'never'}`,
    )
  }

  let signals = 0
  const onSignal = (signal: NodeJS.Signals) => {
    signals++
    if (signals === 1) {
      emit(
        { event: 'stopping', signal, running: runtime.runningCount },
        `${clock()} ${signal}: stopping (${runtime.runningCount} running; their steps may finish within the grace period, then they are released)`,
      )
      void worker.stop()
      return
    }
    // Impatient: leave now. Leases not released stay held until they expire (on this host, until
    // this pid is gone, which is at once), so nothing is lost but the steps in flight.
    emit({ event: 'forced', signal }, `${clock()} ${signal} again: exiting without waiting`)
    process.exit(130)
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  try {
    await worker.stopped
    emit({ event: 'stopped' }, `${clock()} stopped`)
    return 0
  } finally {
    process.off('SIGTERM', onSignal)
    process.off('SIGINT', onSignal)
    // Stopped with nothing left to drive: this also deletes the worker's runner record.
    await runtime.close()
  }
}
