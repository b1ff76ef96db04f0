// A runner's lease on a workflow: the owner and expiry in the workflow record, renewed by a
// heartbeat with compare-and-swap. A failed renewal tells the runner that someone canceled the
// workflow or took it over; a lease that ran out stops the runner before its next commit.
// A heartbeat renews only once half of the lease is used up (and always while at least one
// heartbeat of it would be left at the next one); the others just read the record, to notice a
// cancel within one heartbeat. A run shorter than half the lease writes no renewal at all.

import { ConditionFailedError, WorkflowLeaseLostError } from './errors.js'
import type { RunnerInfo, Versioned, WorkflowRecord, WorkflowStore } from './store.js'

export interface LeaseTiming {
  /** How long a lease lasts without renewal. */
  ttlMs: number
  /** How often it is renewed. */
  heartbeatMs: number
}

export interface LeaseEvents {
  /** The workflow was canceled (by any process). */
  onCancel(): void
  /** The lease is gone: another runner took the workflow, or it ran out. */
  onLost(error: WorkflowLeaseLostError): void
}

export class Lease {
  readonly #store: WorkflowStore
  readonly #runner: RunnerInfo
  readonly #timing: LeaseTiming
  readonly #events: LeaseEvents
  #current: Versioned<WorkflowRecord>
  #deadline: number
  #timer: NodeJS.Timeout | undefined
  #lost: WorkflowLeaseLostError | undefined
  #renewing: Promise<void> | undefined
  #checking: Promise<void> | undefined
  /** Counts this runner's writes of the record, begun and ended: a check that saw one ignores its read. */
  #writes = 0
  #stopped = false

  /** `taken` is the record this runner just wrote with itself as owner, at `takenAt`. */
  constructor(
    store: WorkflowStore,
    runner: RunnerInfo,
    taken: Versioned<WorkflowRecord>,
    takenAt: number,
    timing: LeaseTiming,
    events: LeaseEvents,
  ) {
    this.#store = store
    this.#runner = runner
    this.#current = taken
    this.#deadline = takenAt + timing.ttlMs
    this.#timing = timing
    this.#events = events
  }

  /** The latest version of the record this runner wrote. */
  get current(): Versioned<WorkflowRecord> {
    return this.#current
  }

  start(): void {
    this.#timer = setInterval(() => {
      // Renew with half the lease left, and never later than with two heartbeats of it left (a
      // failed or slow renewal then has another heartbeat before it lapses); until then, read.
      const { ttlMs, heartbeatMs } = this.#timing
      if (this.#deadline - Date.now() < Math.max(2 * heartbeatMs, ttlMs / 2)) {
        this.#renewing ??= this.#renew().finally(() => {
          this.#renewing = undefined
        })
      } else {
        this.#checking ??= this.#check().finally(() => {
          this.#checking = undefined
        })
      }
    }, this.#timing.heartbeatMs)
    this.#timer.unref()
  }

  stop(): void {
    this.#stopped = true
    clearInterval(this.#timer)
  }

  /**
   * Resolves when this runner may still commit; throws `WorkflowLeaseLostError` when it may not.
   * A lease that ran out locally (a slow storage, a paused process) is renewed first: a renewal by
   * compare-and-swap from this runner's own version proves nobody took the workflow over meanwhile.
   */
  ensure(): Promise<void> | undefined {
    // The hot path (once per commit): nothing to wait for while the lease is fresh.
    if (!this.#lost && Date.now() <= this.#deadline) return undefined
    return this.#ensureSlow()
  }

  async #ensureSlow(): Promise<void> {
    // Two rounds: a renewal already in flight may have started before the lease ran out.
    for (let round = 0; round < 2 && !this.#lost && Date.now() > this.#deadline; round++) {
      this.#renewing ??= this.#renew().finally(() => {
        this.#renewing = undefined
      })
      await this.#renewing
    }
    if (!this.#lost && Date.now() > this.#deadline) this.#lose('its lease ran out and could not be renewed')
    if (this.#lost) throw this.#lost
  }

  /** Replaces the record by compare-and-swap from the latest version this runner wrote. */
  async update(next: WorkflowRecord): Promise<Versioned<WorkflowRecord>> {
    await this.#renewing?.catch(() => {})
    this.#writes++
    try {
      this.#current = await this.#store.updateWorkflow(this.#current, next)
    } finally {
      this.#writes++
    }
    return this.#current
  }

  #lose(detail: string): void {
    if (this.#lost) return
    this.#lost = new WorkflowLeaseLostError(this.#current.record.workflowId, detail)
    this.stop()
    this.#events.onLost(this.#lost)
  }

  async #renew(): Promise<void> {
    if (this.#lost) return
    const startedAt = Date.now()
    const record = this.#current.record
    this.#writes++
    try {
      this.#current = await this.#store.updateWorkflow(this.#current, {
        ...record,
        leaseExpiresAt: startedAt + this.#timing.ttlMs,
      })
      this.#deadline = startedAt + this.#timing.ttlMs
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) {
        // Storage unreachable: keep trying until the lease runs out, then stop committing.
        if (Date.now() > this.#deadline) this.#lose('storage unreachable past the lease time-to-live')
        return
      }
      const now = await this.#store.readWorkflow(record.workflowId).catch(() => undefined)
      this.#follow(now)
    }
  }

  /** A heartbeat without a write: reads the record to notice a cancel or a takeover. */
  async #check(): Promise<void> {
    if (this.#lost || this.#renewing) return
    const writes = this.#writes
    const now = await this.#store.readWorkflow(this.#current.record.workflowId).catch(() => null)
    // Unreachable (null): the next renewal finds out. Our own version: nothing happened. A write
    // of our own (a renewal, `update`) begun meanwhile makes the read stale or ambiguous: skip it.
    if (now === null || this.#lost || this.#stopped || writes !== this.#writes) return
    if (now?.version !== this.#current.version) this.#follow(now)
  }

  /** Acts on a record someone else may have written since this runner's last write. */
  #follow(now: Versioned<WorkflowRecord> | undefined): void {
    if (now?.record.status === 'CANCELED') {
      this.stop()
      this.#events.onCancel()
    } else if (now?.record.status !== 'RUNNING' || now.record.owner?.runnerId !== this.#runner.runnerId) {
      this.#lose(`the workflow record changed: ${now ? `now ${now.record.status}` : 'deleted'}`)
    } else {
      this.#current = now // our own record under a newer version: renew from it next time
    }
  }
}
