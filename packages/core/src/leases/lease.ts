// A runner's hold on one workflow, under its runner lease (runner-lease.ts): the record that names
// it as owner, which this runner changes only by compare-and-swap from the last version it wrote.
// A heartbeat reads the record (no write) to notice a cancel request or a takeover within one
// heartbeat; before each step start and each commit the runner lease's local deadline and the
// cancel flag are checked, with no I/O while the lease holds.

import { ConditionFailedError, WorkflowCanceledError, WorkflowLeaseLostError } from '../errors.js'
import type { RunnerInfo, Versioned, WorkflowRecord } from '../model/records.js'
import type { WorkflowStore } from '../store/store.js'
import type { HeldWorkflow, RunnerLease } from './runner-lease.js'

export interface LeaseEvents {
  /**
   * The workflow was canceled by another process: `requested` when the record asks this runner to
   * stop and acknowledge (`cancelRequested`; `current` is then that record), else it already says
   * CANCELED (written by a canceler that found this runner's lease run out).
   */
  onCancel(requested: boolean): void
  /** The lease is gone: another runner took the workflow, or it ran out. */
  onLost(error: WorkflowLeaseLostError): void
}

export class Lease implements HeldWorkflow {
  readonly #store: WorkflowStore
  readonly #runner: RunnerInfo
  readonly #runnerLease: RunnerLease
  readonly #heartbeatMs: number
  readonly #events: LeaseEvents
  #current: Versioned<WorkflowRecord>
  /** The runner lease's epoch in which this runner last knew it held the record (see `RunnerLease.epoch`). */
  #epoch: number
  #timer: NodeJS.Timeout | undefined
  #lost: WorkflowLeaseLostError | undefined
  #canceled = false
  #checking: Promise<void> | undefined
  #reasserting: Promise<void> | undefined
  /** A write of the record by `update` in flight. */
  #updating: Promise<Versioned<WorkflowRecord>> | undefined
  /** Counts this runner's writes of the record, begun and ended: a check that saw one ignores its read. */
  #writes = 0
  #stopped = false

  /**
   * `taken` is the record this runner just wrote with itself as owner, after its runner lease was
   * ready in `epoch`.
   */
  constructor(
    store: WorkflowStore,
    runner: RunnerInfo,
    runnerLease: RunnerLease,
    taken: Versioned<WorkflowRecord>,
    epoch: number,
    heartbeatMs: number,
    events: LeaseEvents,
  ) {
    this.#store = store
    this.#runner = runner
    this.#runnerLease = runnerLease
    this.#current = taken
    this.#epoch = epoch
    this.#heartbeatMs = heartbeatMs
    this.#events = events
  }

  /** The latest version of the record this runner wrote. */
  get current(): Versioned<WorkflowRecord> {
    return this.#current
  }

  start(): void {
    this.#runnerLease.watch(this)
    this.#timer = setInterval(() => {
      this.#checking ??= this.#check().finally(() => {
        this.#checking = undefined
      })
    }, this.#heartbeatMs)
    this.#timer.unref()
  }

  stop(): void {
    this.#stopped = true
    clearInterval(this.#timer)
    this.#runnerLease.unwatch(this)
  }

  /**
   * Resolves when this runner may still commit; throws `WorkflowLeaseLostError` when it may not.
   * A runner lease that ran out locally (a slow storage, a paused process) is renewed first, and
   * the record is then re-asserted by compare-and-swap from this runner's own version: that
   * proves nobody took the workflow over meanwhile, and makes a takeover decided in the gap fail.
   */
  ensure(): Promise<void> | undefined {
    // The hot path (once per commit): nothing to wait for while the runner lease holds.
    const runner = this.#runnerLease
    if (!this.#lost && !this.#canceled && this.#epoch === runner.epoch && Date.now() <= runner.deadline)
      return undefined
    return this.#ensureSlow()
  }

  async #ensureSlow(): Promise<void> {
    const runner = this.#runnerLease
    // Two rounds: a renewal already in flight may have begun before the lease ran out.
    for (let round = 0; round < 2 && !this.#lost && Date.now() > runner.deadline; round++) {
      await runner.renew().catch(() => {})
    }
    if (!this.#lost && Date.now() > runner.deadline) this.#lose('its lease ran out and could not be renewed')
    if (!this.#lost && !this.#canceled && this.#epoch !== runner.epoch) await this.#reassert()
    if (this.#lost) throw this.#lost
    if (this.#canceled) throw new WorkflowCanceledError(this.#current.record.workflowId)
  }

  /** Replaces the record by compare-and-swap from the latest version this runner wrote. */
  async update(next: WorkflowRecord): Promise<Versioned<WorkflowRecord>> {
    if (this.#reasserting) await this.#reasserting.catch(() => {})
    this.#writes++
    const writing = this.#store.updateWorkflow(this.#current, next)
    // A re-assertion must not race this write from the same version (it would lose the lease).
    this.#updating = writing
    try {
      this.#current = await writing
    } finally {
      this.#writes++
      if (this.#updating === writing) this.#updating = undefined
    }
    return this.#current
  }

  /**
   * A newer version of this runner's own record, read after one of its compare-and-swaps lost
   * (someone asked it to stop): the next write is from it.
   */
  adopt(now: Versioned<WorkflowRecord>): void {
    this.#current = now
  }

  /** The runner lease lapsed for good (see `HeldWorkflow`). */
  lapsed(detail: string): void {
    this.#lose(detail)
  }

  #lose(detail: string): void {
    if (this.#lost) return
    this.#lost = new WorkflowLeaseLostError(this.#current.record.workflowId, detail)
    this.stop()
    this.#events.onLost(this.#lost)
  }

  #reassert(): Promise<void> {
    this.#reasserting ??= this.#writeOwn().finally(() => {
      this.#reasserting = undefined
    })
    return this.#reasserting
  }

  /**
   * After a gap in the runner lease: rewrites the record as it is, by compare-and-swap from the
   * version this runner wrote last. It succeeds only while nobody else wrote the record; a
   * takeover decided during the gap then fails its own compare-and-swap.
   */
  async #writeOwn(): Promise<void> {
    if (this.#updating) await this.#updating.catch(() => {})
    const epoch = this.#runnerLease.epoch
    const workflowId = this.#current.record.workflowId
    this.#writes++
    try {
      this.#current = await this.#store.updateWorkflow(this.#current, { ...this.#current.record })
      this.#epoch = epoch
    } catch (error) {
      if (!(error instanceof ConditionFailedError)) throw error
      const now = await this.#store.readWorkflow(workflowId).catch(() => undefined)
      if (now?.record.status === 'CANCELED') this.#cancel(false)
      else if (now && this.#cancelRequested(now.record)) {
        this.#current = now
        this.#cancel(true)
      } else {
        const by = now?.record.owner
        const detail = !now
          ? 'deleted'
          : by
            ? `now ${now.record.status}, held by ${by.host}:${by.pid}`
            : `now ${now.record.status}`
        this.#lose(`the workflow record changed while this runner's lease had run out: ${detail}`)
      }
    } finally {
      this.#writes++
    }
  }

  /** A heartbeat without a write: reads the record to notice a cancel or a takeover. */
  async #check(): Promise<void> {
    if (this.#lost || this.#stopped) return
    const runner = this.#runnerLease
    // The runner lease was renewed after a gap: re-assert now rather than at the next commit.
    if (this.#epoch !== runner.epoch && Date.now() <= runner.deadline) {
      await this.#reassert().catch(() => {})
      return
    }
    const writes = this.#writes
    const now = await this.#store.readWorkflow(this.#current.record.workflowId).catch(() => null)
    // Unreachable (null): the runner lease's renewal finds out. Our own version: nothing happened.
    // A write of our own begun meanwhile makes the read stale or ambiguous: skip it.
    if (now === null || this.#lost || this.#stopped || writes !== this.#writes) return
    if (now?.version !== this.#current.version) this.#follow(now)
  }

  #cancel(requested: boolean): void {
    this.#canceled = true
    this.stop()
    this.#events.onCancel(requested)
  }

  /** Whether `record` is this runner's and asks it to stop (see `WorkflowRecord.cancelRequested`). */
  #cancelRequested(record: WorkflowRecord): boolean {
    return (
      record.status === 'RUNNING' &&
      record.owner?.runnerId === this.#runner.runnerId &&
      record.cancelRequested !== undefined
    )
  }

  /** Acts on a record someone else may have written since this runner's last write. */
  #follow(now: Versioned<WorkflowRecord> | undefined): void {
    if (now?.record.status === 'CANCELED') {
      this.#cancel(false)
    } else if (now && this.#cancelRequested(now.record)) {
      this.#current = now // the acknowledgement is written from this version
      this.#cancel(true)
    } else if (now?.record.status !== 'RUNNING' || now.record.owner?.runnerId !== this.#runner.runnerId) {
      this.#lose(`the workflow record changed: ${now ? `now ${now.record.status}` : 'deleted'}`)
    } else {
      this.#current = now // our own record under a newer version: write from it next time
    }
  }
}
