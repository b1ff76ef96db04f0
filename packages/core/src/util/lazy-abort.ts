// A run's AbortController, made only when something asks for its signal (a step reading
// `currentStep().signal`, a timeout, an isolate, a retry's backoff). Most runs are never aborted
// and most steps never look, while on Node 20 an AbortController and one listener on its signal
// cost about 13 µs: more than a short workflow's steps cost the engine each.

export class LazyAbortController {
  #controller: AbortController | undefined
  #aborted = false
  #onAbort: (() => void) | undefined

  /** Whether `abort` was called. */
  get aborted(): boolean {
    return this.#aborted
  }

  /** The run's signal, made on first use (aborted already if the run was). */
  get signal(): AbortSignal {
    let controller = this.#controller
    if (controller === undefined) {
      controller = new AbortController()
      if (this.#aborted) controller.abort()
      this.#controller = controller
    }
    return controller.signal
  }

  /**
   * The run's own listener (its execution's), called on abort before the signal's listeners, as
   * the first listener added to the signal would be. `undefined` removes it.
   */
  set onAbort(listener: (() => void) | undefined) {
    this.#onAbort = listener
  }

  abort(): void {
    if (this.#aborted) return
    this.#aborted = true
    try {
      this.#onAbort?.()
    } finally {
      this.#controller?.abort()
    }
  }
}
