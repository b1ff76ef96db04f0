// The folders a journaled storage has written to lately, so that its synchronous put goes straight
// to the temp file in a folder it knows, and creates a folder it does not know before trying: a
// failed synchronous call costs a thrown error (10-15 µs in Node, more than the call itself).

/**
 * A hint, never a promise: another process may remove a folder this set still names (a workflow
 * deleted meanwhile). The put then fails to create its temp file with ENOENT, forgets the folder,
 * creates it again and retries, as without the set: the write lands in the new folder, or fails
 * with an error. Bounded; the folder used longest ago goes first.
 */
export class KnownFolders {
  readonly #folders = new Set<string>()
  readonly #limit: number

  constructor(limit = 4096) {
    this.#limit = limit
  }

  /** True if `dir` was written to lately (and marks it as just used). */
  has(dir: string): boolean {
    if (!this.#folders.delete(dir)) return false
    this.#folders.add(dir)
    return true
  }

  add(dir: string): void {
    if (this.#folders.size >= this.#limit && !this.#folders.has(dir)) {
      const oldest = this.#folders.values().next()
      if (!oldest.done) this.#folders.delete(oldest.value)
    }
    this.#folders.add(dir)
  }

  forget(dir: string): void {
    this.#folders.delete(dir)
  }
}
