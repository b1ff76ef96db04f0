// A runner's one lease: the record `runners/<runnerId>`, under which it holds every workflow it
// drives. One heartbeat renews it (one write per renewal, whatever the number of workflows) once
// half of it is used up, while the runner holds at least one workflow; workflow records are not
// rewritten to renew. The record is written before any workflow record names this runner as owner.

import { StorageUnavailableError } from '../errors.js'
import type { RunnerInfo } from '../model/records.js'
import type { WorkflowStore } from '../store/store.js'

export interface LeaseTiming {
  /** How long a lease lasts without renewal. */
  ttlMs: number
  /** How often the heartbeat runs. */
  heartbeatMs: number
}

/** A workflow held under the runner lease (see lease.ts). */
export interface HeldWorkflow {
  /** The runner lease ran out and could not be renewed: stop, another runner may take over. */
  lapsed(detail: string): void
}

export class RunnerLease {
  readonly #store: Promise<WorkflowStore>
  readonly #runner: RunnerInfo
  readonly #timing: LeaseTiming
  /** Until when the stored record holds this runner's workflows (this clock); 0 before the first write. */
  #deadline = 0
  /**
   * Counts the renewals that landed after the lease had run out. In such a gap others saw this
   * runner's workflows RESUMABLE and may have taken some over: a workflow lease that began in an
   * earlier epoch re-asserts its record by compare-and-swap before it commits again.
   */
  #epoch = 0
  #written = false
  #swept = false
  #renewing: Promise<void> | undefined
  /** Workflows held (or being claimed): the heartbeat runs while there is one. */
  #holds = 0
  readonly #held = new Set<HeldWorkflow>()
  #timer: NodeJS.Timeout | undefined

  constructor(store: Promise<WorkflowStore>, runner: RunnerInfo, timing: LeaseTiming) {
    this.#store = store
    this.#runner = runner
    this.#timing = timing
  }

  /** Until when the runner lease holds (this process's clock). */
  get deadline(): number {
    return this.#deadline
  }

  /** Changes when the lease was renewed after it had run out (see `#epoch`). */
  get epoch(): number {
    return this.#epoch
  }

  /**
   * Resolves once the runner record holds for at least half its time-to-live: call it before
   * writing a workflow record that names this runner as owner. `undefined` (no I/O) when it holds
   * already; otherwise the one renewal that every claim waiting at that moment shares.
   */
  ready(): Promise<void> | undefined {
    if (!this.#low(Date.now())) return undefined
    return this.#readySlow()
  }

  async #readySlow(): Promise<void> {
    // Two rounds: a renewal already in flight may have begun long ago.
    for (let round = 0; round < 2 && this.#low(Date.now()); round++) await this.renew()
    if (Date.now() > this.#deadline) {
      throw new StorageUnavailableError(
        `writing this runner's lease record took longer than its time-to-live (${this.#timing.ttlMs} ms)`,
      )
    }
  }

  /** Renews the runner record now, or joins the renewal in flight. Rejects when the storage fails. */
  renew(): Promise<void> {
    this.#renewing ??= this.#write().finally(() => {
      this.#renewing = undefined
    })
    return this.#renewing
  }

  /** One more workflow held or being claimed: the heartbeat runs until the last `unhold`. */
  hold(): void {
    if (this.#holds++ > 0) return
    this.#timer = setInterval(() => this.#beat(), this.#timing.heartbeatMs)
    this.#timer.unref()
  }

  unhold(): void {
    if (--this.#holds > 0) return
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Tells `workflow` when the lease lapses for good (see `HeldWorkflow.lapsed`). */
  watch(workflow: HeldWorkflow): void {
    this.#held.add(workflow)
  }

  unwatch(workflow: HeldWorkflow): void {
    this.#held.delete(workflow)
  }

  /**
   * Deletes the runner record when this runner holds nothing (a runtime closing). Best effort:
   * a record left behind only says, once expired, that its runner is gone.
   */
  async retire(): Promise<void> {
    if (this.#holds > 0 || !this.#written) return
    this.#written = false
    this.#deadline = 0
    await (await this.#store).deleteRunner(this.#runner.runnerId)
  }

  /**
   * Renew with half the lease left, and never later than with two heartbeats of it left (a
   * failed or slow renewal then has another heartbeat before it lapses).
   */
  #low(now: number): boolean {
    const { ttlMs, heartbeatMs } = this.#timing
    return this.#deadline - now < Math.max(2 * heartbeatMs, ttlMs / 2)
  }

  #beat(): void {
    if (this.#renewing || !this.#low(Date.now())) return
    this.renew().catch(() => {
      // Storage unreachable: try again at the next heartbeat until the lease runs out; then the
      // workflows held under it stop, since another runner may take them over.
      if (Date.now() <= this.#deadline) return
      for (const workflow of [...this.#held])
        workflow.lapsed('storage unreachable past the lease time-to-live')
    })
  }

  async #write(): Promise<void> {
    const store = await this.#store
    const startedAt = Date.now()
    const leaseExpiresAt = startedAt + this.#timing.ttlMs
    await store.writeRunner({ v: 1, runner: this.#runner, leaseExpiresAt, updatedAt: startedAt })
    // Landed after the lease had run out (a paused process, a slow storage): a gap (see `#epoch`).
    if (Date.now() > this.#deadline) this.#epoch++
    this.#deadline = leaseExpiresAt
    this.#written = true
    if (!this.#swept) {
      // Once per runner, in the background: records of runners that died without closing.
      this.#swept = true
      store.sweepRunners(this.#runner.runnerId, startedAt, 10 * this.#timing.ttlMs).catch(() => {})
    }
  }
}
