// Runner records read lately, per store: a listing of 1,000 workflows of one runner reads that
// runner's record once, not 1,000 times. A record that says its runner is alive stays true until
// its own expiry (a runner only ever extends it); one that says the runner is gone (expired, or no
// record) is kept for a second only, since its runner may renew it after a pause.

import type { RunnerRecord } from '../model/records.js'

/** How long a read that says the runner is gone is trusted. */
const GONE_MS = 1000
/** Beyond this many runners seen, the cache starts over. */
const MAX_RUNNERS = 1024

interface Entry {
  read: Promise<RunnerRecord | undefined>
  /** When the read began. */
  at: number
  /** The record's expiry once read (0: no record); `undefined` while the read is in flight. */
  expiresAt?: number
}

export class RunnerCache {
  readonly #entries = new Map<string, Entry>()
  readonly #readRunner: (runnerId: string) => Promise<RunnerRecord | undefined>

  constructor(readRunner: (runnerId: string) => Promise<RunnerRecord | undefined>) {
    this.#readRunner = readRunner
  }

  /** The runner's record, from the cache while it is still to be trusted (a read in flight is shared). */
  get(runnerId: string): Promise<RunnerRecord | undefined> {
    const cached = this.#entries.get(runnerId)
    if (cached) {
      const { expiresAt } = cached
      const now = Date.now()
      if (expiresAt === undefined || expiresAt >= now || now - cached.at < GONE_MS) return cached.read
    }
    return this.read(runnerId)
  }

  /** Reads the runner's record from storage now, and caches it. */
  read(runnerId: string): Promise<RunnerRecord | undefined> {
    if (this.#entries.size >= MAX_RUNNERS) this.#entries.clear()
    const entry: Entry = { read: this.#readRunner(runnerId), at: Date.now() }
    this.#entries.set(runnerId, entry)
    entry.read.then(
      (runner) => {
        entry.expiresAt = runner?.leaseExpiresAt ?? 0
      },
      () => {
        if (this.#entries.get(runnerId) === entry) this.#entries.delete(runnerId)
      },
    )
    return entry.read
  }

  /** A record this process just wrote; it replaces any read in flight, which may answer with an older one. */
  wrote(record: RunnerRecord): void {
    const at = Date.now()
    this.#entries.set(record.runner.runnerId, {
      read: Promise.resolve(record),
      at,
      expiresAt: record.leaseExpiresAt,
    })
  }

  forget(runnerId: string): void {
    this.#entries.delete(runnerId)
  }
}
