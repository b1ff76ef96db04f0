// Steps of the dashboard's tests, imported by the tests and, for resume, by the server through
// `importModules` (the same file URL: one module, registered once).

import { step } from '@wf/core'

/** Opened by the tests: `held` waits on it. */
export const gates = { release: () => {}, held: Promise.resolve() }
export function closeGate() {
  gates.held = new Promise((resolve) => {
    gates.release = resolve
  })
}

/** Whether `flaky` fails (the tests fix it, then resume). */
export const flags = { fail: true }

export const add = step('ui-add', (n) => n + 1)
export const double = step('ui-double', (n) => n * 2)
export const held = step('ui-held', async (n) => {
  await gates.held
  return n
})
export const flaky = step(
  'ui-flaky',
  (n) => {
    if (flags.fail) throw new RangeError(`flaky failed on ${n}`)
    return n
  },
  { maxRetries: 0 },
)
export const markup = step('ui-markup', () => '<img src=x onerror=alert(1)>')
export const big = step('ui-big', (n) => 'x'.repeat(n))
export const dated = step('ui-dated', () => new Map([['at', new Date(0)]]))
export const sum = step('ui-sum', (a, b) => a + b)
/** Returns a sub-graph (a continuation): sum(add(n), double(n)). */
export const fan = step('ui-fan', (n) => sum(add(n), double(n)))
/** How many inputs it was given (a wide graph). */
export const count = step('ui-count', (...xs) => xs.length)
/** Its argument back (a step whose arguments the tests read). */
export const echo = step('ui-echo', (x) => x)
