// Group commit of folder fsyncs: puts that land in one folder at the same time share one fsync of
// that folder instead of queueing one each. A caller is resolved only by an fsync that STARTED
// after it asked, i.e. after its rename or link completed, so sharing never weakens durability.

/** One fsync of a folder, run by `FolderSyncs` for every caller waiting on it. */
export type SyncFolder = (dir: string) => Promise<void>

interface Waiters {
  promise: Promise<void>
  resolve: () => void
  reject: (error: unknown) => void
}

interface FolderState {
  /** True while an fsync of the folder runs. */
  running: boolean
  /** Callers who asked while an fsync ran: served together by the next one. */
  next: Waiters | undefined
}

function waiters(): Waiters {
  let resolve!: () => void
  let reject!: (error: unknown) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/**
 * At most one fsync per folder runs at a time. A caller who asks while one runs cannot be covered
 * by it (that fsync may have flushed the folder before the caller's rename), so it joins the
 * batch for the next fsync, which starts as soon as the running one ends. N concurrent puts into
 * one folder thus cost about two folder fsyncs instead of N, and no put waits for more than two.
 */
export class FolderSyncs {
  readonly #sync: SyncFolder
  readonly #folders = new Map<string, FolderState>()

  constructor(sync: SyncFolder) {
    this.#sync = sync
  }

  /** Resolves after an fsync of `dir` that started after this call; rejects with its error. */
  sync(dir: string): Promise<void> {
    let state = this.#folders.get(dir)
    if (state === undefined) {
      state = { running: false, next: undefined }
      this.#folders.set(dir, state)
    }
    state.next ??= waiters()
    const { promise } = state.next
    if (!state.running) this.#start(dir, state)
    return promise
  }

  #start(dir: string, state: FolderState): void {
    const batch = state.next as Waiters
    state.next = undefined
    state.running = true
    let run: Promise<void>
    try {
      run = this.#sync(dir)
    } catch (error) {
      run = Promise.reject(error)
    }
    run.then(batch.resolve, batch.reject).finally(() => {
      state.running = false
      if (state.next !== undefined) this.#start(dir, state)
      else this.#folders.delete(dir)
    })
  }
}
