// A run's abort signal is made only when something asks for it: a step's `currentStep().signal`
// must still be the run's, aborted by a cancel whenever the step reads it.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { currentStep, MemoryStorage, Runtime, step } from '../index.js'
import { LazyAbortController } from './lazy-abort.js'

afterEach(() => {
  vi.restoreAllMocks()
})

describe('LazyAbortController', () => {
  it('hands out an aborted signal when it is first asked for after the abort', () => {
    const abort = new LazyAbortController()
    abort.abort()
    expect(abort.aborted).toBe(true)
    expect(abort.signal.aborted).toBe(true)
    expect(abort.signal).toBe(abort.signal)
  })

  it("calls the run's listener before the signal's listeners, and only once", () => {
    const abort = new LazyAbortController()
    const calls: string[] = []
    abort.onAbort = () => calls.push('run')
    abort.signal.addEventListener('abort', () => calls.push('signal'))
    abort.abort()
    abort.abort()
    expect(calls).toEqual(['run', 'signal'])
  })

  it('aborts the signal even when the run listener throws', () => {
    const abort = new LazyAbortController()
    const signal = abort.signal
    abort.onAbort = () => {
      throw new Error('listener failed')
    }
    expect(() => abort.abort()).toThrow('listener failed')
    expect(signal.aborted).toBe(true)
  })
})

describe('the signal of a run', () => {
  it('is not made for a run whose steps never read it', async () => {
    const made = vi.spyOn(globalThis, 'AbortController')
    const inc = step('lazy.inc', (x: number) => x + 1)
    await new Runtime(new MemoryStorage()).run(inc(inc(1)), { workflowId: 'never-read' })
    expect(made).not.toHaveBeenCalled()
  })

  it("is the run's in every step that reads it, and aborts on cancel", async () => {
    const runtime = new Runtime(new MemoryStorage())
    const signals: AbortSignal[] = []
    let started: () => void = () => {}
    const running = new Promise<void>((resolve) => {
      started = resolve
    })
    const first = step('lazy.first', () => {
      signals.push(currentStep().signal)
      return 1
    })
    const waits = step('lazy.waits', (x: number) => {
      const { signal } = currentStep()
      signals.push(signal)
      started()
      return new Promise<number>((resolve, reject) => {
        signal.addEventListener('abort', () => reject(new Error('aborted')))
        setTimeout(() => resolve(x), 5_000).unref()
      })
    })
    const result = runtime.run(waits(first()), { workflowId: 'read' })
    result.catch(() => {})
    await running
    expect(signals[0]).toBe(signals[1])
    expect(signals[0]?.aborted).toBe(false)
    await runtime.cancel('read')
    expect(signals[1]?.aborted).toBe(true)
    await expect(result).rejects.toThrow(/cancel/i)
  })
})
