// Start batches: how a runner indexes the workflows it starts. Instead of a RUNNING marker per
// workflow, the ids of the workflows started at the same moment go into one record,
// `starts/<runnerId>.<n>`, written before their records (a group commit: the workflows that arrive
// while one batch is written share the next). The batch is deleted when the last of them ends here,
// so a workflow that runs to its end costs no index write until its final marker. A batch whose
// workflows did not all end here (a crash, a release, a storage failure) stays: listings and
// workers read it as they read RUNNING markers, and a worker deletes it once its runner is gone and
// every workflow in it ended or has a marker of its own.

import type { WorkflowStore } from './store.js'

/**
 * What became of a batch's workflow here: `ended` (its record is final), `gone` (its submission lost
 * to another, whose record is not in this batch, and its id was taken out), or `left` (it may still
 * be RUNNING under the batch: a crash, a release, a storage failure).
 */
export type BatchOutcome = 'ended' | 'gone' | 'left'

interface Gathering {
  name: string
  workflowIds: string[]
  written: Promise<string>
  resolve(name: string): void
  reject(error: unknown): void
}

export class StartBatches {
  readonly #store: Promise<WorkflowStore>
  readonly #runnerId: string
  #count = 0
  #gathering: Gathering | undefined
  #writing: Promise<void> | undefined
  /** Batches written by this runner whose workflows are not all settled: how many are left, and whether to keep it. */
  readonly #open = new Map<string, { left: number; keep: boolean }>()

  constructor(store: Promise<WorkflowStore>, runnerId: string) {
    this.#store = store
    this.#runnerId = runnerId
  }

  /**
   * Resolves to the name of a written start batch that lists `workflowId`: create its record with
   * that `startBatch` then, and report how its run ends with `settle`. Rejects when the storage
   * fails (nothing of the workflow is stored then but, maybe, the batch).
   */
  join(workflowId: string): Promise<string> {
    let batch = this.#gathering
    if (!batch) {
      let resolve!: (name: string) => void
      let reject!: (error: unknown) => void
      const written = new Promise<string>((res, rej) => {
        resolve = res
        reject = rej
      })
      const name = `${this.#runnerId}.${(this.#count++).toString(36)}`
      batch = { name, workflowIds: [], written, resolve, reject }
      this.#gathering = batch
    }
    batch.workflowIds.push(workflowId)
    this.#flush()
    return batch.written
  }

  /**
   * One workflow of batch `name` is done with here (see `BatchOutcome`). The batch is deleted when
   * the last one is, unless one was left: the promise of that delete, else `undefined` (no I/O).
   * Unknown names (batches of other runners) are ignored.
   */
  settle(name: string, outcome: BatchOutcome): Promise<void> | undefined {
    const open = this.#open.get(name)
    if (!open) return undefined
    if (outcome === 'left') open.keep = true
    if (--open.left > 0) return undefined
    this.#open.delete(name)
    if (open.keep) return undefined
    // Best effort: a batch left behind is cleared by a worker's sweep.
    return this.#store.then((store) => store.deleteStartBatch(name)).catch(() => {})
  }

  /** Writes the batch being gathered, unless one is being written (it waits for that one). */
  #flush(): void {
    if (this.#writing || !this.#gathering) return
    const batch = this.#gathering
    this.#gathering = undefined
    this.#writing = this.#write(batch).finally(() => {
      this.#writing = undefined
      this.#flush()
    })
  }

  async #write(batch: Gathering): Promise<void> {
    try {
      const store = await this.#store
      await store.writeStartBatch(batch.name, {
        v: 1,
        runnerId: this.#runnerId,
        createdAt: Date.now(),
        workflowIds: batch.workflowIds,
      })
      this.#open.set(batch.name, { left: batch.workflowIds.length, keep: false })
      batch.resolve(batch.name)
    } catch (error) {
      batch.reject(error)
    }
  }
}
