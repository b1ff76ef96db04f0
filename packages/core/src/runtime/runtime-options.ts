// A runtime's options (`new Runtime(storage, options)`, `init({ storage, ...options })`): what each
// one means, its default, and the checks that reject a bad one when the runtime is made, not
// later in the middle of a workflow.

import { InvalidOptionsError } from '../errors.js'
import { type Codec, defaultCodec } from '../model/codec.js'
import { type CodeChangePolicy, validatePolicy } from './runtime-info.js'

/** Options of a runtime (`init({ storage, ...options })`). */
export interface RuntimeOptions {
  /** At most this many steps of one workflow run at once. Default 100. */
  maxConcurrency?: number
  /** How values are stored. Default: `defaultCodec` (devalue with Buffer and Error). */
  codec?: Codec
  /** Outputs larger than this many bytes go to content-addressed blobs. Default 256 KiB. */
  blobThresholdBytes?: number
  /**
   * How long a runner's lease (its record `runners/<runnerId>`, under which it holds every
   * workflow it drives) lasts without renewal. Default 15,000 ms. A workflow whose runner died on
   * another machine becomes RESUMABLE this long after the runner's last renewal (on this machine,
   * at once: the runner's process is gone).
   */
  leaseTtlMs?: number
  /**
   * How often a runner looks at the records of the workflows it drives (one read each), noticing
   * a cancel from another process (so a `cancel()` elsewhere waits about this long), and checks
   * its runner lease: it renews it (one write, however many
   * workflows) when less than half of it, or less than two heartbeats of it, is left. A runtime
   * that drives nothing renews nothing. Default `leaseTtlMs / 3`.
   */
  heartbeatMs?: number
  /**
   * At most this many workflows run at once in this runtime (Ray's `max_running_workflows`);
   * more wait as PENDING and start in submission order. Default: no limit.
   */
  maxRunningWorkflows?: number
  /**
   * What to do when a workflow is resumed with step code (or options) other than it was submitted
   * with: `'warn'` (default, a process warning), `'error'` (`WorkflowCodeChangedError`, the workflow
   * stays resumable) or `'ignore'`. A changed Node version, lockfile or package version alone only warns.
   */
  onCodeChange?: CodeChangePolicy
  /**
   * When a run lets a sleeping workflow go: once every step it can run waits on a timer (`sleep`,
   * `sleepUntil`) ending more than this many ms from now, the workflow is parked (stored PENDING
   * with its wake time, held by no process) and a worker, or this process if it awaits the run,
   * wakes it at its time. Shorter sleeps are waited out here, under the runner's lease. Default
   * 60,000; `0` parks every sleep; `Infinity` never parks.
   */
  parkAfterMs?: number
  /**
   * How often a step waiting for an event (`waitForEvent`) in a workflow this runtime holds lists
   * the workflow's inbox (one listing). A send from this process is seen at once. Default 1,000.
   */
  eventPollMs?: number
  /**
   * Pipelined checkpoints (default `false`): a step's dependents start as soon as it returned,
   * while its record is being written, instead of after the write. A chain then waits for no
   * storage write per step. What stays true: a record is written only after the records of the
   * step's inputs; a workflow ends (its output, `getOutput`) only once every record is durable.
   * What changes: after a crash, the steps whose records were not yet durable run again (at most
   * `maxCheckpointsInFlight` of them), so a step may run again under the same `stepId` with a
   * different input when a non-deterministic step before it was not durable: `stepId` is then
   * no idempotency key. Give a step with side effects `pipelineCheckpoints: false` (it starts only
   * once its inputs are durable, and its dependents wait for its own record); per workflow, see
   * `RunOptions.pipelineCheckpoints`. A durable function's body always sees durable values.
   */
  pipelineCheckpoints?: boolean
  /** With pipelined checkpoints: at most this many records of one workflow in flight; above it, a step waits for its own. Default 32. */
  maxCheckpointsInFlight?: number
}

/** Every option of a runtime, checked, with the defaults filled in. */
export type RuntimeSettings = Required<RuntimeOptions>

/** Checks `options` and fills in the defaults; throws `InvalidOptionsError` for a bad one. */
export function runtimeSettings(options: RuntimeOptions): RuntimeSettings {
  const {
    maxConcurrency = 100,
    codec = defaultCodec,
    blobThresholdBytes = 256 * 1024,
    leaseTtlMs = 15_000,
    maxRunningWorkflows = Number.POSITIVE_INFINITY,
  } = options
  const heartbeatMs = options.heartbeatMs ?? Math.max(1, Math.floor(leaseTtlMs / 3))
  if (!Number.isInteger(leaseTtlMs) || leaseTtlMs < 10) {
    throw new InvalidOptionsError(`leaseTtlMs must be an integer of at least 10, got ${String(leaseTtlMs)}`)
  }
  if (!Number.isInteger(heartbeatMs) || heartbeatMs < 1 || heartbeatMs * 2 > leaseTtlMs) {
    throw new InvalidOptionsError(
      `heartbeatMs must be a positive integer at most half of leaseTtlMs (${leaseTtlMs}), got ${String(heartbeatMs)}`,
    )
  }
  if (
    maxRunningWorkflows !== Number.POSITIVE_INFINITY &&
    (!Number.isInteger(maxRunningWorkflows) || maxRunningWorkflows < 1)
  ) {
    throw new InvalidOptionsError(
      `maxRunningWorkflows must be a positive integer, got ${String(maxRunningWorkflows)}`,
    )
  }
  const onCodeChange = validatePolicy(options.onCodeChange ?? 'warn')
  const eventPollMs = options.eventPollMs ?? 1000
  if (!Number.isInteger(eventPollMs) || eventPollMs < 1) {
    throw new InvalidOptionsError(`eventPollMs must be a positive integer, got ${String(eventPollMs)}`)
  }
  const parkAfterMs = options.parkAfterMs ?? 60_000
  if (typeof parkAfterMs !== 'number' || Number.isNaN(parkAfterMs) || parkAfterMs < 0) {
    throw new InvalidOptionsError(
      `parkAfterMs must be a non-negative number of milliseconds (or Infinity), got ${String(parkAfterMs)}`,
    )
  }
  const pipelineCheckpoints = options.pipelineCheckpoints ?? false
  if (typeof pipelineCheckpoints !== 'boolean') {
    throw new InvalidOptionsError(`pipelineCheckpoints must be a boolean, got ${String(pipelineCheckpoints)}`)
  }
  const maxCheckpointsInFlight = options.maxCheckpointsInFlight ?? DEFAULT_MAX_CHECKPOINTS_IN_FLIGHT
  if (!Number.isInteger(maxCheckpointsInFlight) || maxCheckpointsInFlight < 1) {
    throw new InvalidOptionsError(
      `maxCheckpointsInFlight must be a positive integer, got ${String(maxCheckpointsInFlight)}`,
    )
  }
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1) {
    throw new InvalidOptionsError(`maxConcurrency must be a positive integer, got ${String(maxConcurrency)}`)
  }
  if (!Number.isInteger(blobThresholdBytes) || blobThresholdBytes < 1024) {
    throw new InvalidOptionsError('blobThresholdBytes must be an integer of at least 1024')
  }
  if (typeof codec?.encode !== 'function' || typeof codec.decode !== 'function') {
    throw new InvalidOptionsError('codec must have encode(value) and decode(text)')
  }
  return {
    maxConcurrency,
    codec,
    blobThresholdBytes,
    leaseTtlMs,
    heartbeatMs,
    maxRunningWorkflows,
    onCodeChange,
    parkAfterMs,
    eventPollMs,
    pipelineCheckpoints,
    maxCheckpointsInFlight,
  }
}

/** How many pipelined records of one workflow may be in flight at once (`maxCheckpointsInFlight`). */
const DEFAULT_MAX_CHECKPOINTS_IN_FLIGHT = 32
