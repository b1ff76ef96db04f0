// The JSON values wf stores as given (user metadata of workflows and steps), and the test of
// whether a value shows as JSON unchanged, for wf's own displays of step outputs (the `wf`
// command and the @wf/ui page, through @wf/core/internal).

/** A JSON value (for user metadata). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

/**
 * Whether `value` survives JSON unchanged: plain objects, arrays, strings, finite numbers (not
 * -0), booleans, null. Anything else is shown with util.inspect instead.
 */
export function isJsonable(value: unknown, seen = new Set<object>()): boolean {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return true
  if (typeof value === 'number') return Number.isFinite(value) && !Object.is(value, -0)
  if (typeof value !== 'object') return false
  if (seen.has(value)) return false
  seen.add(value)
  const proto = Object.getPrototypeOf(value)
  const ok = Array.isArray(value)
    ? value.every((v) => isJsonable(v, seen))
    : (proto === Object.prototype || proto === null) && Object.values(value).every((v) => isJsonable(v, seen))
  seen.delete(value)
  return ok
}
