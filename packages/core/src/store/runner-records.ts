// Runner records (`runners/<runnerId>`): a runner's one lease, shared by every workflow it drives
// (runner-lease.ts writes it), and how a reader fills a runner-leased workflow record's expiry in
// from it. Reads are cached (runner-cache.ts): a listing of many workflows of one runner reads that
// runner's record once.

import { CorruptRecordError } from '../errors.js'
import { parseJson, type RunnerRecord, storeKeys, utf8, type WorkflowRecord } from '../model/records.js'
import { nextPageAfter, type Storage } from '../storage/storage.js'
import { HOST, pidAlive } from '../util/host.js'
import { RunnerCache } from './runner-cache.js'

/** Runner ids are made by `newRunner` (hex); anything else in a record must not reach a key. */
const RUNNER_ID = /^[0-9A-Za-z_-]{1,64}$/

/** Reads and writes the runner records of one storage, through a cache of recent reads. */
export class RunnerRecords {
  readonly #storage: Storage
  readonly #cache = new RunnerCache((runnerId) => this.read(runnerId))

  constructor(storage: Storage) {
    this.#storage = storage
  }

  /**
   * Sets `leaseExpiresAt` of a runner-leased record to its runner's (0 when the runner record is
   * gone: the runner closed, so it drives nothing). Runner records are cached: one that says the
   * runner is alive until its expiry, one that says it is gone for a second. `fresh` reads it
   * anyway: a takeover decides on a fresh read, never on a cached "gone".
   */
  async fillLease(record: WorkflowRecord, options: { fresh?: boolean } = {}): Promise<WorkflowRecord> {
    if (record.lease !== 'runner') return record
    const runnerId = record.owner?.runnerId
    if (runnerId === undefined) {
      delete record.leaseExpiresAt
      return record
    }
    if (typeof runnerId !== 'string' || !RUNNER_ID.test(runnerId)) {
      throw new CorruptRecordError(storeKeys.workflow(record.workflowId), 'its owner has no valid runner id')
    }
    const runner = await (options.fresh ? this.#cache.read(runnerId) : this.#cache.get(runnerId))
    record.leaseExpiresAt = runner?.leaseExpiresAt ?? 0
    return record
  }

  /** A runner's lease record, read from storage (not cached). */
  async read(runnerId: string): Promise<RunnerRecord | undefined> {
    const key = storeKeys.runner(runnerId)
    const found = await this.#storage.get(key)
    if (!found) return undefined
    const record = parseJson<RunnerRecord>(key, found.data)
    if (
      record?.v !== 1 ||
      record.runner?.runnerId !== runnerId ||
      typeof record.leaseExpiresAt !== 'number'
    ) {
      // Thrown, not read as "gone": a live runner's workflows must not be taken over on garbage.
      // Deleting the record makes them RESUMABLE (a live runner notices a takeover at its heartbeat).
      throw new CorruptRecordError(
        key,
        'not a runner record written by this version of wf (delete it: the workflows of that runner then become RESUMABLE)',
      )
    }
    return record
  }

  /**
   * Writes a runner's lease record. Unconditional: only that runner writes it. The cache takes it
   * too, so the runner's own reads of its workflows need no read of it.
   */
  async write(record: RunnerRecord): Promise<void> {
    const runnerId = record.runner.runnerId
    await this.#storage.put(storeKeys.runner(runnerId), utf8(JSON.stringify(record)))
    this.#cache.wrote(record)
  }

  /**
   * Deletes the records of runners that are gone for sure: on this host with their process gone,
   * or expired more than `staleMs` ago (a runner that comes back writes its record anew and
   * re-asserts its workflows, so an expired record already means "gone"). Runners that died
   * without closing leave their records behind, so storage would otherwise grow with restarts.
   * Best effort: a record that cannot be read or deleted is left alone. `keep`: the caller's own.
   */
  async sweep(keep: string, now: number, staleMs: number): Promise<number> {
    const prefix = storeKeys.runnersPrefix
    let removed = 0
    let after: string | undefined
    for (;;) {
      const listed = await this.#storage.list(
        prefix,
        after === undefined ? { limit: 1000 } : { after, limit: 1000 },
      )
      for (const key of listed.keys) {
        const runnerId = key.slice(prefix.length)
        if (runnerId === keep || !RUNNER_ID.test(runnerId)) continue
        const record = await this.read(runnerId).catch(() => undefined)
        if (!record) continue
        const { host, pid } = record.runner
        const dead = host === HOST && typeof pid === 'number' && pid !== process.pid && !pidAlive(pid)
        if (!dead && record.leaseExpiresAt >= now - staleMs) continue
        await this.delete(runnerId).then(
          () => removed++,
          () => {},
        )
      }
      after = nextPageAfter(prefix, after, listed)
      if (after === undefined) return removed
    }
  }

  /** Deletes a runner's lease record (a runner closing with no workflow left). */
  async delete(runnerId: string): Promise<void> {
    this.#cache.forget(runnerId)
    await this.#storage.delete(storeKeys.runner(runnerId))
  }
}
